"""GPU state: temperature, processes, partition modes, fatal CPER records, query errors."""

from __future__ import annotations

from typing import Any

from agent.gpu.checks import CheckResult, Status, unknown, verdict
from agent.gpu.model import GpuFacts, NodeFacts
from agent.gpu.policy import (
    _C,
    CountCheck,
    DeviceAccessCheck,
    NumaCheck,
    PartitionCheck,
    PowerCheck,
    ProcessesCheck,
    VramCheck,
)

#: Query keys (GpuFacts.errors) that a check reads and reports itself: their errors show up
#: in that check (unknown, blocking only if the check is required), not in gpu.query.
OWNED_KEYS = (
    "ecc",
    "bad_pages",
    "bad_page_threshold",
    "cper",
    "xgmi_links",
    "xgmi_errors",
    "link_metrics",
    "pcie",
    "firmware",
    "vbios",
    "driver",
    "processes",
    "compute_partition",
    "memory_partition",
    "ras",
    "vram_total",
    "vram_used",
    "power_cap",
    "metrics",
    "xgmi_info",
    "kfd",
    "vram_info",
    "activity",
    "clock.gfx",
    "clock.mem",
    "power_info",
    "perf_level",
)


def temperature(gpu: GpuFacts, p: _C) -> CheckResult:
    """Hotspot and VRAM: >= CRITICAL fails, >= MAX warns."""
    c = "gpu.temperature"
    ev: dict[str, object] = {}
    status: Status = "pass"
    msgs: list[str] = []
    for sensor in ("hotspot", "vram"):
        t = gpu.temperatures.get(sensor)
        if t is None or t.current is None:
            return unknown(c, gpu, (f"temperature.{sensor}.current",), p.required)
        ev[sensor] = t.model_dump()
        if t.critical is not None and t.current >= t.critical:
            status = "fail"
            msgs.append(f"{sensor} {t.current} C >= critical {t.critical} C")
        elif t.max is not None and t.current >= t.max:
            status = "warn" if status == "pass" else status
            msgs.append(f"{sensor} {t.current} C >= max {t.max} C")
    return CheckResult(
        check=c,
        status=status,
        required=p.required,
        evidence=ev,
        message="; ".join(msgs),
    )


def processes(gpu: GpuFacts, p: ProcessesCheck) -> CheckResult:
    c = "gpu.processes"
    if gpu.processes is None:
        return unknown(c, gpu, ("processes",), p.required)
    foreign = [pr for pr in gpu.processes if (pr.name or "") not in p.allowed]
    ev = {"processes": [pr.model_dump() for pr in foreign], "allowed": p.allowed}
    problem = None
    if foreign:
        who = ", ".join(f"{pr.name} (pid {pr.pid})" for pr in foreign[:5])
        problem = f"processes on the GPU: {who}"
    return verdict(c, p, ev, problem)


def partition(gpu: GpuFacts, p: PartitionCheck) -> CheckResult:
    c = "gpu.partition"
    got = {"compute": gpu.compute_partition, "memory": gpu.memory_partition}
    want = {"compute": p.compute, "memory": p.memory}
    keys = tuple(f"{k}_partition" for k, v in want.items() if v is not None and got[k] is None)
    if keys:
        return unknown(c, gpu, keys, p.required)
    ev = {"actual": got, "expected": want}
    bad = [f"{k} {got[k]} (expected {v})" for k, v in want.items() if v is not None and got[k] != v]
    return verdict(c, p, ev, "partition mode " + ", ".join(bad) if bad else None)


