"""Reports: what apply, verify and rollback found per host, as pydantic models (the --json
output; docs/json.md is their schema) and as tables for people."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from agent.bios.models import BiosRun, CrossCheck, HostBios
from agent.runner import HostOutcome, RunSecurity


class SettingChange(BaseModel):
    id: str
    wanted: str | None
    before: str | None
    after: str | None
    status: Literal["unchanged", "changed", "would change", "failed", "missing"]
    message: str = ""


class HostApply(BaseModel):
    host: str
    status: Literal["unchanged", "changed", "would change", "failed", "unreachable", "not started"]
    message: str = ""
    settings: list[SettingChange]
    bios: HostBios | None = None  # None: the profile has no bios section


class Summary(BaseModel):
    hosts: int
    by_status: dict[str, int]


class ApplyReport(BaseModel):
    command: Literal["apply"] = "apply"
    profile: str
    check: bool
    inventory: str
    artifacts: str
    summary: Summary
    hosts: list[HostApply]
    bios: BiosRun | None = None
    security: RunSecurity = RunSecurity()  # what the run relaxed (--insecure...)

    @property
    def exit_code(self) -> int:
        bad = ("failed", "unreachable", "not started")
        return 1 if any(h.status in bad for h in self.hosts) else 0


class SettingCheck(BaseModel):
    id: str
    wanted: str | None
    actual: str | None
    status: Literal["ok", "drift", "missing", "failed"]
    missing_ok: bool = False
    message: str = ""


class HostVerify(BaseModel):
    host: str
    status: Literal["ok", "drift", "failed", "unreachable"]
    message: str = ""
    settings: list[SettingCheck]
    facts: dict[str, Any] = {}  # topology the OS shows: sockets, numa_nodes, threads_per_core
    bios: HostBios | None = None  # None: the profile has no bios section
    cross: list[CrossCheck] = []  # does the OS agree with the BIOS?


class VerifyReport(BaseModel):
    command: Literal["verify"] = "verify"
    profile: str
    inventory: str
    artifacts: str
    summary: Summary
    hosts: list[HostVerify]
    security: RunSecurity = RunSecurity()

    @property
    def exit_code(self) -> int:
        return 0 if all(h.status == "ok" for h in self.hosts) else 1


class FileRestore(BaseModel):
    path: str
    status: Literal[
        "restored", "would restore", "unchanged", "removed", "would remove", "gone", "failed"
    ]
    message: str = ""


class HostRollback(BaseModel):
    host: str
    status: Literal["restored", "would restore", "nothing to do", "failed", "unreachable"]
    message: str = ""
    files: list[FileRestore]


class RollbackReport(BaseModel):
    command: Literal["rollback"] = "rollback"
    check: bool
    inventory: str
    artifacts: str
    summary: Summary
    hosts: list[HostRollback]
    security: RunSecurity = RunSecurity()

    @property
    def exit_code(self) -> int:
        return 1 if any(h.status in ("failed", "unreachable") for h in self.hosts) else 0


def _summary(statuses: list[str]) -> Summary:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return Summary(hosts=len(statuses), by_status=counts)


def _host_status(o: HostOutcome) -> str | None:
    if o.status == "unreachable":
        return "unreachable"
    if o.status != "ok" and not o.results:
        return "failed"
    return None


def build_apply(
    profile: str,
    check: bool,
    inventory: str,
    artifacts: str,
    outcomes: dict[str, HostOutcome],
    missing_ok: Any = None,
) -> ApplyReport:
    """`missing_ok(id)`: may this setting be missing (the profile's allow_missing)? A missing
    setting that may not fails its host, as verify would."""
    hosts = []
    for name, o in outcomes.items():
        settings = [SettingChange.model_validate(r) for r in o.results]
        status = _host_status(o)
        message = o.message if o.status != "ok" else ""
        missing = [
            s.id
            for s in settings
            if s.status == "missing" and not (missing_ok is not None and missing_ok(s.id))
        ]
        if status is None:
            if any(s.status == "failed" for s in settings):
                status = "failed"
            elif missing:
                status = "failed"
                message = "missing on this host and not in allow_missing: " + ", ".join(missing)
            elif any(s.status in ("changed", "would change") for s in settings):
                status = "would change" if check else "changed"
            else:
                status = "unchanged"
        hosts.append(
            HostApply(
                host=name,
                status=status,  # type: ignore[arg-type]
                message=message,
                settings=settings,
            )
        )
    return ApplyReport(
        profile=profile,
        check=check,
        inventory=inventory,
        artifacts=artifacts,
        summary=_summary([h.status for h in hosts]),
        hosts=hosts,
    )


def build_verify(
    profile: str, inventory: str, artifacts: str, outcomes: dict[str, HostOutcome], missing_ok: Any
) -> VerifyReport:
    hosts = []
    for name, o in outcomes.items():
        settings = []
        for r in o.results:
            s = SettingCheck.model_validate(r)
            s.missing_ok = s.status == "missing" and bool(missing_ok(s.id))
            settings.append(s)
        status = _host_status(o)
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
        hosts.append(
            HostVerify(
                host=name,
                status=status,  # type: ignore[arg-type]
                message=o.message if o.status != "ok" else "",
                settings=settings,
                facts=o.facts,
            )
        )
    return VerifyReport(
        profile=profile,
        inventory=inventory,
        artifacts=artifacts,
        summary=_summary([h.status for h in hosts]),
        hosts=hosts,
    )


def build_rollback(
    check: bool, inventory: str, artifacts: str, outcomes: dict[str, HostOutcome]
) -> RollbackReport:
    hosts = []
    for name, o in outcomes.items():
        files = [FileRestore.model_validate(r) for r in o.results]
        status = _host_status(o)
        if status is None:
            if o.status != "ok" or any(f.status == "failed" for f in files):
                status = "failed"
            elif any(f.status not in ("unchanged", "gone") for f in files):
                status = "would restore" if check else "restored"
            else:
                status = "nothing to do"
        hosts.append(
            HostRollback(
                host=name,
                status=status,  # type: ignore[arg-type]
                message=o.message if o.status != "ok" else "",
                files=files,
            )
        )
    return RollbackReport(
        check=check,
        inventory=inventory,
        artifacts=artifacts,
        summary=_summary([h.status for h in hosts]),
        hosts=hosts,
    )


# --------------------------------------------------------------------------- human output

STYLE = {
    "ok": "green",
    "unchanged": "green",
    "nothing to do": "green",
    "changed": "yellow",
    "would change": "yellow",
    "restored": "yellow",
    "would restore": "yellow",
    "removed": "yellow",
    "would remove": "yellow",
    "missing": "cyan",
    "drift": "red",
    "failed": "bold red",
    "unreachable": "bold red",
}


def _st(s: str) -> str:
    return f"[{STYLE.get(s, '')}]{s}[/]" if s in STYLE else s


def _counts(s: Summary) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(s.by_status.items()))


def print_apply(r: ApplyReport, console: Console) -> None:
    t = Table(
        title=f"tuner apply --profile {r.profile}" + (" --check" if r.check else ""),
        show_lines=False,
    )
    for col in ("host", "setting", "status", "before -> after"):
        t.add_column(col)
    for h in r.hosts:
        shown = [s for s in h.settings if s.status != "unchanged"]
        if not shown:
            n = len(h.settings)
            t.add_row(h.host, f"({n} settings)" if n else "", _st(h.status), h.message)
            continue
        for i, s in enumerate(shown):
            arrow = f"{s.before} -> {s.after}" if s.status in ("changed", "would change") else ""
            t.add_row(h.host if i == 0 else "", s.id, _st(s.status), arrow or s.message)
        if h.message:
            t.add_row("", "", _st(h.status), h.message)
    console.print(t)
    console.print(f"{r.summary.hosts} hosts: {_counts(r.summary)}. Run log: {r.artifacts}")


def print_verify(r: VerifyReport, console: Console) -> None:
    t = Table(title=f"tuner verify --profile {r.profile}")
    for col in ("host", "setting", "wanted", "actual", "status"):
        t.add_column(col)
    for h in r.hosts:
        bad = [s for s in h.settings if s.status != "ok"]
        if not bad:
            t.add_row(
                h.host,
                f"({len(h.settings)} settings)",
                "",
                "",
                _st(h.status) + (f" {h.message}" if h.message else ""),
            )
            continue
        for i, s in enumerate(bad):
            status = s.status + (" (allowed)" if s.missing_ok else "")
            t.add_row(
                h.host if i == 0 else "",
                s.id,
                s.wanted or "",
                s.actual or "",
                _st(s.status).replace(s.status, status) if s.status in STYLE else status,
            )
    console.print(t)
    verdict = "conforms" if r.exit_code == 0 else "does NOT conform"
    console.print(f"{r.summary.hosts} hosts: {_counts(r.summary)}. The fleet {verdict}.")


def print_rollback(r: RollbackReport, console: Console) -> None:
    t = Table(title="tuner rollback" + (" --check" if r.check else ""))
    for col in ("host", "status", "files", "message"):
        t.add_column(col)
    for h in r.hosts:
        n = sum(1 for f in h.files if f.status not in ("unchanged",))
        failed = [f for f in h.files if f.status == "failed"]
        msg = h.message or "; ".join(f"{f.path}: {f.message}" for f in failed)
        t.add_row(h.host, _st(h.status), str(n), msg)
    console.print(t)
    console.print(f"{r.summary.hosts} hosts: {_counts(r.summary)}. Run log: {r.artifacts}")
