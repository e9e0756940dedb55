"""ECC: uncorrectable and deferred error counts."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown
from agent.gpu.model import GpuFacts
from agent.gpu.policy import CountCheck


def _count(check: str, gpu: GpuFacts, p: CountCheck, field: str) -> CheckResult:
    if gpu.ecc is None:
        return unknown(check, gpu, ("ecc",), p.required)
    n = getattr(gpu.ecc, field)
    blocks = {b: getattr(c, field) for b, c in gpu.ecc_blocks.items() if getattr(c, field)}
    ev = {field: n, "max": p.max, "blocks": blocks}
    if n > p.max:
        where = f" ({', '.join(f'{b} {v}' for b, v in blocks.items())})" if blocks else ""
        return CheckResult(
            check=check,
            status=p.severity,
            required=p.required,
            evidence=ev,
            message=f"{n} {field} ECC errors{where}, max {p.max}",
        )
    return CheckResult(check=check, status="pass", required=p.required, evidence=ev)


def uncorrectable(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _count("gpu.ecc.uncorrectable", gpu, p, "uncorrectable")


def deferred(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _count("gpu.ecc.deferred", gpu, p, "deferred")