def cper_fatal(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    c = "gpu.cper.fatal"
    if gpu.cper_fatal is None:
        return unknown(c, gpu, ("cper",), p.required)
    ev = {"fatal_records": len(gpu.cper_fatal), "records": gpu.cper_fatal[:8], "max": p.max}
    return verdict(
        c,
        p,
        ev,
        f"{len(gpu.cper_fatal)} fatal CPER records" if len(gpu.cper_fatal) > p.max else None,
    )


def query(gpu: GpuFacts, p: _C) -> CheckResult:
    """An amdsmi error (other than NOT_SUPPORTED) on a query no other check owns (identity,
    enumeration, temperatures): the GPU is not proven healthy. Errors on a check's own data
    are that check's result (unknown), so an optional check's error excludes nothing."""
    c = "gpu.query"
    errs = {k: v for k, v in gpu.errors.items() if k not in OWNED_KEYS}
    if errs:
        return CheckResult(
            check=c,
            status="fail",
            required=True,
            evidence={"errors": errs},
            message="amdsmi query failed: " + "; ".join(errs.values()),
        )
    return CheckResult(check=c, status="pass", required=True, evidence={})


GB = 1 << 30


def vram(gpu: GpuFacts, p: VramCheck) -> CheckResult:
    """VRAM total as expected (a GPU that lost HBM stacks reports less) and used at idle."""
    c = "gpu.vram"
    if gpu.vram_total is None or (p.max_used_gb is not None and gpu.vram_used is None):
        return unknown(c, gpu, ("vram_total", "vram_used"), p.required)
    total, used = gpu.vram_total / GB, (gpu.vram_used or 0) / GB
    # a GPU split into compute partitions shows each logical device its share of the VRAM
    parts = gpu.num_partitions if gpu.partitioned and gpu.num_partitions else 1
    expected = p.expected_total_gb / parts if p.expected_total_gb is not None else None
    ev = {
        "total_gb": round(total, 2),
        "used_gb": round(used, 2),
        "expected_total_gb": expected,
        "max_used_gb": p.max_used_gb,
        **({"partitions": parts} if parts > 1 else {}),
    }
    problems = []
    if expected is not None and total < expected * (1 - p.total_tolerance):
        problems.append(f"VRAM {total:.1f} GB, expected {expected:g} GB")
    if p.max_used_gb is not None and used > p.max_used_gb:
        problems.append(f"{used:.1f} GB VRAM in use at idle, max {p.max_used_gb:g} GB")
    return verdict(c, p, ev, "; ".join(problems) or None)


def power(gpu: GpuFacts, p: PowerCheck) -> CheckResult:
    """Power cap as expected (a lowered cap slows every collective) and throttling at idle."""
    c = "gpu.power"
    if gpu.power_cap is None:
        return unknown(c, gpu, ("power_cap",), p.required)
    cap_w = gpu.power_cap / 1e6
    throttled = gpu.throttle_status not in (None, 0, False, "N/A")
    ev = {
        "power_cap_w": cap_w,
        "expected_cap_w": p.expected_cap_w,
        "default_cap_w": (gpu.power_cap_default or 0) / 1e6,
        "throttle_status": gpu.throttle_status,
    }
    if p.expected_cap_w is not None and abs(cap_w - p.expected_cap_w) > p.tolerance_w:
        return verdict(c, p, ev, f"power cap {cap_w:g} W, expected {p.expected_cap_w:g} W")
    if throttled and p.throttle != "ignore":
        return CheckResult(
            check=c,
            status=p.throttle,
            required=p.required,
            evidence=ev,
            message=f"throttling at idle (throttle status {gpu.throttle_status})",
        )
    return verdict(c, p, ev, None)


def device_access(gpu: GpuFacts, node: NodeFacts, p: DeviceAccessCheck) -> CheckResult:
    """amdgpu loaded, /dev/kfd and the GPU's render node present and usable by the collector."""
    c = "gpu.device_access"
    ev: dict[str, Any] = {
        "driver_loaded": node.driver_loaded,
        "kfd_present": node.kfd_present,
        "kfd_access": node.kfd_access,
        "render_node": gpu.render_node,
        "render_node_access": gpu.render_node_access,
        "render_node_mode": gpu.render_node_mode,
        "kfd_mode": node.kfd_mode,
    }
    if node.kfd_present is None and gpu.render_node_access is None:
        return CheckResult(
            check=c,
            status="unknown",
            required=p.required,
            evidence=ev,
            message="device nodes not checked (facts from an older collector)",
        )
    problems = []
    if node.driver_loaded is False:
        problems.append("amdgpu driver not loaded")
    if not node.kfd_present:
        problems.append("/dev/kfd missing")
    elif not node.kfd_access:
        problems.append("/dev/kfd not accessible (render/video group?)")
    if not gpu.render_node_access:
        problems.append(f"{gpu.render_node or 'render node'} missing or not accessible")
    return verdict(c, p, ev, "; ".join(problems) or None)


def numa(gpu: GpuFacts, node: NodeFacts, p: NumaCheck) -> CheckResult:
    """Evidence for the launch: the GPU's NUMA node and the NICs on the same node."""
    c = "gpu.numa"
    nics = [n.name for n in node.nics if gpu.numa_node is not None and n.numa_node == gpu.numa_node]
    ev = {
        "numa_node": gpu.numa_node,
        "nics_same_numa": nics,
        "nics": {n.name: n.numa_node for n in node.nics},
    }
    if gpu.numa_node is None or gpu.numa_node < 0:
        return CheckResult(
            check=c,
            status="unknown",
            required=p.required,
            evidence=ev,
            message="NUMA node of the GPU unknown",
        )
    return verdict(c, p, ev, None)
