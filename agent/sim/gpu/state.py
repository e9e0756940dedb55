"""A simulated node's GPUs: pydantic models, the state file the C library reads, node install.

``NodeGpuState.healthy()`` gives a healthy 8 x MI355X node (one XGMI hive, 8 link slots per
GPU: its own disabled, 7 up; the legacy XGMI error status INVAL as on real MI355X; PCIe Gen5
x16, no errors). Change fields to build a scenario, then ``install_node(root,
state, lib)`` lays out a simulated node under ``root``:

* ``root/opt/rocm/lib/libamd_smi.so`` -- the simulated library (``ROCM_PATH=root/opt/rocm``),
* ``root/opt/rocm/share/tuner-sim/gpu-state`` -- the state file (docs/sim-gpu-state.md),
* ``root/sys/bus/pci/devices/<bdf>/`` -- the PCI bus view of every GPU, including the ones
  hidden from amdsmi (``enumerated=False``).

The defaults here mirror the C library's defaults for keys a hand-written state file omits
(``sim_gpu_defaults`` in libamd_smi.c); a test keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.sim.nodelog import AerState, KernelEvent

STATE_RELPATH = Path("opt/rocm/share/tuner-sim/gpu-state")
LIB_RELPATH = Path("opt/rocm/lib/libamd_smi.so")
ROCM_RELPATH = Path("opt/rocm")
PCI_DEVICES_RELPATH = Path("sys/bus/pci/devices")
STATE_ENV = "TUNER_SIM_GPU_STATE"

#: PCI bus numbers of GPUs 0-7 (GPU i >= 8 uses domain i // 8, bus of i % 8).
DEFAULT_BUSES = (0x05, 0x15, 0x65, 0x75, 0x85, 0x95, 0xE5, 0xF5)
#: Firmware ids (amdsmi ``AMDSMI_FW_ID_*`` without the prefix) and versions of a healthy GPU.
DEFAULT_FIRMWARE: dict[str, int] = {
    "CP_MEC1": 43,
    "CP_MEC2": 43,
    "RLC": 98,
    "SDMA0": 19,
    "SDMA1": 19,
    "VCN": 0x0111000E,
    "PSP_SOSDRV": 0x00370036,
    "TA_RAS": 0x1B00013E,
    "TA_XGMI": 0x20000014,
    "PM": 0x00550E00,
}
#: The 19 GPU blocks amdsmi reports ECC counts and RAS features for.
GPU_BLOCKS = (
    "UMC",
    "SDMA",
    "GFX",
    "MMHUB",
    "ATHUB",
    "PCIE_BIF",
    "HDP",
    "XGMI_WAFL",
    "DF",
    "SMN",
    "SEM",
    "MP0",
    "MP1",
    "FUSE",
    "MCA",
    "VCN",
    "JPEG",
    "IH",
    "MPIO",
)
RAS_STATES = ("NONE", "DISABLED", "PARITY", "SING_C", "MULT_UC", "POISON", "ENABLED")
CPER_NOTIFY_TYPES = (
    "CMC",
    "CPE",
    "MCE",
    "PCIE",
    "INIT",
    "NMI",
    "BOOT",
    "DMAR",
    "SEA",
    "SEI",
    "PEI",
    "CXL_COMPONENT",
)
_BDF_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$")
_HEX_RE = re.compile(r"^(0[xX])?[0-9a-fA-F]*$")
_STATUS_RE = re.compile(r"^(AMDSMI_STATUS_)?[A-Z0-9_]+$")
_FUNC_RE = re.compile(r"^amdsmi_[a-z0-9_A-Z]+$")

Status = int | str  # an integer, or a name like "DRIVER_NOT_LOADED" / "AMDSMI_STATUS_BUSY"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_fail(fail: dict[str, Status]) -> dict[str, Status]:
    for func, status in fail.items():
        if not _FUNC_RE.match(func):
            raise ValueError(f"fail: {func!r} is not an amdsmi C function name (amdsmi_...)")
        if isinstance(status, str) and not _STATUS_RE.match(status.upper()):
            raise ValueError(f"fail.{func}: bad status {status!r}")
        if isinstance(status, int) and not 0 <= status <= 0xFFFFFFFF:
            raise ValueError(f"fail.{func}: status {status} out of range")
    return fail


class EccCounts(_Model):
    correctable: int = Field(default=0, ge=0)
    uncorrectable: int = Field(default=0, ge=0)
    deferred: int = Field(default=0, ge=0)


class BadPageStatus(StrEnum):
    RESERVED = "reserved"  # 0
    PENDING = "pending"  # 1
    UNRESERVABLE = "unreservable"  # 2


class BadPage(_Model):
    address: int = Field(ge=0)
    size: int = Field(default=4096, ge=0)
    status: BadPageStatus = BadPageStatus.RESERVED


class PcieState(_Model):
    """Speeds in MT/s as amdsmi reports them (32000 = Gen5 32 GT/s)."""

    max_width: int = 16
    max_speed: int = 32000
    interface_version: int = 5
    max_interface_version: int = 5
    slot_type: str = "OAM"  # PCIE, OAM, CEM, UNKNOWN
    width: int = 16
    speed: int = 32000
    bandwidth: int = 0
    replay_count: int = 0
    l0_to_recovery_count: int = 0
    replay_roll_over_count: int = 0
    nak_sent_count: int = 0
    nak_received_count: int = 0
    lc_perf_other_end_recovery_count: int = 0


LinkState = Literal["U", "D", "X"]  # up, down, disabled


class XgmiState(_Model):
    # Explicit states of the first slots; None (or slots past the list): derived by the
    # library from the hive (own slot X, a peer off the bus D, others U).
    link_status: list[LinkState] | None = Field(default=None, max_length=8)
    # 0 none, 1 one error, 2 multiple errors; "inval": the query fails with
    # AMDSMI_STATUS_INVAL as on every MI300/MI355 (DF 4.x, rocm-systems #11468).
    error_status: int | Literal["inval"] = "inval"
    lanes: int = 16
    hive_id: int | None = None  # None: derived from the node index
    node_id: int | None = None  # None: the GPU index
    index: int | None = None  # None: the GPU index
    # Per link slot (amdsmi_get_link_metrics): bit rate in Gb/s and width in lanes
    # (max_bandwidth = bit_rate x width); the last value repeats for the slots after it.
    bit_rate: list[int] = Field(default_factory=lambda: [32], min_length=1, max_length=8)
    width: list[int] = Field(default_factory=lambda: [16], min_length=1, max_length=8)


class TempSensor(_Model):
    """Degrees C; None = NOT_SUPPORTED for that metric."""

    current: int | None = None
    max: int | None = None
    critical: int | None = None
    emergency: int | None = None


class Temperatures(_Model):
    hotspot: TempSensor = Field(
        default_factory=lambda: TempSensor(current=45, max=100, critical=105, emergency=110)
    )
    vram: TempSensor = Field(
        default_factory=lambda: TempSensor(current=40, max=95, critical=100, emergency=105)
    )
    edge: TempSensor = Field(default_factory=TempSensor)  # not reported on MI3xx


class Clock(_Model):
    """One clock domain in MHz (amdsmi_get_clock_info); deep sleep = current below min."""

    current: int = Field(ge=0)
    min: int = Field(ge=0)
    max: int = Field(ge=0)


#: Clock domains of an idle MI355X (amdsmi clock types). GFX 144 MHz and MEM 1900 MHz are the
#: idle example of AMD's acceptance guide (system-acceptance-docs, health-checks.md "Monitor
#: utilization metrics"); the ranges are not confirmed for MI355X (docs/sim-gpu-state.md).
#: Types not listed (DCEF, PCIE, VCLK1, DCLK1) answer NOT_SUPPORTED.
DEFAULT_CLOCKS: dict[str, tuple[int, int, int]] = {
    "GFX": (144, 500, 2400),
    "MEM": (1900, 900, 1900),
    "SOC": (28, 28, 1143),
    "DF": (1200, 1200, 2000),
    "VCLK0": (29, 29, 1333),
    "DCLK0": (22, 22, 1143),
}
PERF_LEVELS = (
    "AUTO",
    "LOW",
    "HIGH",
    "MANUAL",
    "STABLE_STD",
    "STABLE_PEAK",
    "STABLE_MIN_MCLK",
    "STABLE_MIN_SCLK",
    "DETERMINISM",
)
#: Logical devices per physical MI355X in each compute partition mode (8 XCDs: SPX one
#: device of 8 XCCs, DPX 2 x 4, QPX 4 x 2, CPX 8 x 1; ROCm/amdsmi issue 132's profile table).
PARTITIONS_PER_GPU = {"SPX": 1, "DPX": 2, "QPX": 4, "CPX": 8}


def _default_clocks() -> dict[str, Clock | None]:
    return {k: Clock(current=c, min=lo, max=hi) for k, (c, lo, hi) in DEFAULT_CLOCKS.items()}


class VbiosInfo(_Model):
    name: str = "AMD MI355X GENERIC"
    build_date: str = "2025/05/20 12:00"
    part_number: str = "113-M3550100-101"
    version: str = "022.040.003.043.000001"


class DriverInfo(_Model):
    name: str = "amdgpu"
    version: str = "6.14.14"
    date: str = "2015/01/01 00:00"


class GpuProcess(_Model):
    pid: int = Field(ge=0, le=0xFFFFFFFF)
    name: str
    vram: int = Field(default=0, ge=0)  # bytes
    cu_occupancy: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _no_comma(cls, v: str) -> str:
        if "," in v or "\n" in v:
            raise ValueError("process name must not contain ',' or a newline")
        return v


class CperEntry(_Model):
    severity: Literal["FATAL", "NON_FATAL_UNCORRECTED", "NON_FATAL_CORRECTED"] = "FATAL"
    timestamp: dt.datetime = dt.datetime(2025, 1, 1, 0, 0, 0)
    notify_type: str = "MCE"
    record_id: str | None = Field(default=None, max_length=8, pattern=r"^[A-Za-z0-9_.:-]*$")

    @field_validator("notify_type")
    @classmethod
    def _notify(cls, v: str) -> str:
        if v.upper() not in CPER_NOTIFY_TYPES:
            raise ValueError(f"notify_type must be one of {CPER_NOTIFY_TYPES}")
        return v.upper()


class GpuState(_Model):
    """One GPU. Identity fields left None are derived from the GPU's index (see below)."""

    enumerated: bool = True  # False: on the PCI bus but missing from amdsmi
    bdf: str | None = None
    uuid: str | None = None
    drm_render: int | None = None
    drm_card: int | None = None
    hsa_id: int | None = None
    hip_id: int | None = None
    hip_uuid: str | None = None
    kfd_id: int | None = None
    kfd_node_id: int | None = None
    current_partition_id: int = 0
    market_name: str = "AMD Instinct MI355X"
    vendor_id: int = 0x1002
    vendor_name: str = "Advanced Micro Devices Inc. [AMD/ATI]"
    subvendor_id: int = 0x1002
    device_id: int = 0x75A3
    rev_id: int = 0x00
    asic_serial: str | None = None  # hex digits (amdsmi parses it with int(s, 16))
    oam_id: int | None = None
    num_compute_units: int = 256
    target_graphics_version: str = "gfx950"
    subsystem_id: int = 0x75A3
    model_number: str = "102-G30211-00"
    product_serial: str | None = None
    fru_id: str = ""
    product_name: str = "AMD Instinct MI355X OAM"
    manufacturer_name: str = "AMD"
    ecc: dict[str, EccCounts] = Field(default_factory=dict)  # block name -> counts
    ras_features: dict[str, str] = Field(default_factory=dict)  # block -> state (ENABLED)
    ras_eeprom_version: int = 0x30000
    ras_ecc_schema_flag: int = 0xF
    bad_pages: list[BadPage] = Field(default_factory=list)
    bad_page_threshold: int = 128
    pcie: PcieState = Field(default_factory=PcieState)
    xgmi: XgmiState = Field(default_factory=XgmiState)
    temperatures: Temperatures = Field(default_factory=Temperatures)
    firmware: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_FIRMWARE))
    vbios: VbiosInfo = Field(default_factory=VbiosInfo)
    driver: DriverInfo = Field(default_factory=DriverInfo)
    processes: list[GpuProcess] = Field(default_factory=list)
    compute_partition: str = "SPX"
    memory_partition: str = "NPS1"
    numa_node: int | None = None
    vram_total: int = Field(default=288 << 30, ge=0)  # bytes: 288 GB HBM3E
    vram_used: int = Field(default=283 << 20, ge=0)  # bytes the driver holds at idle
    vram_vendor: str = "HYNIX"  # amdsmi_get_gpu_vram_info vram_vendor (not confirmed: MI355X)
    # Idle-state signals (amdsmi_get_gpu_activity, _clock_info, _power_info, _perf_level):
    # percent busy (None = N/A, what MI3xx answer for mm_activity), socket power in W.
    activity_gfx: int | None = Field(default=0, ge=0, le=100)
    activity_umc: int | None = Field(default=0, ge=0, le=100)
    activity_mm: int | None = Field(default=None, ge=0, le=100)
    clocks: dict[str, Clock | None] = Field(default_factory=lambda: _default_clocks())
    power_current: int | None = Field(default=251, ge=0, lt=0xFFFF)  # W
    power_average: int | None = Field(default=None, ge=0, lt=0xFFFF)  # W; N/A on MI3xx
    perf_level: str = "AUTO"
    num_partition: int = Field(default=1, ge=1, le=8)  # logical devices of the physical GPU
    power_cap: int = Field(default=1_400_000_000, ge=0)  # microwatts (1400 W)
    power_cap_default: int = Field(default=1_400_000_000, ge=0)
    power_cap_max: int = Field(default=1_400_000_000, ge=0)
    throttle_status: int = Field(default=0, ge=0)  # gpu_metrics throttle_status bits
    render_node: bool = True  # R/dev/dri/renderD<drm_render> exists (enumerated GPUs only)
    cper: list[CperEntry] = Field(default_factory=list)
    # PCIe AER counters of its PCI device (sysfs; agent/sim/nodelog.py), not in the state file
    aer: AerState = Field(default_factory=AerState)
    fail: dict[str, Status] = Field(default_factory=dict)  # C function -> status

    @field_validator("bdf")
    @classmethod
    def _bdf(cls, v: str | None) -> str | None:
        if v is not None and not _BDF_RE.match(v):
            raise ValueError(f"bdf must look like 0000:05:00.0, got {v!r}")
        return v.lower() if v else v

    @field_validator("asic_serial")
    @classmethod
    def _serial(cls, v: str | None) -> str | None:
        if v is not None and not _HEX_RE.match(v):
            raise ValueError("asic_serial must be hex digits (amdsmi parses it as hex) or empty")
        return v

    @field_validator("ecc", "ras_features")
    @classmethod
    def _blocks(cls, v: dict[str, object]) -> dict[str, object]:
        for block in v:
            if block.upper() not in GPU_BLOCKS:
                raise ValueError(f"unknown GPU block {block!r}; one of {GPU_BLOCKS}")
        return {k.upper(): val for k, val in v.items()}

    @field_validator("ras_features")
    @classmethod
    def _ras_states(cls, v: dict[str, str]) -> dict[str, str]:
        for block, state in v.items():
            if state.upper() not in RAS_STATES:
                raise ValueError(f"ras_features[{block}]: state must be one of {RAS_STATES}")
        return {k: s.upper() for k, s in v.items()}

    @field_validator("firmware")
    @classmethod
    def _fw(cls, v: dict[str, int]) -> dict[str, int]:
        valid = _valid_fw_names()
        out = {}
        for name, version in v.items():
            short = name.upper().removeprefix("AMDSMI_FW_ID_")
            if valid and short not in valid:
                raise ValueError(f"firmware {name!r} is not an id amdsmi accepts")
            out[short] = version
        return out

    @field_validator("fail")
    @classmethod
    def _fail(cls, v: dict[str, Status]) -> dict[str, Status]:
        return _check_fail(v)

    @field_validator("clocks")
    @classmethod
    def _clocks(cls, v: dict[str, Clock | None]) -> dict[str, Clock | None]:
        allowed = ("GFX", "DF", "DCEF", "SOC", "MEM", "PCIE", "VCLK0", "VCLK1", "DCLK0", "DCLK1")
        for k in v:
            if k.upper() not in allowed:
                raise ValueError(f"unknown clock {k!r}; one of {allowed}")
        return {k.upper(): c for k, c in v.items()}

    @field_validator("perf_level")
    @classmethod
    def _perf(cls, v: str) -> str:
        short = v.upper().removeprefix("AMDSMI_DEV_PERF_LEVEL_")
        if short not in PERF_LEVELS:
            raise ValueError(f"perf_level must be one of {PERF_LEVELS}")
        return short

    def fill_identity(self, index: int, node_index: int) -> None:
        """Fill every identity field left None with the value derived from ``index``."""
        serial = 0x5A11_0000_0000_0000 + node_index * 0x1000 + index
        derived: dict[str, object] = {
            "bdf": f"{index // 8:04x}:{DEFAULT_BUSES[index % 8]:02x}:00.0",
            "uuid": f"{index & 0xFF:02x}ff75a3-0000-1000-8000-{serial & 0xFFFFFFFFFFFF:012x}",
            "drm_render": 128 + index,
            "drm_card": index + 1,
            "hsa_id": index + 2,
            "hip_id": index,
            "hip_uuid": f"GPU-{serial:016x}",
            "kfd_id": 0x6000 + index,
            "kfd_node_id": index + 2,
            "asic_serial": f"{serial:016X}",
            "oam_id": index,
            "product_serial": f"692{node_index:05d}{index:04d}",
            "numa_node": 0 if index % 8 < 4 else 1,
        }
        for name, value in derived.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        x = self.xgmi
        if x.hive_id is None:
            x.hive_id = 0x4D49_3335_3558_0000 + node_index
        if x.node_id is None:
            x.node_id = index
        if x.index is None:
            x.index = index


