"""The OS layer: sysctl, THP, governor, C-states on each host, through Ansible (tuner_os).

All host-side logic is in agent/knobs.py (the `tuner_os` module); this file runs
playbooks/os.yml and turns each host's module result into its part of the report: `settings`
(apply, verify), `files` (rollback) and `facts` (the topology the OS shows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from agent import view
from agent.layers.base import HostResult, Layer, Results, Run
from agent.modargs import TUNER_OS
from agent.report import FileRestore
from agent.view import HostView, Row

if TYPE_CHECKING:
    from agent.inventory import InventoryHost
    from agent.runner import HostOutcome


# tuner_os's arguments -> the playbook variables that carry them (playbooks/os.yml)
PLAYBOOK_VARS = {"mode": "tuner_mode", "settings": "tuner_settings", "persist": "tuner_persist"}


class SettingChange(BaseModel):
    id: str
    wanted: str | None
    before: str | None
    after: str | None
    status: Literal["unchanged", "changed", "would change", "failed", "missing"]
    message: str = ""


class SettingCheck(BaseModel):
    id: str
    wanted: str | None
    actual: str | None
    status: Literal["ok", "drift", "missing", "failed"]
    missing_ok: bool = False
    message: str = ""


class OsPart(BaseModel):
    """The OS layer's part of a host report (`layers.os.detail`)."""

    settings: list[SettingChange | SettingCheck] = []  # apply, verify
    files: list[FileRestore] = []  # rollback
    facts: dict[str, Any] = {}  # verify: the topology the OS shows (cross-layer checks)


def _unreachable_or_failed(o: HostOutcome) -> str | None:
    if o.status == "unreachable":
        return "unreachable"
    if o.status != "ok" and not o.results:
        return "failed"
    return None


class OsLayer(Layer):
    name = "os"
    label = "OS"
    order = 30
    section = "os"
    module = "tuner_os"
    reboot = "none"  # runtime values: set on the booted system, after the reboot point
    prefix_messages = False  # the host's message is the OS's as is

    @classmethod
    def schema(cls) -> type[BaseModel]:
        from agent.profiles import OsSection

        return OsSection

    def wants(self, run: Run) -> bool:
        if run.command != "apply" or run.profile is None:
            return True  # verify reads the OS facts the cross-layer checks need
        # apply: when the profile sets OS values, or when no other section is set (an empty
        # profile is applied as "nothing to change" rather than refused)
        others = [s for s in run.profile.set_sections() if s != self.section]
        return bool(run.profile.os_settings()) or not others

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def _run(
        self, run: Run, hosts: list[InventoryHost], mode: str, check: bool = False
    ) -> tuple[dict[str, HostOutcome], str]:
        """playbooks/os.yml with the module's arguments (typed in agent/modargs.py: an
        argument not given here is the module's default)."""
        args: dict[str, Any] = {"mode": "verify" if mode == "facts" else mode}
        if run.profile is not None and mode != "rollback":
            args["settings"] = run.profile.os_settings() if mode != "facts" else []
            args["persist"] = run.profile.section(self.section or "").persist
        if mode == "facts":
            args["settings"] = []
        extra = {PLAYBOOK_VARS[k]: v for k, v in TUNER_OS.check(args).items()}
        # verify reads only: the lock task is skipped by its tag rather than per host (fewer
        # Ansible events for ansible-runner to carry; docs/performance.md, issue 20)
        skip = "tuner_lock" if args["mode"] == "verify" else None
        return run.playbook(
            "os.yml", hosts, extra, check=check, module=self.module or "", skip_tags=skip
        )

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
            out[name] = HostResult(status, msg, OsPart(settings=[*settings]))
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
            out[name] = HostResult(
                status, msg, OsPart(settings=[*settings], facts=o.facts), o.facts
            )
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
            out[name] = HostResult(status, msg, OsPart(files=files))
        return out, artifacts

    def skipped(self, run: Run, why: str) -> HostResult:
        ok = {"apply": "unchanged", "verify": "ok", "rollback": "nothing to do"}[run.command]
        return HostResult(ok, why, OsPart())

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, OsPart())

    @classmethod
    def v1_keys(cls, command: str, result: HostResult | None) -> dict[str, Any]:
        d = result.detail if result is not None else OsPart()
        if command == "rollback":
            return {"files": d.files}
        if command == "verify":
            return {"settings": d.settings, "facts": d.facts}
        return {"settings": d.settings}

    def from_v1(self, command: str, host: dict[str, Any]) -> Any:
        return OsPart.model_validate(
            {k: host[k] for k in ("settings", "files", "facts") if k in host}
        )

    def part(self, host: Any) -> OsPart:
        d = host.detail(self.name)
        if d is None:
            return OsPart()
        return d if isinstance(d, OsPart) else OsPart.model_validate(d)

    def reasons(self, part: Any) -> list[str]:
        out = []
        for s in part.settings if part is not None else []:
            if s.status in ("drift", "failed") or (
                s.status == "missing" and not getattr(s, "missing_ok", False)
            ):
                out.append(f"{s.id} is {getattr(s, 'actual', None)!r}, profile wants {s.wanted!r}")
        return out

    # ------------------------------------------------------------------------ tables

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        if r.command == "apply":
            title = f"OS: tuner apply --profile {r.profile}" + (" --check" if r.check else "")
            views = [_apply_view(h, self.part(h)) for h in r.hosts]
            return title, ["setting", "before -> after"], views
        if r.command == "verify":
            title = f"OS: tuner verify --profile {r.profile}"
            views = [_verify_view(h, self.part(h)) for h in r.hosts]
            return title, ["setting", "wanted", "actual"], views
        title = "OS: tuner rollback" + (" --check" if r.check else "")
        return title, ["file"], [_rollback_view(h, self.part(h)) for h in r.hosts]


