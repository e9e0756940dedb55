"""The kernel command-line layer: the profile's `kernel.cmdline` through each host's
bootloader configuration, via Ansible (playbooks/cmdline.yml, the `tuner_cmdline` module;
host-side logic in agent/bootloader.py).

A changed command line is in effect only after a reboot: apply leaves it `pending` (verify
exits 1, as for BIOS values) unless `--reboot if-needed`. The layer runs first on a host, so
a BIOS reset in the same batch boots the new command line too; `settle` (called by the
orchestrator after the BIOS layer, before the OS layer) reboots through the OS the hosts
that still need it (Ansible's reboot module; in the simulator, the node tree's reboot) and
reads /proc/cmdline again: one reboot per node for both layers (docs/kernel-cmdline.md).
"""

from __future__ import annotations

from typing import Any

from agent.errors import BadInput
from agent.inventory import InventoryHost
from agent.layers.base import HostResult, Layer, Results, Run
from agent.report import FileRestore, HostCmdline
from agent.runner import HostOutcome
from agent.view import HostView, Row

APPLY = {"unchanged": "unchanged", "changed": "changed", "would change": "would change"}
VERIFY = {"ok": "ok", "pending": "pending", "drift": "drift"}


def _is_sim(h: InventoryHost) -> bool:
    v = h.vars.get("tuner_sim")
    return v is True or (isinstance(v, str) and v.lower() in ("true", "yes", "1"))


def check_boot_critical(profile: Any, allow: list[str]) -> None:
    """Before any host is touched: a profile that adds or removes a parameter that changes
    what boots or opens a shell (agent/bootloader.py BOOT_CRITICAL) is bad input naming the
    file and the parameter, unless --allow-boot-critical names it; a name given there that
    the profile does not change is bad input too (a typo must not pass silently)."""
    from agent.bootloader import boot_critical, critical_refused, name_of, param_key

    c = profile.cmdline()
    for verb, key in (("add", "add"), ("remove", "remove")):
        tokens = c[key]
        refused = critical_refused(
            tokens if verb == "add" else [], tokens if verb == "remove" else [], allow
        )
        if refused:
            raise BadInput(
                f"boot-critical, refused: {'; '.join(refused)}; if you mean it, name it with "
                f"--allow-boot-critical {name_of(refused[0].split()[1])} (docs/kernel-cmdline.md)",
                file=profile.sources.get(f"kernel.cmdline.{key}"),
                field=f"kernel.cmdline.{key}",
            )
    used = [t for t in c["add"] + c["remove"] if boot_critical(t)]
    for a in allow:
        if not any(a == t or param_key(a) == param_key(name_of(t)) for t in used):
            raise BadInput(
                f"{a!r}: the profile adds or removes no such boot-critical parameter "
                f"(it has: {', '.join(used) or 'none'})",
                field="--allow-boot-critical",
            )


