"""The BIOS part of tuner's reports (the --json schema in docs/json.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

BiosStatus = Literal[
    "unchanged",
    "would change",
    "changed",
    "pending reboot",
    "ok",
    "pending",
    "drift",
    "failed",
    "skipped",
    "not started",
]


class BiosAttribute(BaseModel):
    """One BIOS attribute of the host's plan: the vendor's name and values."""

    setting: str  # the profile's setting (nps, smt, vendor_attributes.X, required by Y)
    attribute: str
    wanted: str | None
    current: str | None = None  # in effect before tuner acted
    pending: str | None = None  # waiting in the settings object for the next reset
    after: str | None = None  # in effect after the reset tuner made
    status: str
    message: str = ""


class HostBios(BaseModel):
    status: BiosStatus
    message: str = ""
    vendor: str | None = None  # recognised from the attribute registry
    bmc_vendor: str | None = None  # what the BMC calls itself
    registry: str | None = None
    reboot: Literal["not needed", "needed", "would reboot", "done"] = "not needed"
    batch: int | None = None
    sent: bool = False  # a PATCH (pending values) was sent in this run
    warnings: list[str] = []
    settings_messages: list[str] = []  # @Redfish.Settings.Messages (failures of the last reset)
    topology: dict[str, Any] = {}  # nps, smt in effect (neutral terms)
    attributes: list[BiosAttribute] = []


class BiosRun(BaseModel):
    """How the BIOS part of an apply ran: batches and the failure cap."""

    reboot: Literal["never", "if-needed"]
    batch_size: int
    max_failed: int | None
    batches: int  # batches started
    failed: int  # hosts failed, across all batches
    stopped: bool  # the cap was exceeded: later batches were not started
    artifacts: list[str] = []


class CrossCheck(BaseModel):
    """Does the OS agree with the BIOS (NUMA nodes = NPS x sockets; SMT off = 1 thread/core)?"""

    id: Literal["numa_nodes", "threads_per_core"]
    wanted: str
    actual: str | None
    status: Literal["ok", "mismatch", "unknown"]
    source: Literal["bios", "profile"]  # the BIOS value in effect, else the profile's
    message: str = ""


class BiosRestore(BaseModel):
    """One attribute of a BIOS rollback: the value tuner recorded before its first change."""

    attribute: str
    original: str | None  # recorded before tuner's first PATCH: what rollback puts back
    current: str | None = None  # in effect before this rollback
    pending: str | None = None  # waiting in the settings object before this rollback
    after: str | None = None  # in effect after the reset this rollback made
    status: Literal["unchanged", "would restore", "restored", "pending reboot", "failed"]
    message: str = ""


class HostBiosRollback(BaseModel):
    status: Literal[
        "nothing to do",  # no record for this host, or every recorded value is in effect
        "would restore",  # --check
        "restored",  # the recorded values are in effect again (record moved to history)
        "pending reboot",  # restored into the settings object; in effect at the next reset
        "failed",
        "skipped",
        "not started",
    ]
    message: str = ""
    bmc_vendor: str | None = None
    system: str | None = None  # the Redfish system the record is for
    serial: str | None = None
    reboot: Literal["not needed", "needed", "would reboot", "done"] = "not needed"
    batch: int | None = None
    sent: bool = False
    warnings: list[str] = []  # what tuner undid, and what it left alone (not its own)
    attributes: list[BiosRestore] = []
