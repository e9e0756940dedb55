"""GPU scenarios for the simulated fleet (`tuner sim up --scenario NAME`).

Each scenario says how many nodes it has by default and what is wrong with which GPU. The
failure scenarios put one failure on GPU 3 of node 2 (index 1) so that its neighbours and
the other nodes show that exactly the affected GPU is excluded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.sim.gpu.state import (
    BadPage,
    BadPageStatus,
    CperEntry,
    EccCounts,
    GpuProcess,
    GpuState,
    NodeGpuState,
)
from agent.sim.nodelog import AerState, KernelEvent

Mutator = Callable[[NodeGpuState], None]


@dataclass
class Scenario:
    name: str
    description: str
    nodes: int
    faults: dict[int, Mutator]  # node index -> what is wrong there
    expect: str  # the gate's expected outcome, for docs and tests
    # node index -> what the diagnostic tools measure there (agent/sim/diagtools.py)
    diag: dict[int, dict[str, object]] = field(default_factory=dict)


def _gpu(i: int, fn: Callable[[GpuState], None]) -> Mutator:
    def apply(node: NodeGpuState) -> None:
        fn(node.gpus[i])

    return apply


def _set(**kw: object) -> Callable[[GpuState], None]:
    def apply(g: GpuState) -> None:
        for k, v in kw.items():
            setattr(g, k, v)

    return apply


def _pcie(**kw: object) -> Callable[[GpuState], None]:
    def apply(g: GpuState) -> None:
        for k, v in kw.items():
            setattr(g.pcie, k, v)

    return apply


def _temp(current: int) -> Callable[[GpuState], None]:
    def apply(g: GpuState) -> None:
        g.temperatures.hotspot.current = current

    return apply


def _pages(n: int, status: BadPageStatus = BadPageStatus.RESERVED) -> Callable[[GpuState], None]:
    def apply(g: GpuState) -> None:
        g.bad_pages = [BadPage(address=0x100000 * (k + 1), status=status) for k in range(n)]

    return apply


def _link_down(a: int, b: int) -> Mutator:
    """The XGMI link between GPUs ``a`` and ``b`` down, as both ends see it."""

    def apply(node: NodeGpuState) -> None:
        for me, peer in ((a, b), (b, a)):
            slots: list[str] = ["U"] * 8
            slots[me] = "X"
            slots[peer] = "D"
            node.gpus[me].xgmi.link_status = slots  # type: ignore[assignment]

    return apply


def _xgmi_dead(i: int) -> Mutator:
    """Every XGMI link of GPU ``i`` down (its XGMI PHY failed): it and each peer see it."""

    def apply(node: NodeGpuState) -> None:
        for k, g in enumerate(node.gpus):
            slots: list[str] = ["U"] * 8
            slots[k] = "X"
            if k == i:
                slots = ["D" if s == "U" else s for s in slots]
            else:
                slots[i] = "D"
            g.xgmi.link_status = slots  # type: ignore[assignment]

    return apply


def _ecc(block: str, **kw: int) -> Callable[[GpuState], None]:
    def apply(g: GpuState) -> None:
        g.ecc = {**g.ecc, block: EccCounts(**kw)}

    return apply


def _fw(g: GpuState) -> None:
    g.firmware = {**g.firmware, "PM": g.firmware["PM"] + 1}


def _driver(node: NodeGpuState) -> None:
    for g in node.gpus:
        g.driver.version = "6.16.6"


def _bad_rollout(node: NodeGpuState) -> None:
    for g in node.gpus:
        _fw(g)


def _node(**kw: object) -> Mutator:
    def apply(node: NodeGpuState) -> None:
        for k, v in kw.items():
            setattr(node, k, v)

    return apply


def _events(*events: KernelEvent) -> Mutator:
    """amdgpu events in the node's kernel log since boot (var/log/dmesg)."""

    def apply(node: NodeGpuState) -> None:
        node.kernel_events = list(events)

    return apply


def _busy(g: GpuState) -> None:
    g.activity_gfx = 100
    g.activity_umc = 35
    g.power_current = 1100
    gfx = g.clocks.get("GFX")
    if gfx is not None:
        g.clocks = {**g.clocks, "GFX": gfx.model_copy(update={"current": gfx.max})}