class CmdlineLayer(Layer):
    name = "cmdline"
    label = "cmdline"

    def __init__(
        self,
        reboot: str = "never",
        reboot_timeout: float = 1200.0,
        bios_reset: set[str] | None = None,
        allow_boot_critical: list[str] | None = None,
    ) -> None:
        self.allow = list(allow_boot_critical or [])
        self.reboot = reboot
        self.reboot_timeout = reboot_timeout
        # shared with the BIOS layer's options: hosts its apply resets for the command line
        self.bios_reset = bios_reset if bios_reset is not None else set()

    def wants(self, run: Run) -> bool:
        if run.command == "rollback" or run.profile is None:
            return True  # the host's record says whether there is anything to restore
        return run.profile.has_cmdline()

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        if run.command == "apply" and run.profile is not None:
            check_boot_critical(run.profile, self.allow)
        return list(run.inv.hosts), {}

    def _run(
        self, run: Run, hosts: list[InventoryHost], mode: str, check: bool = False
    ) -> tuple[dict[str, HostOutcome], str]:
        extra: dict[str, Any] = {"tuner_cmdline_mode": mode}
        if run.profile is not None:
            extra["tuner_cmdline"] = run.profile.cmdline()
            extra["tuner_allow_boot_critical"] = self.allow
        return run.playbook("cmdline.yml", hosts, extra, check=check, module="tuner_cmdline")

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
                d.reboot = "would reboot" if self.reboot == "if-needed" else "needed"
            elif status in ("changed", "unchanged") and o.facts.get("pending"):
                d.reboot = "needed"
                if not d.message:
                    d.message = "pending reboot: " + " ".join(d.off)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(status, d.message if status == "failed" else "", d, facts)
            if d.reboot == "needed" and not check and self.reboot == "if-needed":
                self.bios_reset.add(name)  # a BIOS apply of this batch resets it for both
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
            elif status == "would restore":
                d.reboot = "would reboot" if self.reboot == "if-needed" else "needed"
            out[name] = HostResult(status, d.message if status == "failed" else "", d)
        return out, artifacts

    # ------------------------------------------------------------------ the reboot

    def settle(
        self,
        run: Run,
        hosts: list[InventoryHost],
        batch: int | None,
        got: dict[str, dict[str, HostResult]],
    ) -> list[str]:
        """After the BIOS layer of the batch: reboot the hosts whose command line waits for
        it (--reboot if-needed) and that no BIOS reset rebooted, then read /proc/cmdline
        again. -> artifacts folders of the runs."""
        if self.reboot != "if-needed" or run.check or run.command not in ("apply", "rollback"):
            return []
        waiting: list[InventoryHost] = []
        bios_reset: list[InventoryHost] = []
        for h in hosts:
            r = got.get(h.name, {}).get(self.name)
            if r is None or not isinstance(r.detail, HostCmdline) or r.detail.reboot != "needed":
                continue
            b = got[h.name].get("bios")
            if b is not None and getattr(b.detail, "reboot", None) == "done":
                r.detail.reboot, r.detail.rebooted_by = "done", "BIOS reset"
                bios_reset.append(h)
            else:
                waiting.append(h)
        artifacts: list[str] = []
        rebooted: dict[str, str] = {}
        for sim, module in ((True, "tuner_sim_reboot"), (False, "ansible.builtin.reboot")):
            part = [h for h in waiting if _is_sim(h) == sim]
            if not part:
                continue
            outcomes, art = run.playbook(
                "reboot.yml",
                part,
                {"tuner_reboot_timeout": int(self.reboot_timeout)},
                module=module,
                progress=False,
            )
            artifacts.append(art)
            for name, o in outcomes.items():
                r = got[name][self.name]
                d = r.detail
                if o.status != "ok":
                    r.status, r.message = "failed", f"reboot failed: {o.message}"
                    d.status, d.message = "failed", r.message
                    continue
                d.reboot, d.rebooted_by = "done", "simulator" if sim else "os"
                rebooted[name] = name
        check = [*bios_reset, *(h for h in waiting if h.name in rebooted)]
        if check and run.profile is not None and run.command == "apply":
            outcomes, art = self._run(run, check, "verify")
            artifacts.append(art)
            for name, o in outcomes.items():
                r = got[name][self.name]
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
                r = got[h.name][self.name]
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

    def fill(self, run: Run, host: Any, result: HostResult) -> None:
        host.cmdline = result.detail

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        """One row per host: the reboot state and what is not booted yet (+add, -remove)."""
        hosts = [h for h in r.hosts if h.cmdline is not None]
        if not hosts:
            return None
        title = {
            "apply": f"kernel command line: tuner apply --profile {getattr(r, 'profile', '')}",
            "verify": f"kernel command line: tuner verify --profile {getattr(r, 'profile', '')}",
        }.get(r.command, "kernel command line: tuner rollback")
        if getattr(r, "check", False):
            title += " --check"
        out = []
        for h in hosts:
            c = h.cmdline
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