def _os_status(h: Any) -> str:
    """The OS layer's own status on the host (the OS table never shows another layer's)."""
    part = h.layers.get(OsLayer.name)
    return str(part.status if part is not None else h.status)


def _host_notes(h: Any, status: str) -> list[str]:
    return [h.message] if h.message and status in ("failed", "unreachable", "not started") else []


def _apply_view(h: Any, p: OsPart) -> HostView:
    status = _os_status(h)
    settings = [s for s in p.settings if isinstance(s, SettingChange)]

    def row(s: SettingChange) -> Row:
        if s.status in ("changed", "would change"):
            return Row(s.status, (s.id, f"{s.before} -> {s.after}"))
        return Row(s.status, (s.id, f"{s.before}" if s.status == "unchanged" else ""))

    notes = _host_notes(h, status)
    notes += [f"{s.id}: {s.message}" for s in settings if s.message and s.status != "unchanged"]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted((s.status for s in settings), "setting") if settings else "",
        rows=[row(s) for s in settings if s.status != "unchanged"],
        all_rows=[row(s) for s in settings],
        notes=notes,
    )


def _verify_view(h: Any, p: OsPart) -> HostView:
    status = _os_status(h)
    settings = [s for s in p.settings if isinstance(s, SettingCheck)]

    def row(s: SettingCheck) -> Row:
        word = "missing (allowed)" if s.missing_ok else s.status
        return Row(word, (s.id, s.wanted or "", s.actual or ""))

    notes = _host_notes(h, status)
    notes += [f"{s.id}: {s.message}" for s in settings if s.message and s.status != "ok"]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted(
            ("missing (allowed)" if s.missing_ok else s.status for s in settings), "setting"
        )
        if settings
        else "",
        rows=[row(s) for s in settings if s.status != "ok"],
        all_rows=[row(s) for s in settings],
        notes=notes,
    )


def _rollback_view(h: Any, p: OsPart) -> HostView:
    status = _os_status(h)
    files = p.files
    notes = _host_notes(h, status)
    notes += [f"{f.path}: {f.message}" for f in files if f.status == "failed" and f.message]
    return HostView(
        host=h.host,
        status=status,
        summary=view.counted((f.status for f in files), "file") if files else "",
        rows=[Row(f.status, (f.path,)) for f in files if f.status == "failed"],
        all_rows=[Row(f.status, (f.path,)) for f in files],
        notes=notes,
    )
