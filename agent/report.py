"""Reports: what apply, verify and rollback found per host, as pydantic models (the --json
output; docs/json.md is their schema).

A host's report carries one part per layer (`settings`/`files`: the OS, `bios`: the BIOS),
filled by the layer (agent/layers/), `layers` (each layer's own status on that host) and the
host's `status`, the worst of its layers'. The tables are the layers' too
(`agent/layers/run.py: print_report`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from agent.bios.models import BiosRun, CrossCheck, HostBios, HostBiosRollback
from agent.runner import RunSecurity


class SettingChange(BaseModel):
    id: str
    wanted: str | None
    before: str | None
    after: str | None
    status: Literal["unchanged", "changed", "would change", "failed", "missing"]
    message: str = ""


class HostNic(BaseModel):
    """The nic layer's part of a host report (apply, verify, rollback; docs/json.md).

    `status` is the layer's own word (apply unchanged / changed / would change / failed /
    not started / skipped; verify ok / drift / failed; rollback nothing to do / would
    restore / restored / failed / not started). Setting ids are `nic.<interface>.<setting>`."""

    status: str
    message: str = ""
    model: str | None = None  # the profile's NIC model (apply, verify)
    settings: list[SettingChange] = []  # apply
    checks: list[SettingCheck] = []  # verify
    files: list[FileRestore] = []  # rollback: files, config-space registers, ring sizes
    batch: int | None = None


class HostApply(BaseModel):
    host: str
    status: Literal["unchanged", "changed", "would change", "failed", "unreachable", "not started"]
    message: str = ""
    layers: dict[str, str] = {}  # layer -> that layer's status on this host
    settings: list[SettingChange] = []  # the OS layer
    bios: HostBios | None = None  # None: the BIOS layer did not run (no bios section)
    cmdline: HostCmdline | None = None  # None: the kernel command-line layer did not run
    nic: HostNic | None = None  # None: the nic layer did not run (no nic section)


class Summary(BaseModel):
    hosts: int
    by_status: dict[str, int]


class Batches(BaseModel):
    """How the layers ran: rolling batches and the failure cap (whole run, every layer)."""

    batch_size: int
    max_failed: int | None
    batches: int  # batches started
    failed: int  # hosts failed or unreachable, across all batches
    stopped: bool  # the cap was exceeded: later batches were not started
    artifacts: list[str] = []  # every ansible-runner run, in order


class ApplyReport(BaseModel):
    command: Literal["apply"] = "apply"
    profile: str
    check: bool
    inventory: str
    artifacts: str  # the last run's
    layers: list[str] = []  # the layers that ran, in order
    summary: Summary
    hosts: list[HostApply]
    batches: Batches | None = None
    bios: BiosRun | None = None  # the BIOS layer's part of `batches` (reboot, BIOS runs)
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
    # pending: nothing drifted, but BIOS values are set and wait for a reset
    status: Literal["ok", "pending", "drift", "failed", "unreachable"]
    message: str = ""
    layers: dict[str, str] = {}
    settings: list[SettingCheck] = []
    facts: dict[str, Any] = {}  # topology the OS shows: sockets, numa_nodes, threads_per_core
    bios: HostBios | None = None  # None: the profile has no bios section
    cmdline: HostCmdline | None = None  # None: the profile has no kernel.cmdline
    nic: HostNic | None = None  # None: the profile has no nic section
    cross: list[CrossCheck] = []  # does the OS agree with the BIOS?


class VerifyReport(BaseModel):
    command: Literal["verify"] = "verify"
    profile: str
    inventory: str
    artifacts: str
    layers: list[str] = []
    summary: Summary
    hosts: list[HostVerify]
    security: RunSecurity = RunSecurity()

    @property
    def exit_code(self) -> int:
        """0 only when every host conforms; `pending` does not conform yet (exit 1)."""
        return 0 if all(h.status == "ok" for h in self.hosts) else 1


class FileRestore(BaseModel):
    path: str
    status: Literal[
        "restored", "would restore", "unchanged", "removed", "would remove", "gone", "failed"
    ]
    message: str = ""


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


class HostRollback(BaseModel):
    host: str
    status: Literal[
        "restored",
        "would restore",
        "pending reboot",
        "nothing to do",
        "failed",
        "unreachable",
        "not started",
    ]
    message: str = ""
    layers: dict[str, str] = {}
    files: list[FileRestore] = []  # the OS layer
    bios: HostBiosRollback | None = None  # None: the BIOS layer did not run
    cmdline: HostCmdline | None = None  # None: the kernel command-line layer did not run
    nic: HostNic | None = None  # None: the nic layer did not run


class RollbackReport(BaseModel):
    command: Literal["rollback"] = "rollback"
    check: bool
    inventory: str
    artifacts: str
    layers: list[str] = []
    summary: Summary
    hosts: list[HostRollback]
    batches: Batches | None = None
    security: RunSecurity = RunSecurity()

    @property
    def exit_code(self) -> int:
        bad = ("failed", "unreachable", "not started")
        return 1 if any(h.status in bad for h in self.hosts) else 0


def summary(statuses: list[str]) -> Summary:
    by: dict[str, int] = {}
    for s in statuses:
        by[s] = by.get(s, 0) + 1
    return Summary(hosts=len(statuses), by_status=by)


def counts(s: Summary) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(s.by_status.items()))
