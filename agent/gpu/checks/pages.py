"""Retired (bad) pages: count against the driver's threshold, unreservable and pending pages."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown, verdict
from agent.gpu.model import GpuFacts
from agent.gpu.policy import BadPagesCheck, CountCheck


def count(gpu: GpuFacts, p: BadPagesCheck) -> CheckResult:
    c = "gpu.bad_pages.count"
    if gpu.bad_pages is None or gpu.bad_page_threshold is None:
        return unknown(c, gpu, ("bad_pages", "bad_page_threshold"), p.required)
    n, t = len(gpu.bad_pages), gpu.bad_page_threshold
    ev = {"bad_pages": n, "threshold": t}
    if t and n >= p.fail_fraction * t:
        return CheckResult(
            check=c,
            status="fail",
            required=p.required,
            evidence=ev,
            message=f"{n} bad pages, threshold {t}",
        )
    if t and n >= p.warn_fraction * t:
        return CheckResult(
            check=c,
            status="warn",
            required=p.required,
            evidence=ev,
            message=f"{n} bad pages, {n / t:.0%} of threshold {t}",
        )
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)


def _by_status(check: str, gpu: GpuFacts, p: CountCheck, status: str) -> CheckResult:
    if gpu.bad_pages is None:
        return unknown(check, gpu, ("bad_pages",), p.required)
    pages = [pg for pg in gpu.bad_pages if pg.status == status]
    ev = {
        status: len(pages),
        "max": p.max,
        "addresses": [hex(pg.address) for pg in pages[:16] if pg.address is not None],
    }
    return verdict(check, p, ev, f"{len(pages)} {status} bad pages" if len(pages) > p.max else None)


def unreservable(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _by_status("gpu.bad_pages.unreservable", gpu, p, "unreservable")


def pending(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    return _by_status("gpu.bad_pages.pending", gpu, p, "pending")
