"""The OS layer: sysctl, THP, governor, C-states on each host, through Ansible (tuner_os).

All host-side logic is in agent/knobs.py (the `tuner_os` module); this file runs
playbooks/os.yml and turns each host's module result into its part of the report: `settings`
(apply, verify), `files` (rollback) and `facts` (the topology the OS shows)."""

from __future__ import annotations

from typing import Any

from agent import report, view
from agent.inventory import InventoryHost
from agent.layers.base import HostResult, Layer, Results, Run
from agent.report import FileRestore, SettingChange, SettingCheck
from agent.runner import HostOutcome
from agent.view import HostView, Row


def _unreachable_or_failed(o: HostOutcome) -> str | None:
    if o.status == "unreachable":
        return "unreachable"
    if o.status != "ok" and not o.results:
        return "failed"
    return None


class OsLayer(Layer):
    name = "os"
    label = "OS"

    def wants(self, run: Run) -> bool:
        if run.command != "apply" or run.profile is None:
            return True  # verify reads the OS facts the cross-layer checks need
        from agent.layers.bios import has_bios

        return bool(run.profile.os_settings()) or not has_bios(run.profile)

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def _run(
        self, run: Run, hosts: list[InventoryHost], mode: str, check: bool = False
    ) -> tuple[dict[str, HostOutcome], str]:
        extra: dict[str, Any] = {"tuner_mode": mode}
        if run.profile is not None and mode != "rollback":
            extra["tuner_settings"] = run.profile.os_settings() if mode != "facts" else []
            extra["tuner_persist"] = run.profile.os.persist
        if mode == "facts":
            extra["tuner_mode"] = "verify"
            extra["tuner_settings"] = []
        return run.playbook("os.yml", hosts, extra, check=check, module="tuner_os")

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        outcomes, artifacts = self._run(run, hosts, "facts")
        return {n: o.facts for n, o in outcomes.items()}, artifacts

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, check=True)

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, check=run.check)

    def _apply(self, run: Run, hosts: list[InventoryHost], check: bool) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "apply", check)
        allowed = run.profile.missing_ok if run.profile is not None else (lambda _id: False)
        out: Results = {}
        for name, o in outcomes.items():
            settings = [SettingChange.model_validate(r) for r in o.results]
            status = _unreachable_or_failed(o)
            msg = o.message if o.status != "ok" else ""
            # a setting missing on the host and not in allow_missing fails it, as in verify
            missing = [s.id for s in settings if s.status == "missing" and not allowed(s.id)]
            if status is None:
                if any(s.status == "failed" for s in settings):
                    status = "failed"
                elif missing:
                    status = "failed"
                    msg = "missing on this host and not in allow_missing: " + ", ".join(missing)
                elif any(s.status in ("changed", "would change") for s in settings):
                    status = "would change" if check else "changed"
                else:
                    status = "unchanged"
            out[name] = HostResult(status, msg, settings)
        return out, artifacts

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "verify")
        allowed = run.profile.missing_ok if run.profile is not None else (lambda _id: False)
        out: Results = {}
        for name, o in outcomes.items():
            settings = []
            for r in o.results:
                s = SettingCheck.model_validate(r)
                s.missing_ok = s.status == "missing" and bool(allowed(s.id))
                settings.append(s)
            status = _unreachable_or_failed(o)
            if status is None:
                if o.status != "ok" or any(s.status == "failed" for s in settings):
                    status = "failed"
                elif any(
                    s.status == "drift" or (s.status == "missing" and not s.missing_ok)
                    for s in settings
                ):
                    status = "drift"
                else:
                    status = "ok"
            msg = o.message if o.status != "ok" else ""
            out[name] = HostResult(status, msg, settings, facts=o.facts)
        return out, artifacts

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "rollback", run.check)
        out: Results = {}
        for name, o in outcomes.items():
            files = [FileRestore.model_validate(r) for r in o.results]
            status = _unreachable_or_failed(o)
            if status is None:
                if o.status != "ok" or any(f.status == "failed" for f in files):
                    status = "failed"
                elif any(f.status not in ("unchanged", "gone") for f in files):
                    status = "would restore" if run.check else "restored"
                else:
                    status = "nothing to do"
            msg = o.message if o.status != "ok" else ""
            out[name] = HostResult(status, msg, files)
        return out, artifacts

    def skipped(self, run: Run, why: str) -> HostResult:
        ok = {"apply": "unchanged", "verify": "ok", "rollback": "nothing to do"}[run.command]
        return HostResult(ok, why, [])

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, [])

    def fill(self, run: Run, host: Any, result: HostResult) -> None:
        if run.command == "rollback":
            host.files = result.detail or []
        else:
            host.settings = result.detail or []
        if run.command == "verify":
            host.facts = result.facts

    # ------------------------------------------------------------------------ tables

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        if r.command == "apply":
            title = f"OS: tuner apply --profile {r.profile}" + (" --check" if r.check else "")
            return title, ["setting", "before -> after"], [_apply_view(h) for h in r.hosts]
        if r.command == "verify":
            title = f"OS: tuner verify --profile {r.profile}"
            return title, ["setting", "wanted", "actual"], [_verify_view(h) for h in r.hosts]
        title = "OS: tuner rollback" + (" --check" if r.check else "")
        return title, ["file"], [_rollback_view(h) for h in r.hosts]


def _os_status(h: Any) -> str:
    """The OS layer's own status on the host (the OS table never shows another layer's)."""
    return str(h.layers.get("os", h.status))


def _host_notes(h: Any, status: str) -> list[str]:
    return [h.message] if h.message and status in ("failed", "unreachable", "not started") else []


def _apply_view(h: report.HostApply) -> HostView:
    status = _os_status(h)

    def row(s: SettingChange) -> Row:
        if s.status in ("changed", "would change"):
            return Row(s.status, (s.id, f"{s.before} -> {s.after}"))
        return Row(s.status, (s.id, f"{s.before}" if s.status == "unchanged" else ""))

    notes = _host_notes(h, status)
    notes += [f"{s.id}: {s.message}" for s in h.settings if s.message and s.status != "unchanged"]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted((s.status for s in h.settings), "setting") if h.settings else "",
        rows=[row(s) for s in h.settings if s.status != "unchanged"],
        all_rows=[row(s) for s in h.settings],
        notes=notes,
    )


def _verify_view(h: report.HostVerify) -> HostView:
    status = _os_status(h)

    def row(s: SettingCheck) -> Row:
        word = "missing (allowed)" if s.missing_ok else s.status
        return Row(word, (s.id, s.wanted or "", s.actual or ""))

    notes = _host_notes(h, status)
    notes += [f"{s.id}: {s.message}" for s in h.settings if s.message and s.status != "ok"]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted(
            ("missing (allowed)" if s.missing_ok else s.status for s in h.settings), "setting"
        )
        if h.settings
        else "",
        rows=[row(s) for s in h.settings if s.status != "ok"],
        all_rows=[row(s) for s in h.settings],
        notes=notes,
    )


def _rollback_view(h: report.HostRollback) -> HostView:
    status = _os_status(h)
    notes = _host_notes(h, status)
    notes += [f"{f.path}: {f.message}" for f in h.files if f.status == "failed" and f.message]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted((f.status for f in h.files), "file") if h.files else "",
        rows=[Row(f.status, (f.path,)) for f in h.files if f.status == "failed"],
        all_rows=[Row(f.status, (f.path,)) for f in h.files],
        notes=notes,
    )
