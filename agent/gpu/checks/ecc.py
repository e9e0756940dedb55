"""ECC: uncorrectable and deferred error counts."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown, verdict
from agent.gpu.model import GpuFacts
from agent.gpu.policy import CountCheck


def _count(check: str, gpu: GpuFacts, p: CountCheck, field: str) -> CheckResult:
    if gpu.ecc is None:
        return unknown(check, gpu, ("ecc",), p.required)
    n = getattr(gpu.ecc, field)
    blocks = {b: getattr(c, field) for b, c in gpu.ecc_blocks.items() if getattr(c, field)}
    ev = {field: n, "max": p.max, "blocks": blocks}
    problem = None
    if n > p.max:
        where = f" ({', '.join(f'{b} {v}' for b, v in blocks.items())})" if blocks else ""
        problem = f"{n} {field} ECC errors{where}, max {p.max}"
    return verdict(check, p, ev, problem)


def uncorrectable(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _count("gpu.ecc.uncorrectable", gpu, p, "uncorrectable")


def deferred(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _count("gpu.ecc.deferred", gpu, p, "deferred")
