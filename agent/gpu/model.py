"""GPU facts as pydantic models: what agent/gpu/collect.py gathers on a node.

A saved snapshot (`tuner facts --local --json > node.json`) validates into `NodeFacts` and can
be evaluated offline (`tuner check --facts node.json`): facts from a real node are test data.
A field is None when its query failed or is not supported; `errors` / `unsupported` say which.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Ecc(_M):
    correctable: int = 0
    uncorrectable: int = 0
    deferred: int = 0


class BadPage(_M):
    address: int | None = None
    size: int | None = None
    status: str  # reserved | pending | unreservable


class Pcie(_M):
    max_width: int | None = None
    max_speed: int | None = None  # MT/s
    width: int | None = None
    speed: int | None = None
    replay_count: int | None = None
    l0_to_recovery_count: int | None = None
    nak_sent_count: int | None = None
    nak_received_count: int | None = None


class Temp(_M):
    current: int | None = None
    max: int | None = None
    critical: int | None = None


class Clock(_M):
    current: int | None = None  # MHz
    min: int | None = None
    max: int | None = None
    deep_sleep: int | None = None  # 1: below its minimum (deep sleep)


class Process(_M):
    pid: int | None = None
    name: str | None = None


class GpuFacts(_M):
    index: int  # enumeration order
    bdf: str | None = None
    uuid: str | None = None
    hip_id: int | None = None
    drm_render: int | None = None
    hip_uuid: str | None = None  # GPU-<hex>: the form ROCR_VISIBLE_DEVICES accepts
    market_name: str | None = None
    device_id: Any = None
    serial: str | None = None
    ecc: Ecc | None = None
    ecc_blocks: dict[str, Ecc] = {}
    bad_pages: list[BadPage] | None = None
    bad_page_threshold: int | None = None
    pcie: Pcie | None = None
    xgmi_links: list[str] | None = None
    xgmi_error_status: int | None = None
    xgmi_hive_id: int | None = None
    temperatures: dict[str, Temp] = {}
    firmware: dict[str, str] | None = None
    vbios_version: str | None = None
    driver_version: str | None = None
    processes: list[Process] | None = None
    compute_partition: str | None = None
    memory_partition: str | None = None
    cper_fatal: list[dict[str, Any]] | None = None
    xgmi_index: int | None = None  # the GPU's position in its hive
    xgmi_peers: list[str | None] | None = None  # peer BDF of each link slot (newer ROCm)
    ras_features: dict[str, str] | None = None  # block -> ENABLED / DISABLED / ...
    vram_total: int | None = None  # bytes
    vram_used: int | None = None  # bytes
    power_cap: int | None = None  # microwatts
    power_cap_default: int | None = None
    throttle_status: Any = None
    render_node: str | None = None  # /dev/dri/renderD<N>
    render_node_access: bool | None = None  # exists and the collector may open it read-write
    render_node_mode: str | None = None  # "0660 root:render": who else may open it
    numa_node: int | None = None  # of the GPU's PCI device (sysfs)
    # PCIe AER counters since boot (sysfs aer_dev_correctable|nonfatal|fatal of its PCI
    # device): kind -> error name -> count; None: the kernel shows none for the device
    aer: dict[str, dict[str, int]] | None = None
    # compute partitions: this logical device's partition (kfd_info) and how many logical
    # devices its physical GPU has (gpu_metrics num_partition; 1 or None: not partitioned)
    partition_id: int | None = None
    num_partitions: int | None = None
    # idle state: activity in % (gfx, umc, mm), clocks (gfx, mem), socket power (W)
    activity: dict[str, int | None] | None = None
    clocks: dict[str, Clock] = {}
    power_w: int | None = None
    perf_level: str | None = None  # AUTO, MANUAL, DETERMINISM, ...
    vram_vendor: str | None = None
    vram_type: str | None = None
    xgmi_bit_rates: list[int | None] | None = None  # Gb/s per link slot
    xgmi_bandwidths: list[int | None] | None = None  # bit rate x lanes per link slot
    xgmi_link_width: int | None = None  # gpu_metrics (lanes)
    xgmi_link_speed: int | None = None  # gpu_metrics (Gb/s)
    errors: dict[str, str] = {}  # query key -> "function: STATUS (code)"
    unsupported: list[str] = []

    @property
    def physical_key(self) -> str | None:
        """The physical GPU this logical device belongs to: its PCI device (domain:bus:device;
        amdsmi puts a partition's id in the function number), else its serial."""
        if self.bdf and len(self.bdf) >= 12:
            return self.bdf[:-2].lower()
        return self.serial

    @property
    def partitioned(self) -> bool:
        return (self.num_partitions or 1) > 1

    @property
    def runtime_index(self) -> int:
        """The index the HIP runtime gives this GPU when all GPUs are visible."""
        return self.hip_id if self.hip_id is not None else self.index


class PciGpu(_M):
    bdf: str
    vendor: str | None = None
    device: str | None = None


class HostFacts(_M):
    logical_cpus: int | None = None
    numa_nodes: int | None = None
    memory_bytes: int | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    cpu_model: str | None = None
    os: str | None = None
    kernel: str | None = None
    uptime_s: float | None = None  # /proc/uptime: PCIe replay rate since boot


class KernelLog(_M):
    """The amdgpu/KFD kernel log lines since boot that may be events (agent/gpu/collect.py:
    kernel_events); the controller judges them (agent/gpu/checks/kernellog.py)."""

    source: str | None = None  # dmesg --kernel | journalctl -k -b | var/log/dmesg of the tree
    error: str | None = None  # why it could not be read
    amdgpu_lines: int | None = None  # amdgpu/KFD lines since boot
    lines: list[str] = []
    cut: int = 0  # older candidate lines left out


class Nic(_M):
    name: str
    numa_node: int | None = None


class NodeFacts(_M):
    name: str
    root: str = "/"
    collected_at: str | None = None
    seconds: float | None = None
    gpus: list[GpuFacts] = []
    pci_gpus: list[PciGpu] = []
    host: HostFacts = HostFacts()
    errors: list[str] = []  # node-wide: amdsmi_init or enumeration failed
    amdsmi_package: str | None = None  # version of the amdsmi Python package
    amdsmi_library: str | None = None  # amdsmi_get_lib_version of libamd_smi.so
    driver_loaded: bool | None = None
    kfd_present: bool | None = None
    kfd_access: bool | None = None
    kfd_mode: str | None = None
    euid: int | None = None  # the collector's effective uid (0: root)
    agent_installed: bool | None = None  # tuner's node agent: it is sent the gate's verdict
    nics: list[Nic] = []
    kernel_log: KernelLog | None = None  # None: facts from before the collector read it
