"""ECC: uncorrectable and deferred error counts."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown, verdict
from agent.gpu.model import GpuFacts
from agent.gpu.policy import CountCheck, RasCheck


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


def correctable(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    """Correctable errors per block: a storm on one block (HBM, UMC) is a GPU wearing out."""
    c = "gpu.ecc.correctable"
    if gpu.ecc is None:
        return unknown(c, gpu, ("ecc",), p.required)
    blocks = {b: e.correctable for b, e in gpu.ecc_blocks.items() if e.correctable}
    over = {b: n for b, n in blocks.items() if n > p.max}
    if not gpu.ecc_blocks and gpu.ecc.correctable > p.max:
        over = {"total": gpu.ecc.correctable}  # per-block counts not readable: the total
    ev = {"correctable": gpu.ecc.correctable, "max_per_block": p.max, "blocks": blocks}
    problem = None
    if over:
        where = ", ".join(f"{b} {n}" for b, n in over.items())
        problem = f"correctable ECC errors above {p.max} per block: {where}"
    return verdict(c, p, ev, problem)


def ras_enabled(gpu: GpuFacts, p: RasCheck) -> CheckResult:
    """RAS (ECC) enabled on each listed block: a block with ECC off reports zero errors."""
    c = "gpu.ras.enabled"
    if gpu.ras_features is None:
        return unknown(c, gpu, ("ras",), p.required)
    states = {b: gpu.ras_features.get(b, "unknown: not reported") for b in p.blocks}
    unread = {b: s for b, s in states.items() if s.startswith("unknown")}
    if unread:
        return CheckResult(
            check=c,
            status="unknown",
            required=p.required,
            evidence={"blocks": states},
            message="RAS state not readable: " + ", ".join(f"{b} {s}" for b, s in unread.items()),
        )
    off = {b: s for b, s in states.items() if s != "ENABLED"}
    ev = {"blocks": {b: gpu.ras_features.get(b) for b in p.blocks}}
    problem = None
    if off:
        what = ", ".join(f"{b} {s}" for b, s in off.items())
        problem = f"RAS not enabled on {what}: its error counts read zero and prove nothing"
    return verdict(c, p, ev, problem)
