"""Interconnect: XGMI link state and errors, PCIe width, speed and link error counters."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown, verdict
from agent.gpu.model import GpuFacts
from agent.gpu.policy import CountCheck, SeverityCheck, XgmiLinksCheck


def xgmi_links(gpu: GpuFacts, p: XgmiLinksCheck) -> CheckResult:
    c = "gpu.xgmi.links"
    if gpu.xgmi_links is None:
        return unknown(c, gpu, ("xgmi_links",), p.required)
    up = gpu.xgmi_links.count("U")
    down = [i for i, s in enumerate(gpu.xgmi_links) if s == "D"]
    ev = {"links": "".join(gpu.xgmi_links), "up": up, "expected_up": p.expected_up, "down": down}
    problem = None
    if down or up < p.expected_up:
        what = f"links down: {down}" if down else f"{up} links up, expected {p.expected_up}"
        problem = f"XGMI {what}"
    return verdict(c, p, ev, problem)


def xgmi_errors(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    c = "gpu.xgmi.errors"
    if gpu.xgmi_error_status is None:
        return unknown(c, gpu, ("xgmi_errors",), p.required)
    ev = {"xgmi_error_status": gpu.xgmi_error_status, "max": p.max}
    problem = None
    if gpu.xgmi_error_status > p.max:
        kind = {1: "one error", 2: "multiple errors"}.get(gpu.xgmi_error_status, "errors")
        problem = f"XGMI {kind}"
    return verdict(c, p, ev, problem)


def _below_max(check: str, gpu: GpuFacts, p: SeverityCheck, field: str, unit: str) -> CheckResult:
    """PCIe width or speed: the link trained below what both ends are capable of."""
    cur = getattr(gpu.pcie, field, None) if gpu.pcie else None
    top = getattr(gpu.pcie, f"max_{field}", None) if gpu.pcie else None
    if cur is None or top is None:
        return unknown(check, gpu, ("pcie",), p.required)
    ev = {field: cur, f"max_{field}": top}
    return verdict(
        check, p, ev, f"PCIe {field} {cur}{unit}, capable of {top}{unit}" if cur < top else None
    )


def pcie_width(gpu: GpuFacts, p: SeverityCheck) -> CheckResult:
    return _below_max("gpu.pcie.width", gpu, p, "width", " lanes")


def pcie_speed(gpu: GpuFacts, p: SeverityCheck) -> CheckResult:
    return _below_max("gpu.pcie.speed", gpu, p, "speed", " MT/s")


def pcie_errors(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    c = "gpu.pcie.errors"
    if gpu.pcie is None:
        return unknown(c, gpu, ("pcie",), p.required)
    counters = {
        k: getattr(gpu.pcie, k)
        for k in ("l0_to_recovery_count", "nak_sent_count", "nak_received_count")
    }
    ev = {**counters, "replay_count": gpu.pcie.replay_count, "max": p.max}
    over = {k: v for k, v in counters.items() if v is not None and v > p.max}
    if over:
        return CheckResult(
            check=c,
            status=p.severity,
            required=p.required,
            evidence=ev,
            message="PCIe link errors: " + ", ".join(f"{k} {v}" for k, v in over.items()),
        )
    if all(v is None for v in counters.values()):
        return unknown(c, gpu, ("pcie",), p.required)
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)
