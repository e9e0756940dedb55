"""The kernel command-line layer: the profile's `kernel.cmdline` through each host's
bootloader configuration, via Ansible (playbooks/cmdline.yml, the `tuner_cmdline` module;
host-side logic in agent/bootloader.py).

A changed command line is in effect only after a reboot: apply leaves it `pending` (verify
exits 1, as for BIOS values) unless `--reboot if-needed`. Its part in the run's reboot plan
is "waits": it asks for a reboot (`run.reboots.need`); the layer runs first on a host, so a
BIOS reset in the same batch boots the new command line too; the orchestrator reboots
through the OS the hosts no reset rebooted (once per node for all layers), then `rebooted`
reads /proc/cmdline again (docs/kernel-cmdline.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from agent.layers.base import HostResult, Layer, Results, Run
from agent.modargs import TUNER_CMDLINE
from agent.report import FileRestore
from agent.view import HostView, Row

if TYPE_CHECKING:
    from agent.inventory import InventoryHost
    from agent.runner import HostOutcome


class HostCmdline(BaseModel):
    """The kernel command-line layer's part of a host report (apply, verify, rollback).

    `status` is the layer's own word: apply unchanged / changed / would change / failed /
    not started / skipped; verify ok / pending / drift / failed; rollback nothing to do /
    would restore / restored / pending reboot / failed / not started."""

    status: str
    message: str = ""
    tool: str | None = None  # grubby, update-grub, grub2-mkconfig, update-grub (simulated)
    config: Literal["as wanted", "differs"] | None = None  # the bootloader configuration
    booted: str = ""  # /proc/cmdline (after the reboot, when tuner rebooted the host)
    off: list[str] = []  # +param not booted yet, -param still booted
    reboot: Literal["not needed", "needed", "would reboot", "done"] = "not needed"
    rebooted_by: Literal["BIOS reset", "os", "simulator"] | None = None
    files: list[FileRestore] = []  # rollback: the bootloader files restored
    batch: int | None = None


APPLY = {"unchanged": "unchanged", "changed": "changed", "would change": "would change"}
VERIFY = {"ok": "ok", "pending": "pending", "drift": "drift"}


class CmdlineLayer(Layer):
    name = "cmdline"
    label = "cmdline"
    order = 10  # first: a BIOS reset of the same batch boots the new command line too
    section = "kernel"
    module = "tuner_cmdline"
    reboot = "waits"

    @classmethod
    def schema(cls) -> type[BaseModel]:
        from agent.profiles import KernelSection

        return KernelSection

    def wants(self, run: Run) -> bool:
        if run.command == "rollback" or run.profile is None:
            return True  # the host's record says whether there is anything to restore
        return run.profile.has_cmdline()

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def _run(
        self, run: Run, hosts: list[InventoryHost], mode: str, check: bool = False
    ) -> tuple[dict[str, HostOutcome], str]:
        """playbooks/cmdline.yml with the module's arguments (typed in agent/modargs.py)."""
        args: dict[str, Any] = {"mode": mode}
        if run.profile is not None:
            args.update(run.profile.cmdline())
        TUNER_CMDLINE.check(args)
        extra: dict[str, Any] = {"tuner_cmdline_mode": mode}
        if run.profile is not None:
            extra["tuner_cmdline"] = {"add": args["add"], "remove": args["remove"]}
        return run.playbook("cmdline.yml", hosts, extra, check=check, module=TUNER_CMDLINE.name)

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        outcomes, artifacts = self._run(run, hosts, "verify")
        return {n: o.facts for n, o in outcomes.items()}, artifacts

    @staticmethod
    def _detail(o: HostOutcome, batch: int | None, status: str) -> HostCmdline:
        f = o.facts
        msg = f.get("message") or ("" if o.status == "ok" else o.message)
        if o.status == "unreachable":
            msg = o.message
        return HostCmdline(
            status=status,
            message=msg,
            tool=f.get("tool"),
            config=f.get("config"),
            booted=f.get("booted") or "",
            off=f.get("off") or [],
            files=[FileRestore.model_validate(r) for r in f.get("files") or []],
            batch=batch,
        )

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=True)

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=run.check)

    def _apply(
        self, run: Run, hosts: list[InventoryHost], batch: int | None, check: bool
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "apply", check)
        out: Results = {}
        for name, o in outcomes.items():
            word = o.facts.get("status", "")
            status = "unreachable" if o.status == "unreachable" else APPLY.get(word, "failed")
            if o.status not in ("ok", "unreachable"):
                status = "failed"
            d = self._detail(o, batch, status)
            if status == "would change":
                d.reboot = "would reboot" if run.reboot == "if-needed" else "needed"
            elif status in ("changed", "unchanged") and o.facts.get("pending"):
                d.reboot = "needed"
                if not d.message:
                    d.message = "pending reboot: " + " ".join(d.off)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(status, d.message if status == "failed" else "", d, facts)
            if d.reboot == "needed" and not check:
                run.reboots.need(name)  # a BIOS reset of this batch, else the OS, reboots it
        return out, artifacts

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "verify")
        out: Results = {}
        for name, o in outcomes.items():
            word = o.facts.get("status", "")
            status = "unreachable" if o.status == "unreachable" else VERIFY.get(word, "failed")
            if o.status not in ("ok", "unreachable"):
                status = "failed"
            d = self._detail(o, batch, status)
            if status == "pending":
                d.reboot = "needed"
            out[name] = HostResult(status, d.message if status == "failed" else "", d)
        return out, artifacts

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "rollback", run.check)
        out: Results = {}
        for name, o in outcomes.items():
            word = o.facts.get("status", "")
            if o.status == "unreachable":
                status = "unreachable"
            elif o.status != "ok" or word not in ("nothing to do", "would restore", "restored"):
                status = "failed"
            else:
                status = "pending reboot" if word == "restored" else word
            d = self._detail(o, batch, status)
            if status == "pending reboot":
                d.reboot = "needed"
                d.message = d.message or "restored; the original command line boots next time"
                run.reboots.need(name)
            elif status == "would restore":
                d.reboot = "would reboot" if run.reboot == "if-needed" else "needed"
            out[name] = HostResult(status, d.message if status == "failed" else "", d)
        return out, artifacts

    # ------------------------------------------------------------------ the reboot

    def rebooted(self, run: Run, hosts: list[InventoryHost], results: Results) -> list[str]:
        """After the reboot point of the batch: the hosts whose command line waited and were
        rebooted (by a BIOS reset or the OS) read /proc/cmdline again (apply); a failed
        reboot fails the host. -> artifacts folders of the runs."""
        if not run.reboots.allowed:
            return []
        check: list[InventoryHost] = []
        for h in hosts:
            r = results[h.name]
            d = r.detail
            if not isinstance(d, HostCmdline) or d.reboot != "needed":
                continue
            by = run.reboots.done.get(h.name)
            if by is not None:
                d.reboot, d.rebooted_by = "done", by  # type: ignore[assignment]
                check.append(h)
            elif h.name in run.reboots.failed:
                r.status, r.message = "failed", f"reboot failed: {run.reboots.failed[h.name]}"
                d.status, d.message = "failed", r.message
        artifacts: list[str] = []
        if check and run.profile is not None and run.command == "apply":
            outcomes, art = self._run(run, check, "verify")
            artifacts.append(art)
            for name, o in outcomes.items():
                r = results[name]
                d = r.detail
                d.booted, d.off = o.facts.get("booted") or d.booted, o.facts.get("off") or []
                if o.facts.get("status") == "ok":
                    d.message = ""
                else:
                    r.status = d.status = "failed"
                    why = "rebooted, but /proc/cmdline does not show: " + " ".join(d.off)
                    r.message = d.message = why
        elif run.command == "rollback":
            for h in check:
                r = results[h.name]
                if r.status == "pending reboot":
                    r.status = r.detail.status = "restored"
                    r.detail.message = ""
        return artifacts

    # ------------------------------------------------------------------ the rest

    def skipped(self, run: Run, why: str) -> HostResult:
        ok = {"apply": "unchanged", "verify": "ok", "rollback": "nothing to do"}[run.command]
        return HostResult(ok, "", HostCmdline(status="skipped", message=why))

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, HostCmdline(status="not started", message=why))

    @classmethod
    def v1_keys(cls, command: str, result: HostResult | None) -> dict[str, Any]:
        return {"cmdline": None if result is None else result.detail}

    def from_v1(self, command: str, host: dict[str, Any]) -> Any:
        return host.get("cmdline")

    def part(self, host: Any) -> HostCmdline | None:
        d = host.detail(self.name)
        return d if d is None or isinstance(d, HostCmdline) else HostCmdline.model_validate(d)

    def reasons(self, part: Any) -> list[str]:
        if part is not None and part.status in ("pending", "drift", "failed"):
            return [f"kernel command line {part.status}: {part.message}".rstrip(": ")]
        return []

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        """One row per host: the reboot state and what is not booted yet (+add, -remove)."""
        hosts = [(h, c) for h in r.hosts if (c := self.part(h)) is not None]
        if not hosts:
            return None
        title = {
            "apply": f"kernel command line: tuner apply --profile {getattr(r, 'profile', '')}",
            "verify": f"kernel command line: tuner verify --profile {getattr(r, 'profile', '')}",
        }.get(r.command, "kernel command line: tuner rollback")
        if getattr(r, "check", False):
            title += " --check"
        out = []
        for h, c in hosts:
            reboot = c.reboot + (f" ({c.rebooted_by})" if c.rebooted_by else "")
            notes = [c.message] if c.message else []
            if c.reboot == "needed":
                notes.append(f"in effect after a reboot (tuner {r.command} --reboot if-needed)")
            out.append(
                HostView(
                    host=h.host,
                    status=c.status,
                    summary=f"{c.tool or ''} {c.status}".strip(),
                    rows=[Row(c.status, (reboot, " ".join(c.off)))],
                    notes=notes,
                )
            )
        return title, ["reboot", "not booted yet (+) / still booted (-)"], out