class NodeGpuState(_Model):
    """All GPUs of one simulated node (list position = GPU index = ``[gpu.N]``)."""

    index: int = Field(default=0, ge=0, le=0xFFFFFFFF)  # node number: seeds serials and hive id
    gpus: list[GpuState] = Field(default_factory=list, max_length=64)
    fail: dict[str, Status] = Field(default_factory=dict)  # node-wide, e.g. amdsmi_init
    hang_ms: int = Field(default=0, ge=0, le=3_600_000)  # amdsmi_init blocks (a hung driver)
    kfd: bool = True  # R/dev/kfd exists
    # Network ports and their NUMA node (R/sys/class/net/<name>/device/numa_node): one per
    # GPU, on the GPU's NUMA node, like the 8-NIC MI355X platforms (not read off a device).
    nics: dict[str, int] | None = None
    # R/proc/uptime (seconds since boot), for the PCIe replay rate; None: not written
    uptime_s: float | None = Field(default=86_400.0, gt=0)
    # Does the collector have root (debugfs)? None: whatever the calling process has.
    privileged: bool | None = None
    # The version libamd_smi.so reports (None: the amdsmi package's): a node half-way
    # through a ROCm upgrade.
    lib_version: str | None = Field(default=None, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    # amdgpu events in R/var/log/dmesg after the boot lines (agent/sim/nodelog.py)
    kernel_events: list[KernelEvent] = Field(default_factory=list, max_length=1000)

    @field_validator("fail")
    @classmethod
    def _fail(cls, v: dict[str, Status]) -> dict[str, Status]:
        return _check_fail(v)

    @model_validator(mode="after")
    def _identity(self) -> NodeGpuState:
        for i, gpu in enumerate(self.gpus):
            gpu.fill_identity(i, self.index)
        return self

    @classmethod
    def healthy(cls, gpu_count: int = 8, node_index: int = 0) -> NodeGpuState:
        """A healthy node of ``gpu_count`` MI355X in one XGMI hive."""
        return cls(index=node_index, gpus=[GpuState() for _ in range(gpu_count)])

    @classmethod
    def partitioned(
        cls, compute: str = "CPX", memory: str = "NPS1", gpu_count: int = 8, node_index: int = 0
    ) -> NodeGpuState:
        """A healthy node whose ``gpu_count`` MI355X are each split into the logical devices of
        ``compute`` (SPX 1, DPX 2, QPX 4, CPX 8), as ROCm shows them: every logical device is an
        amdsmi processor of its own (its render node, HIP index and KFD node), under the one
        PCI device of its physical GPU. amdsmi reports the partition in the BDF's function
        number (ROCm/rocm-systems issue 5805, rocm_smi_lib issue 208); the board serial, the
        ASIC serial and the hive are the physical GPU's; compute units and VRAM are divided.
        The memory partition is one mode for the whole hive (the driver sets it hive-wide)."""
        n = PARTITIONS_PER_GPU.get(compute.upper())
        if n is None:
            raise ValueError(f"compute partition {compute!r}: one of {tuple(PARTITIONS_PER_GPU)}")
        if gpu_count * n > 64:
            raise ValueError(f"{gpu_count} GPUs x {n} partitions exceed 64 amdsmi devices")
        gpus = []
        for i in range(gpu_count):
            phys = GpuState()
            phys.fill_identity(i, node_index)
            for p in range(n):
                k = i * n + p
                serial = 0x5A11_0000_0000_0000 + node_index * 0x1000 + k
                gpus.append(
                    GpuState(
                        bdf=(phys.bdf or "")[:-1] + str(p),
                        uuid=f"{k & 0xFF:02x}ff75a3-0000-1000-8000-{serial & 0xFFFFFFFFFFFF:012x}",
                        drm_render=128 + k,
                        drm_card=k + 1,
                        hsa_id=k + 2,
                        hip_id=k,
                        hip_uuid=f"GPU-{serial:016x}",
                        kfd_id=0x6000 + k,
                        kfd_node_id=k + 2,
                        current_partition_id=p,
                        asic_serial=phys.asic_serial,
                        product_serial=phys.product_serial,
                        oam_id=i,
                        numa_node=phys.numa_node,
                        num_compute_units=256 // n,
                        vram_total=(288 << 30) // n,
                        compute_partition=compute.upper(),
                        memory_partition=memory.upper(),
                        num_partition=n,
                        xgmi=XgmiState(index=i, node_id=i),
                    )
                )
        return cls(index=node_index, gpus=gpus)


def _valid_fw_names() -> frozenset[str]:
    """Firmware ids the installed amdsmi accepts (empty if amdsmi is not installed)."""
    global _FW_CACHE
    if _FW_CACHE is None:
        try:
            from agent.sim.gpu import gen_stubs

            names = gen_stubs._valid_fw_names(
                gen_stubs.amdsmi_package_dir() / "amdsmi_interface.py"
            )
        except Exception:  # noqa: BLE001 - amdsmi missing: let the C library validate
            names = []
        _FW_CACHE = frozenset(n.removeprefix("AMDSMI_FW_ID_") for n in names)
    return _FW_CACHE


_FW_CACHE: frozenset[str] | None = None

# --------------------------------------------------------------------------- rendering


def _q(value: str) -> str:
    """Render a string value; quote it when it would not survive the plain syntax."""
    if value == "" or value != value.strip() or "#" in value or ";" in value or '"' in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _na(v: int | None) -> int:
    """None -> 0xFFFF, what amdsmi's library fills where a value is not available."""
    return 0xFFFF if v is None else v


def _fail_lines(fail: dict[str, Status]) -> list[str]:
    return [f"fail.{func} = {status}" for func, status in fail.items()]


def _ensure_identity(state: NodeGpuState) -> None:
    for i, gpu in enumerate(state.gpus):  # GPUs appended after validation
        gpu.fill_identity(i, state.index)


def render_state(state: NodeGpuState) -> str:
    """The state file text for ``state`` (every value explicit)."""
    _ensure_identity(state)
    lines = [
        "# tuner simulated GPU state (docs/sim-gpu-state.md); read by libamd_smi.so at every",
        "# amdsmi_init.",
        "[node]",
        f"index = {state.index}",
        *([f"hang_ms = {state.hang_ms}"] if state.hang_ms else []),
        *(
            [f"privileged = {str(state.privileged).lower()}"]
            if state.privileged is not None
            else []
        ),
        *([f"lib_version = {state.lib_version}"] if state.lib_version else []),
        *_fail_lines(state.fail),
    ]
    for i, g in enumerate(state.gpus):
        p, x = g.pcie, g.xgmi
        lines += [
            "",
            f"[gpu.{i}]",
            f"enumerated = {'true' if g.enumerated else 'false'}",
            f"bdf = {g.bdf}",
            f"uuid = {_q(g.uuid or '')}",
            f"drm_render = {g.drm_render}",
            f"drm_card = {g.drm_card}",
            f"hsa_id = {g.hsa_id}",
            f"hip_id = {g.hip_id}",
            f"hip_uuid = {_q(g.hip_uuid or '')}",
            f"kfd_id = {g.kfd_id}",
            f"kfd_node_id = {g.kfd_node_id}",
            f"current_partition_id = {g.current_partition_id}",
            f"market_name = {_q(g.market_name)}",
            f"vendor_id = {g.vendor_id:#06x}",
            f"vendor_name = {_q(g.vendor_name)}",
            f"subvendor_id = {g.subvendor_id:#06x}",
            f"device_id = {g.device_id:#06x}",
            f"rev_id = {g.rev_id:#04x}",
            f"asic_serial = {_q(g.asic_serial or '')}",
            f"oam_id = {g.oam_id}",
            f"num_compute_units = {g.num_compute_units}",
            f"target_graphics_version = {g.target_graphics_version}",
            f"subsystem_id = {g.subsystem_id:#06x}",
            f"board.model_number = {_q(g.model_number)}",
            f"board.product_serial = {_q(g.product_serial or '')}",
            f"board.fru_id = {_q(g.fru_id)}",
            f"board.product_name = {_q(g.product_name)}",
            f"board.manufacturer_name = {_q(g.manufacturer_name)}",
            f"numa_node = {g.numa_node}",
            f"vram.total = {g.vram_total}",
            f"vram.used = {g.vram_used}",
            f"power.cap = {g.power_cap}",
            f"power.cap_default = {g.power_cap_default}",
            f"power.cap_max = {g.power_cap_max}",
            f"throttle_status = {g.throttle_status:#x}",
            f"vram.vendor = {_q(g.vram_vendor)}",
            f"activity.gfx = {_na(g.activity_gfx)}",
            f"activity.umc = {_na(g.activity_umc)}",
            f"activity.mm = {_na(g.activity_mm)}",
            f"power.current = {_na(g.power_current)}",
            f"power.average = {_na(g.power_average)}",
            f"perf_level = {g.perf_level}",
            f"num_partition = {g.num_partition}",
        ]
        for name, clk in g.clocks.items():
            if clk is None:
                lines.append(f"clock.{name.lower()}.current = unsupported")
            else:
                lines += [
                    f"clock.{name.lower()}.current = {clk.current}",
                    f"clock.{name.lower()}.min = {clk.min}",
                    f"clock.{name.lower()}.max = {clk.max}",
                ]
        for block, counts in g.ecc.items():
            lines += [
                f"ecc.{block.lower()}.correctable = {counts.correctable}",
                f"ecc.{block.lower()}.uncorrectable = {counts.uncorrectable}",
                f"ecc.{block.lower()}.deferred = {counts.deferred}",
            ]
        lines += [f"ras.{b.lower()} = {s}" for b, s in g.ras_features.items()]
        lines += [
            f"ras.eeprom_version = {g.ras_eeprom_version:#x}",
            f"ras.ecc_schema_flag = {g.ras_ecc_schema_flag:#x}",
            f"bad_page_threshold = {g.bad_page_threshold}",
        ]
        lines += [f"bad_page = {bp.address:#x}, {bp.size}, {bp.status.value}" for bp in g.bad_pages]
        lines += [
            f"pcie.max_width = {p.max_width}",
            f"pcie.max_speed = {p.max_speed}",
            f"pcie.interface_version = {p.interface_version}",
            f"pcie.max_interface_version = {p.max_interface_version}",
            f"pcie.slot_type = {p.slot_type}",
            f"pcie.width = {p.width}",
            f"pcie.speed = {p.speed}",
            f"pcie.bandwidth = {p.bandwidth}",
            f"pcie.replay_count = {p.replay_count}",
            f"pcie.l0_to_recovery_count = {p.l0_to_recovery_count}",
            f"pcie.replay_roll_over_count = {p.replay_roll_over_count}",
            f"pcie.nak_sent_count = {p.nak_sent_count}",
            f"pcie.nak_received_count = {p.nak_received_count}",
            f"pcie.lc_perf_other_end_recovery_count = {p.lc_perf_other_end_recovery_count}",
            *([f"xgmi.link_status = {' '.join(x.link_status)}"] if x.link_status else []),
            f"xgmi.error_status = {x.error_status}",
            f"xgmi.lanes = {x.lanes}",
            f"xgmi.hive_id = {x.hive_id:#x}",
            f"xgmi.node_id = {x.node_id}",
            f"xgmi.index = {x.index}",
            f"xgmi.bit_rate = {' '.join(str(b) for b in x.bit_rate)}",
            f"xgmi.width = {' '.join(str(w) for w in x.width)}",
        ]
        for sensor in ("hotspot", "vram", "edge"):
            t: TempSensor = getattr(g.temperatures, sensor)
            for metric in ("current", "max", "critical", "emergency"):
                v = getattr(t, metric)
                lines.append(f"temp.{sensor}.{metric} = {'unsupported' if v is None else v}")
        lines.append("fw = none")
        lines += [f"fw.{name} = {version:#x}" for name, version in g.firmware.items()]
        lines += [
            f"vbios.name = {_q(g.vbios.name)}",
            f"vbios.build_date = {_q(g.vbios.build_date)}",
            f"vbios.part_number = {_q(g.vbios.part_number)}",
            f"vbios.version = {_q(g.vbios.version)}",
            f"driver.name = {_q(g.driver.name)}",
            f"driver.version = {_q(g.driver.version)}",
            f"driver.date = {_q(g.driver.date)}",
            f"compute_partition = {_q(g.compute_partition)}",
            f"memory_partition = {_q(g.memory_partition)}",
        ]
        lines += [
            f"process = {pr.pid}, {pr.name}, {pr.vram}, {pr.cu_occupancy}" for pr in g.processes
        ]
        for c in g.cper:
            rid = f", {c.record_id}" if c.record_id else ""
            lines.append(
                f"cper = {c.severity}, {c.timestamp:%Y-%m-%d %H:%M:%S}, {c.notify_type}{rid}"
            )
        lines += _fail_lines(g.fail)
    return "\n".join(lines) + "\n"


def write_state(path: Path, state: NodeGpuState) -> Path:
    """Write the state file atomically (the library may be reading it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_state(state), encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- node install


def sysfs_link_speed(mts: int) -> str:
    """Kernel format of a PCIe link speed given in MT/s: 32000 -> '32.0 GT/s PCIe'."""
    return f"{mts / 1000:.1f} GT/s PCIe"


def write_pci_view(root: Path, state: NodeGpuState) -> list[Path]:
    """Write ``root/sys/bus/pci/devices/<bdf>/`` for every GPU (hidden ones included)."""
    _ensure_identity(state)
    devices = Path(root) / PCI_DEVICES_RELPATH
    driver_dir = Path(root) / "sys/bus/pci/drivers/amdgpu"
    devices.mkdir(parents=True, exist_ok=True)
    driver_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for g in state.gpus:
        assert g.bdf is not None
        if g.current_partition_id:
            continue  # a logical partition: its physical GPU's PCI device is the one there
        d = devices / g.bdf
        if d.is_symlink() or d.is_file():
            d.unlink()
        d.mkdir(parents=True, exist_ok=True)
        files = {
            "vendor": f"{g.vendor_id:#06x}",
            "device": f"{g.device_id:#06x}",
            "subsystem_vendor": f"{g.subvendor_id:#06x}",
            "subsystem_device": f"{g.subsystem_id:#06x}",
            "class": "0x120000",  # processing accelerator (MI300-series OAM)
            "revision": f"{g.rev_id:#04x}",
            "numa_node": str(g.numa_node),
            "current_link_width": str(g.pcie.width),
            "max_link_width": str(g.pcie.max_width),
            "current_link_speed": sysfs_link_speed(g.pcie.speed),
            "max_link_speed": sysfs_link_speed(g.pcie.max_speed),
        }
        for name, value in files.items():
            (d / name).write_text(value + "\n")
        link = d / "driver"
        if link.is_symlink() or link.exists():
            link.unlink()
        if g.enumerated:  # a GPU the driver refused has no driver bound
            link.symlink_to(Path("../../drivers/amdgpu"))
        out.append(d)
    return out


def install_node(root: Path, state: NodeGpuState, lib: Path) -> Path:
    """Lay out a simulated node under ``root``; return its ROCM_PATH (``root/opt/rocm``)."""
    root = Path(root)
    dest = root / LIB_RELPATH
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(lib, tmp)
    except OSError:
        shutil.copy2(lib, tmp)
    os.replace(tmp, dest)
    write_state(root / STATE_RELPATH, state)
    write_pci_view(root, state)
    from agent.sim import nodelog

    nodelog.write_aer(root, state)
    nodelog.write_kernel_log(root, state)
    write_dev_nodes(root, state)
    write_nics(root, state)
    if state.uptime_s is not None:
        up = Path(root) / "proc/uptime"
        up.parent.mkdir(parents=True, exist_ok=True)
        up.write_text(f"{state.uptime_s:.2f} {state.uptime_s * 2:.2f}\n")
    return root / ROCM_RELPATH


def write_nics(root: Path, state: NodeGpuState) -> dict[str, int]:
    """``R/sys/class/net/<nic>/device/numa_node`` of every simulated NIC (default: one per
    GPU, ``rdma<i>``, on the GPU's NUMA node)."""
    _ensure_identity(state)
    nics = state.nics
    if nics is None:
        nics = {f"rdma{i}": g.numa_node or 0 for i, g in enumerate(state.gpus)}
    base = Path(root) / "sys/class/net"
    for name, numa in nics.items():
        if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", name) or name in (".", ".."):
            raise ValueError(f"NIC name {name!r} is not a network interface name")
        d = base / name / "device"
        d.mkdir(parents=True, exist_ok=True)
        (d / "numa_node").write_text(f"{numa}\n")
    return nics


def write_dev_nodes(root: Path, state: NodeGpuState) -> list[Path]:
    """``root/dev/kfd`` and ``root/dev/dri/renderD<N>`` of every enumerated GPU.

    Plain files mode 0660 stand in for the character devices (a simulated node cannot mknod;
    ROCm's udev rules make them 0660 group render); the collector checks that they exist, that
    it may open them read-write, and records their mode and owner. A GPU the driver
    refused has no render node; ``GpuState.fail`` cannot remove them, a scenario deletes them.
    """
    _ensure_identity(state)
    dri = Path(root) / "dev/dri"
    dri.mkdir(parents=True, exist_ok=True)
    for old in dri.glob("renderD*"):
        old.unlink()
    kfd = Path(root) / "dev/kfd"
    out = []
    if state.kfd:
        kfd.touch()
        kfd.chmod(0o660)  # crw-rw---- root:render on ROCm hosts (udev)
        out.append(kfd)
    elif kfd.exists():
        kfd.unlink()
    for g in state.gpus:
        if g.enumerated and g.render_node:
            p = dri / f"renderD{g.drm_render}"
            p.touch()
            p.chmod(0o660)
            out.append(p)
    return out
