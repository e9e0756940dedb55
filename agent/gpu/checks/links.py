"""Interconnect: XGMI link state and errors, PCIe width, speed and link error counters."""

from __future__ import annotations

from agent.gpu.checks import CheckResult, unknown
from agent.gpu.model import GpuFacts
from agent.gpu.policy import CountCheck, SeverityCheck, XgmiLinksCheck


def xgmi_links(gpu: GpuFacts, p: XgmiLinksCheck) -> CheckResult:
    c = "gpu.xgmi.links"
    if gpu.xgmi_links is None:
        return unknown(c, gpu, ("xgmi_links",), p.required)
    up = gpu.xgmi_links.count("U")
    down = [i for i, s in enumerate(gpu.xgmi_links) if s == "D"]
    ev = {"links": "".join(gpu.xgmi_links), "up": up, "expected_up": p.expected_up, "down": down}
    if down or up < p.expected_up:
        what = f"links down: {down}" if down else f"{up} links up, expected {p.expected_up}"
        return CheckResult(
            check=c, status=p.severity, required=p.required, evidence=ev, message=f"XGMI {what}"
        )
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)


def xgmi_errors(gpu: GpuFacts, p: CountCheck) -> CheckResult:
    c = "gpu.xgmi.errors"
    if gpu.xgmi_error_status is None:
        return unknown(c, gpu, ("xgmi_errors",), p.required)
    ev = {"xgmi_error_status": gpu.xgmi_error_status, "max": p.max}
    if gpu.xgmi_error_status > p.max:
        kind = {1: "one error", 2: "multiple errors"}.get(gpu.xgmi_error_status, "errors")
        return CheckResult(
            check=c, status=p.severity, required=p.required, evidence=ev, message=f"XGMI {kind}"
        )
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)


def pcie_width(gpu: GpuFacts, p: SeverityCheck) -> CheckResult:
    c = "gpu.pcie.width"
    if gpu.pcie is None or gpu.pcie.width is None or gpu.pcie.max_width is None:
        return unknown(c, gpu, ("pcie",), p.required)
    ev = {"width": gpu.pcie.width, "max_width": gpu.pcie.max_width}
    if gpu.pcie.width < gpu.pcie.max_width:
        return CheckResult(
            check=c,
            status=p.severity,
            required=p.required,
            evidence=ev,
            message=f"PCIe x{gpu.pcie.width}, capable of x{gpu.pcie.max_width}",
        )
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)


def pcie_speed(gpu: GpuFacts, p: SeverityCheck) -> CheckResult:
    c = "gpu.pcie.speed"
    if gpu.pcie is None or gpu.pcie.speed is None or gpu.pcie.max_speed is None:
        return unknown(c, gpu, ("pcie",), p.required)
    ev = {"speed_mts": gpu.pcie.speed, "max_speed_mts": gpu.pcie.max_speed}
    if gpu.pcie.speed < gpu.pcie.max_speed:
        return CheckResult(
            check=c,
            status=p.severity,
            required=p.required,
            evidence=ev,
            message=f"PCIe {gpu.pcie.speed} MT/s, capable of {gpu.pcie.max_speed}",
        )
    return CheckResult(check=c, status="pass", required=p.required, evidence=ev)


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
