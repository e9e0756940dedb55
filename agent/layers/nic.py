"""The nic layer: the scale-out NICs of each host (MTU, ring sizes, IRQ affinity, PCIe Max
Read Request and relaxed ordering, the RoCE type of service), via Ansible
(playbooks/nic.yml, the `tuner_nic` module; host-side logic in agent/nic.py).

The profile's `nic` section names one NIC model (pollara-400, thor2, connectx-7); a host
without a port of that model cannot take the profile: apply refuses it before anything is
changed anywhere, verify exits 2 too, naming the model and what the host has. The values are
runtime values (a reboot loses them), so the layer runs after the reboot step and the OS.
"""

from __future__ import annotations

from typing import Any

from agent import nic, view
from agent.inventory import InventoryHost
from agent.layers.base import HostResult, Layer, Results, Run
from agent.report import FileRestore, HostNic, SettingChange, SettingCheck
from agent.runner import HostOutcome
from agent.view import HostView, Row

APPLY = ("unchanged", "changed", "would change")
VERIFY = ("ok", "drift")
ROLLBACK = ("nothing to do", "would restore", "restored")


class NicLayer(Layer):
    name = "nic"
    label = "NIC"

    def wants(self, run: Run) -> bool:
        if run.command == "rollback" or run.profile is None:
            return True  # the host's record says whether there is anything to restore
        return run.profile.has_nic()

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def _run(
        self,
        run: Run,
        hosts: list[InventoryHost],
        mode: str,
        check: bool = False,
        progress: bool = True,
    ) -> tuple[dict[str, HostOutcome], str]:
        extra: dict[str, Any] = {"tuner_nic_mode": mode}
        if run.profile is not None:
            extra["tuner_nic"] = run.profile.nic_settings()
        return run.playbook(
            "nic.yml", hosts, extra, check=check, module="tuner_nic", progress=progress
        )

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        outcomes, artifacts = self._run(run, hosts, "facts")
        return {n: o.facts for n, o in outcomes.items()}, artifacts

    def refused(self, run: Run, hosts: list[InventoryHost]) -> dict[str, str]:
        """Hosts without a port of the profile's NIC model (or without its interfaces)."""
        if run.profile is None or not hosts:
            return {}
        want = run.profile.nic_settings()
        outcomes, _ = self._run(run, hosts, "facts", progress=False)
        out: dict[str, str] = {}
        for name, o in outcomes.items():
            if o.status != "ok":
                continue  # unreachable: apply reports it as such
            ports = o.facts.get("ports") or []
            mine = [p["if"] for p in ports if p.get("model") == want["model"]]
            missing = [i for i in want.get("interfaces") or [] if i not in mine]
            if not mine:
                out[name] = nic.lacks(want["model"], ports)
            elif missing:
                out[name] = f"no {want['model']} port named {', '.join(missing)} (nic.interfaces)"
        return out

    @staticmethod
    def _word(o: HostOutcome, known: tuple[str, ...]) -> str:
        if o.status == "unreachable":
            return "unreachable"
        word = str(o.facts.get("status", ""))
        if o.status != "ok" or word not in known:
            return "failed"
        return word

    @staticmethod
    def _message(o: HostOutcome) -> str:
        return str(o.facts.get("message") or ("" if o.status == "ok" else o.message))

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=True)

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=run.check)

    def _apply(
        self, run: Run, hosts: list[InventoryHost], batch: int | None, check: bool
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "apply", check)
        model = run.profile.nic.model if run.profile is not None else None
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, APPLY)
            msg = self._message(o)
            rows = [SettingChange.model_validate(r) for r in o.facts.get("settings") or []]
            d = HostNic(status=status, message=msg, model=model, settings=rows, batch=batch)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(
                status, msg if status in ("failed", "unreachable") else "", d, facts
            )
        return out, artifacts

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "verify")
        model = run.profile.nic.model if run.profile is not None else None
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, VERIFY)
            msg = self._message(o)
            rows = [SettingCheck.model_validate(r) for r in o.facts.get("settings") or []]
            d = HostNic(status=status, message=msg, model=model, checks=rows, batch=batch)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(
                status, msg if status in ("failed", "unreachable") else "", d, facts
            )
        return out, artifacts

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "rollback", run.check)
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, ROLLBACK)
            msg = self._message(o)
            files = [FileRestore.model_validate(r) for r in o.facts.get("files") or []]
            d = HostNic(status=status, message=msg, files=files, batch=batch)
            out[name] = HostResult(status, msg if status in ("failed", "unreachable") else "", d)
        return out, artifacts

    def skipped(self, run: Run, why: str) -> HostResult:
        ok = {"apply": "unchanged", "verify": "ok", "rollback": "nothing to do"}[run.command]
        return HostResult(ok, "", HostNic(status="skipped", message=why))

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, HostNic(status="not started", message=why))

    def fill(self, run: Run, host: Any, result: HostResult) -> None:
        host.nic = result.detail

    # ------------------------------------------------------------------------ tables

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        hosts = [h for h in r.hosts if h.nic is not None]
        if not hosts:
            return None
        check = " --check" if getattr(r, "check", False) else ""
        if r.command == "apply":
            title = f"NIC: tuner apply --profile {r.profile}{check}"
            return title, ["setting", "before -> after"], [_apply_view(h) for h in hosts]
        if r.command == "verify":
            title = f"NIC: tuner verify --profile {r.profile}"
            return title, ["setting", "wanted", "actual"], [_verify_view(h) for h in hosts]
        return f"NIC: tuner rollback{check}", ["restored"], [_rollback_view(h) for h in hosts]


def _notes(n: HostNic) -> list[str]:
    return [n.message] if n.message and n.status in ("failed", "unreachable", "not started") else []


def _apply_view(h: Any) -> HostView:
    n: HostNic = h.nic

    def row(s: SettingChange) -> Row:
        if s.status in ("changed", "would change"):
            return Row(s.status, (s.id, f"{s.before} -> {s.after}"))
        return Row(s.status, (s.id, f"{s.before}" if s.status == "unchanged" else ""))

    notes = _notes(n) + [f"{s.id}: {s.message}" for s in n.settings if s.message]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((s.status for s in n.settings), "setting") if n.settings else "",
        rows=[row(s) for s in n.settings if s.status != "unchanged"],
        all_rows=[row(s) for s in n.settings],
        notes=notes,
    )


def _verify_view(h: Any) -> HostView:
    n: HostNic = h.nic
    notes = _notes(n) + [f"{s.id}: {s.message}" for s in n.checks if s.message]
    rows = [Row(s.status, (s.id, s.wanted or "", s.actual or "")) for s in n.checks]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((s.status for s in n.checks), "setting") if n.checks else "",
        rows=[r for r, s in zip(rows, n.checks, strict=True) if s.status != "ok"],
        all_rows=rows,
        notes=notes,
    )


def _rollback_view(h: Any) -> HostView:
    n: HostNic = h.nic
    notes = _notes(n) + [f"{f.path}: {f.message}" for f in n.files if f.status == "failed"]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((f.status for f in n.files), "file") if n.files else "",
        rows=[Row(f.status, (f.path,)) for f in n.files if f.status == "failed"],
        all_rows=[Row(f.status, (f.path,)) for f in n.files],
        notes=notes,
    )
