"""GPU state: temperature, processes, partition modes, fatal CPER records, query errors."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, Status, unknown, verdict
from agent.gpu.model import GpuFacts
from agent.gpu.policy import _C, CountCheck, PartitionCheck, ProcessesCheck


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
    """Any amdsmi error other than NOT_SUPPORTED: the GPU is not proven healthy."""
    c = "gpu.query"
    if gpu.errors:
        return CheckResult(
            check=c,
            status="fail",
            required=True,
            evidence={"errors": gpu.errors},
            message="amdsmi query failed: " + "; ".join(gpu.errors.values()),
        )
    return CheckResult(check=c, status="pass", required=True, evidence={})