def _same_identity_as_node(other: int) -> Mutator:
    """The node reports the serials, UUIDs and hive id of node ``other``: what a fleet shows
    when an inventory lists one machine under two names."""

    def apply(node: NodeGpuState) -> None:
        twin = NodeGpuState.healthy(gpu_count=len(node.gpus), node_index=other)
        for g, t in zip(node.gpus, twin.gpus, strict=True):
            for k in ("uuid", "hip_uuid", "asic_serial", "product_serial"):
                setattr(g, k, getattr(t, k))
            g.xgmi.hive_id = t.xgmi.hive_id

    return apply


def _partitioned(compute: str, memory: str = "NPS1") -> Mutator:
    def apply(node: NodeGpuState) -> None:
        node.gpus = NodeGpuState.partitioned(
            compute, memory, gpu_count=len(node.gpus), node_index=node.index
        ).gpus

    return apply


G = 3  # the failing GPU in single-failure scenarios
ONE = {
    "ecc-uncorrectable": (
        "uncorrectable ECC errors in HBM (UMC)",
        _set(ecc={"UMC": EccCounts(uncorrectable=4)}),
        "excluded",
    ),
    "ecc-deferred": (
        "deferred ECC errors (a warning by default)",
        _set(ecc={"UMC": EccCounts(deferred=2)}),
        "usable, warned",
    ),
    "bad-pages-threshold": ("retired pages at the driver's threshold", _pages(128), "excluded"),
    "bad-pages-near-threshold": (
        "retired pages at 90% of the threshold",
        _pages(116),
        "usable, warned",
    ),
    "bad-pages-unreservable": (
        "a bad page that could not be reserved",
        _pages(1, BadPageStatus.UNRESERVABLE),
        "excluded",
    ),
    "bad-pages-pending": (
        "a bad page pending retirement",
        _pages(1, BadPageStatus.PENDING),
        "usable, warned",
    ),
    "cper-fatal": ("a fatal CPER record", _set(cper=[CperEntry(severity="FATAL")]), "excluded"),
    "xgmi-errors": (
        "uncorrectable XGMI errors (the XGMI_WAFL RAS block, as MI300/MI355 count them)",
        _ecc("XGMI_WAFL", uncorrectable=3),
        "excluded",
    ),
    "ecc-correctable-storm": (
        "a correctable-error storm on HBM (UMC 50000)",
        _ecc("UMC", correctable=50_000),
        "excluded",
    ),
    "ras-umc-off": (
        "RAS (ECC) disabled on the UMC block: zero errors that prove nothing",
        _set(ras_features={"UMC": "DISABLED"}),
        "excluded",
    ),
    "pcie-replay-storm": (
        "PCIe replay count 5000",
        _pcie(replay_count=5000),
        "usable, warned",
    ),
    "pcie-gen4": (
        "PCIe link capable of and trained at Gen4 (16 GT/s) only, expected Gen5",
        _pcie(speed=16000, max_speed=16000, interface_version=4, max_interface_version=4),
        "usable, warned",
    ),
    "vram-used-idle": (
        "20 GB of VRAM in use with no process listed (a leaked allocation)",
        _set(vram_used=20 << 30),
        "excluded",
    ),
    "power-cap-low": ("power cap lowered to 1000 W", _set(power_cap=1_000_000_000), "excluded"),
    "render-node-missing": (
        "the GPU's /dev/dri render node is missing",
        _set(render_node=False),
        "excluded",
    ),
    "pcie-downtrained": ("PCIe link trained at x8 of x16", _pcie(width=8), "excluded"),
    "pcie-slow": ("PCIe link at 16 GT/s of 32", _pcie(speed=16000), "usable, warned"),
    "pcie-errors": (
        "PCIe L0->recovery and NAK counters over 100",
        _pcie(l0_to_recovery_count=250, nak_received_count=180),
        "excluded",
    ),
    "aer-fatal": (
        "a PCIe AER fatal error since boot (Surprise Down) on its PCI device",
        _set(aer=AerState(fatal={"SDES": 1})),
        "excluded",
    ),
    "aer-nonfatal": (
        "PCIe AER non-fatal errors since boot (completion timeouts)",
        _set(aer=AerState(nonfatal={"CmpltTO": 2}, correctable={"RxErr": 7})),
        "usable, warned",
    ),
    "temperature-critical": ("hotspot at its critical limit", _temp(105), "excluded"),
    "temperature-high": (
        "hotspot above its max at idle: gpu.temperature warns, and AMD's acceptance guide "
        "fails an idle GPU over 85 C (gpu.idle)",
        _temp(101),
        "excluded (gpu.idle)",
    ),
    "gpu-busy-idle": (
        "GPU busy with no process listed: 100 % GFX activity, GFX clock at its 2400 MHz "
        "maximum, 1100 W (AMD's acceptance guide: idle means 0 %, low clocks)",
        _busy,
        "excluded (gpu.idle)",
    ),
    "foreign-process": (
        "another job's process on the GPU",
        _set(processes=[GpuProcess(pid=4242, name="python3", vram=1 << 30)]),
        "excluded",
    ),
    "partition-mode": (
        "GPU in CPX compute partition mode",
        _set(compute_partition="CPX"),
        "excluded",
    ),
    "gpu-missing": (
        "GPU off the bus for amdsmi (on the PCI bus, not enumerated); its 7 peers see their "
        "link to it down",
        _set(enumerated=False),
        "excluded, its 7 peers usable",
    ),
    "amdsmi-error": (
        "amdsmi returns an error for one GPU's ECC query",
        _set(fail={"amdsmi_get_gpu_total_ecc_count": "DRIVER_NOT_LOADED"}),
        "excluded (fail closed)",
    ),
    "firmware-mixed-hive": (
        "one GPU with different PM firmware inside the node's XGMI hive",
        _fw,
        "node failed",
    ),
}

SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario("healthy", "every GPU healthy", 4, {}, "all usable"),
    "mlperf-llama2-70b": Scenario(
        "mlperf-llama2-70b",
        "11 nodes x 8 MI355X; one GPU with uncorrectable ECC errors -> 87 usable",
        11,
        {6: _gpu(5, _set(ecc={"UMC": EccCounts(uncorrectable=12)}))},
        "87 usable",
    ),
    "mlperf-gpt-oss-120b": Scenario(
        "mlperf-gpt-oss-120b",
        "12 nodes x 8 MI355X; one GPU over its bad-page threshold vanished from amdsmi, one "
        "whose XGMI links all went down (its peers keep theirs) -> 94 usable",
        12,
        {
            3: _gpu(2, _set(enumerated=False)),
            9: _xgmi_dead(7),
        },
        "94 usable",
    ),
    "xgmi-link-down": Scenario(
        "xgmi-link-down",
        "the XGMI link between GPUs 3 and 5 of node 2 down (both ends see it)",
        2,
        {1: _link_down(3, 5)},
        "GPUs 3 and 5 excluded, each naming the other",
    ),
    "collector-not-root": Scenario(
        "collector-not-root",
        "node 2's collector runs without root: debugfs (bad-page threshold, CPER) unreadable",
        2,
        {1: _node(privileged=False)},
        "node failed, reasons name what needs root",
    ),
    "firmware-fleet-drift": Scenario(
        "firmware-fleet-drift",
        "node 2 runs a different driver than the rest (warning)",
        3,
        {1: _driver},
        "all usable, fleet warning",
    ),
    "firmware-bad-rollout": Scenario(
        "firmware-bad-rollout",
        "every GPU of every node got the same PM firmware outside the validated baseline: the "
        "fleet majority agrees with it; a policy with gpu.firmware.allowed catches it",
        2,
        {0: _bad_rollout, 1: _bad_rollout},
        "all usable by default; all excluded with a baseline policy",
    ),
    "rocm-upgrade-halfway": Scenario(
        "rocm-upgrade-halfway",
        "node 2's libamd_smi.so reports an older version than the rest of the fleet",
        2,
        {1: _node(lib_version="6.4.0")},
        "all usable, fleet warning naming the library version",
    ),
    "amdsmi-init-error": Scenario(
        "amdsmi-init-error",
        "amdsmi_init fails on node 2 (driver not loaded)",
        2,
        {1: _node(fail={"amdsmi_init": "DRIVER_NOT_LOADED"})},
        "node failed",
    ),
    "kernel-ring-timeout": Scenario(
        "kernel-ring-timeout",
        f"node 2's kernel log shows a gfx ring timeout and the GPU reset that followed on GPU {G}",
        2,
        {
            1: _events(
                KernelEvent(kind="ring_timeout", gpu=G, ring="gfx_0.0.0"),
                KernelEvent(kind="gpu_reset", gpu=G, at_s=3601.0),
            )
        },
        f"node 2's GPU {G} excluded (ring timeout, GPU reset)",
    ),
    "kernel-ras-uncorrectable": Scenario(
        "kernel-ras-uncorrectable",
        f"node 2's kernel log shows a RAS uncorrectable error interrupt on GPU {G}",
        2,
        {1: _events(KernelEvent(kind="ras_uncorrectable", gpu=G))},
        f"node 2's GPU {G} excluded",
    ),
    "kernel-ring-timeout-unattributed": Scenario(
        "kernel-ring-timeout-unattributed",
        "node 2's kernel log shows a ring timeout in the older DRM_ERROR form, without a PCI "
        "address: no GPU of the node is proven healthy",
        2,
        {1: _events(KernelEvent(kind="ring_timeout", gpu=None, ring="sdma0"))},
        "node 2 failed (every GPU excluded)",
    ),
    "duplicate-identity": Scenario(
        "duplicate-identity",
        "node 2 reports node 1's GPU serials, UUIDs and XGMI hive id (one machine listed "
        "twice in the inventory)",
        2,
        {1: _same_identity_as_node(0)},
        "gate failed: the duplicates named with both nodes",
    ),
    "cpx-partitions": Scenario(
        "cpx-partitions",
        "every MI355X in CPX compute partitions (8 logical devices per GPU, 64 per node, one "
        "PCI device each); use a policy with gpu.partition.compute: CPX",
        2,
        {0: _partitioned("CPX"), 1: _partitioned("CPX")},
        "16 of 16 GPUs usable (128 logical devices) with a CPX policy",
    ),
    "node-hang": Scenario(
        "node-hang",
        "amdsmi_init hangs for 2 minutes on node 2 (try: tuner check --deadline 10)",
        2,
        {1: _node(hang_ms=120_000)},
        "node failed (deadline)",
    ),
}
# GPU 3 of node 2 (index 1): its telemetry is clean, so level 1 passes it; under load it is
# slow in compute and on every XGMI link, so level 2's pbqt fails it and the all-reduce is
# narrowed to it (the other 7 keep running).
SCENARIOS["diag-slow-gpu"] = Scenario(
    "diag-slow-gpu",
    f"GPU {G} of node 2 passes the telemetry gate but is slow under load (check --level 2)",
    2,
    {},
    "level 1: all usable; level 2: node 2's GPU 3 excluded, 15 usable",
    diag={1: {"gpu_links": {"@3": 0.4}, "gflops": {"@3": 0.6}}},
)
for _name, (_desc, _fn, _expect) in ONE.items():
    SCENARIOS[_name] = Scenario(_name, _desc + f" (node 2, GPU {G})", 2, {1: _gpu(G, _fn)}, _expect)


def node_state(scenario: Scenario, node_index: int, gpus: int = 8) -> NodeGpuState:
    state = NodeGpuState.healthy(gpu_count=gpus, node_index=node_index)
    fault = scenario.faults.get(node_index)
    if fault:
        fault(state)
    return state


def install_gpus(
    base: Path, roots: list[Path], scenario: Scenario, names: list[str] | None = None
) -> None:
    """Build the simulated libamd_smi.so once and give every node its GPU state."""
    from agent.errors import Failed
    from agent.sim.gpu.build import BuildError, build_library
    from agent.sim.gpu.state import install_node

    try:
        lib = build_library(base / "lib")
    except BuildError as e:
        raise Failed(f"cannot build the simulated GPU library: {e}") from e
    from agent.sim.diagtools import install_diag, install_fleet_map

    for i, root in enumerate(roots):
        state = node_state(scenario, i)
        install_node(root, state, lib)
        install_diag(root, state, scenario.diag.get(i))
    if names:
        install_fleet_map(dict(zip(names, roots, strict=True)))
