"""The health policy: which checks run, their thresholds and severities (checks/*.yml).

Typed comparators only (max, fractions, expected values): nothing from a policy file is
ever evaluated as code. A bad policy is bad input (exit 2, file and field named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.errors import BadInput
from agent.paths import share_dir
from agent.yamlfile import load_model

Severity = Literal["warn", "fail"]


class _C(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    required: bool = True  # unknown (could not be read) counts as fail


class CountCheck(_C):
    max: int = Field(default=0, ge=0)
    severity: Severity = "fail"


class BadPagesCheck(_C):
    warn_fraction: float = Field(default=0.9, gt=0)
    fail_fraction: float = Field(default=1.0, gt=0)


class XgmiLinksCheck(_C):
    expected_up: int = Field(default=7, ge=0)
    severity: Severity = "fail"


class SeverityCheck(_C):
    severity: Severity = "fail"


class ReplayCheck(_C):
    max: int = Field(default=100, ge=0)  # replays since boot
    max_per_minute: float | None = Field(default=8, ge=0)  # averaged over the node's uptime
    severity: Severity = "warn"
    required: bool = False


class PcieLinkCheck(_C):
    """Width or speed below what the link is capable of, or below ``expected``."""

    expected: int | None = Field(default=None, ge=1)
    severity: Severity = "fail"


class AerCheck(_C):
    """PCIe AER counters since boot of the GPU's PCI device (TOTAL_ERR_* of each file).
    A limit of None: that kind is reported, not judged."""

    fatal_max: int | None = Field(default=0, ge=0)
    fatal_severity: Severity = "fail"
    nonfatal_max: int | None = Field(default=0, ge=0)
    nonfatal_severity: Severity = "warn"
    correctable_max: int | None = Field(default=None, ge=0)
    correctable_severity: Severity = "warn"
    required: bool = False  # no AER files: the kernel or firmware does not expose them


class KernelLogCheck(_C):
    """amdgpu events in the kernel log since boot, each kind at its severity ("ignore": not
    judged). ``unattributed``: an event line without a PCI address (older DRM_ERROR lines)
    counts against every GPU of the node."""

    ring_timeout: Severity | Literal["ignore"] = "fail"
    soft_recovered: Severity | Literal["ignore"] = "warn"
    gpu_reset: Severity | Literal["ignore"] = "fail"
    ras_uncorrectable: Severity | Literal["ignore"] = "fail"
    unattributed: Severity | Literal["ignore"] = "fail"
    required: bool = False  # an unreadable log (dmesg restricted, not root) is unknown


class RasCheck(_C):
    blocks: list[str] = ["UMC"]  # must be ENABLED (HBM ECC)
    severity: Severity = "fail"


class VramCheck(_C):
    expected_total_gb: float | None = Field(default=288, gt=0)  # 288 GB HBM3E on MI355X
    total_tolerance: float = Field(default=0.02, ge=0, lt=1)
    max_used_gb: float | None = Field(default=2.0, ge=0)  # used at idle (no job running)
    severity: Severity = "fail"


class PowerCheck(_C):
    expected_cap_w: float | None = Field(default=1400, gt=0)  # MI355X TBP
    tolerance_w: float = Field(default=5, ge=0)
    throttle: Severity | Literal["ignore"] = "warn"  # throttling at idle
    severity: Severity = "fail"
    required: bool = False


class DeviceAccessCheck(_C):
    severity: Severity = "fail"


class NumaCheck(_C):
    required: bool = False
    severity: Severity = "warn"


class ProcessesCheck(_C):
    allowed: list[str] = []  # process names that may run on a GPU (monitoring agents)
    severity: Severity = "fail"


class PartitionCheck(_C):
    compute: str | None = "SPX"
    memory: str | None = "NPS1"
    severity: Severity = "fail"


class IdleCheck(_C):
    """The idle node of AMD's acceptance guide (`amd-smi monitor -putm`): 0 % GFX and memory
    activity, low clocks, temperature well under 85 C; outside the range: FAILED."""

    max_activity_pct: int | None = Field(default=0, ge=0, le=100)  # GFX and UMC activity
    max_gfx_clock_fraction: float | None = Field(default=0.5, gt=0, le=1)  # of the GFX max
    max_power_fraction: float | None = Field(default=0.5, gt=0, le=1)  # of the power cap
    max_temperature_c: float | None = Field(default=85, gt=0)  # hotspot and VRAM
    perf_level: list[str] | None = None  # allowed performance levels (AUTO, ...); None: any
    severity: Severity = "fail"
    required: bool = False  # a GPU whose idle readings are unsupported is not excluded


class IdentityCheck(_C):
    """Serials, UUIDs and hive ids must be unique across the fleet (checks/identity.py)."""

    keys: list[Literal["serial", "uuid", "hip_uuid", "hive_id"]] = [
        "serial",
        "uuid",
        "hip_uuid",
        "hive_id",
    ]
    severity: Severity = "fail"  # fail: the gate fails; warn: a fleet warning


class FirmwareCheck(_C):
    required: bool = False
    severity: Severity = "warn"  # drift within a node or from the fleet majority
    mixed_hive: Severity = "fail"  # different firmware inside one XGMI hive fails the node
    # Known-good baseline: firmware id (PM, PSP_SOSDRV, ..., or "vbios", "driver") -> allowed
    # versions as amdsmi prints them. Empty: no baseline, only drift is checked.
    allowed: dict[str, list[str]] = {}
    baseline_severity: Severity = "fail"


class Checks(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    query: _C = Field(default_factory=_C, alias="gpu.query")
    missing: _C = Field(default_factory=_C, alias="gpu.missing")
    ecc_uncorrectable: CountCheck = Field(
        default_factory=lambda: CountCheck(), alias="gpu.ecc.uncorrectable"
    )
    ecc_deferred: CountCheck = Field(
        default_factory=lambda: CountCheck(severity="warn", required=False),
        alias="gpu.ecc.deferred",
    )
    bad_pages: BadPagesCheck = Field(default_factory=BadPagesCheck, alias="gpu.bad_pages.count")
    bad_pages_unreservable: CountCheck = Field(
        default_factory=CountCheck, alias="gpu.bad_pages.unreservable"
    )
    bad_pages_pending: CountCheck = Field(
        default_factory=lambda: CountCheck(severity="warn"), alias="gpu.bad_pages.pending"
    )
    cper_fatal: CountCheck = Field(
        default_factory=lambda: CountCheck(required=False), alias="gpu.cper.fatal"
    )
    xgmi_links: XgmiLinksCheck = Field(default_factory=XgmiLinksCheck, alias="gpu.xgmi.links")
    xgmi_errors: CountCheck = Field(default_factory=lambda: CountCheck(), alias="gpu.xgmi.errors")
    pcie_width: PcieLinkCheck = Field(default_factory=PcieLinkCheck, alias="gpu.pcie.width")
    pcie_speed: PcieLinkCheck = Field(
        default_factory=lambda: PcieLinkCheck(severity="warn", required=False),
        alias="gpu.pcie.speed",
    )
    pcie_replay: ReplayCheck = Field(default_factory=ReplayCheck, alias="gpu.pcie.replay")
    pcie_aer: AerCheck = Field(default_factory=AerCheck, alias="gpu.pcie.aer")
    kernel_log: KernelLogCheck = Field(default_factory=KernelLogCheck, alias="gpu.kernel_log")
    ecc_correctable: CountCheck = Field(
        default_factory=lambda: CountCheck(max=1000), alias="gpu.ecc.correctable"
    )
    ras: RasCheck = Field(default_factory=RasCheck, alias="gpu.ras.enabled")
    vram: VramCheck = Field(default_factory=VramCheck, alias="gpu.vram")
    power: PowerCheck = Field(default_factory=PowerCheck, alias="gpu.power")
    device_access: DeviceAccessCheck = Field(
        default_factory=DeviceAccessCheck, alias="gpu.device_access"
    )
    numa: NumaCheck = Field(default_factory=NumaCheck, alias="gpu.numa")
    pcie_errors: CountCheck = Field(
        default_factory=lambda: CountCheck(max=100), alias="gpu.pcie.errors"
    )
    temperature: _C = Field(default_factory=_C, alias="gpu.temperature")
    processes: ProcessesCheck = Field(default_factory=ProcessesCheck, alias="gpu.processes")
    firmware: FirmwareCheck = Field(default_factory=FirmwareCheck, alias="gpu.firmware")
    partition: PartitionCheck = Field(default_factory=PartitionCheck, alias="gpu.partition")
    idle: IdleCheck = Field(default_factory=IdleCheck, alias="gpu.idle")
    identity: IdentityCheck = Field(default_factory=IdentityCheck, alias="fleet.identity")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    description: str = ""
    expected_gpus_per_node: int | None = Field(default=8, ge=1, le=64)
    checks: Checks = Field(default_factory=Checks)
    file: str | None = None


def default_policy_path() -> Path:
    return share_dir("checks") / "default.yml"


def load_policy(path: str | Path | None = None) -> Policy:
    p = Path(path) if path else default_policy_path()
    if not p.is_file():
        raise BadInput(f"policy file {p} not found", field="--policy")
    pol, _ = load_model(p, Policy, "policy", empty=True)
    pol.file = str(p)
    return pol
