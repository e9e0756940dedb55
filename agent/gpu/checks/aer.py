"""PCIe AER counters since boot of each GPU's PCI device (pure).

Source of the counters: the kernel's ``/sys/bus/pci/devices/<bdf>/aer_dev_correctable``,
``aer_dev_nonfatal`` and ``aer_dev_fatal`` (Documentation/ABI/testing/
sysfs-bus-pci-devices-aer_stats: one ``<name> <count>`` per line, a ``TOTAL_ERR_*`` line
last; counters start at zero at boot). Severities: an uncorrectable fatal error fails the
GPU, a non-fatal one warns, corrected errors are reported only (Meta GCM's pcie-aer check:
Fatal critical, Non-Fatal warning, Corrected informational). docs/checks.md.
"""

from __future__ import annotations

from agent.gpu.checks import RANK, CheckResult, unknown
from agent.gpu.model import GpuFacts
from agent.gpu.policy import AerCheck

TOTALS = {
    "fatal": "TOTAL_ERR_FATAL",
    "nonfatal": "TOTAL_ERR_NONFATAL",
    "correctable": "TOTAL_ERR_COR",
}


def total(counters: dict[str, int], kind: str) -> int:
    """The kernel's TOTAL_ERR_* line, else the sum of the named errors."""
    key = TOTALS[kind]
    if key in counters:
        return counters[key]
    return sum(v for k, v in counters.items() if not k.startswith("TOTAL_"))


def pcie_aer(g: GpuFacts, p: AerCheck) -> CheckResult:
    check = "gpu.pcie.aer"
    if g.aer is None:
        return unknown(check, g, ("aer",), p.required)
    totals = {kind: total(g.aer[kind], kind) for kind in TOTALS if kind in g.aer}
    named = {
        kind: {k: v for k, v in g.aer[kind].items() if v and not k.startswith("TOTAL_")}
        for kind in totals
    }
    evidence = {"totals": totals, "errors": {k: v for k, v in named.items() if v}}
    status = "pass"
    problems: list[str] = []
    for kind, limit, severity in (
        ("fatal", p.fatal_max, p.fatal_severity),
        ("nonfatal", p.nonfatal_max, p.nonfatal_severity),
        ("correctable", p.correctable_max, p.correctable_severity),
    ):
        n = totals.get(kind)
        if limit is None or n is None or n <= limit:
            continue
        which = ", ".join(f"{k} {v}" for k, v in named.get(kind, {}).items())
        problems.append(
            f"{n} PCIe AER {kind} error{'s' if n != 1 else ''} since boot"
            + (f" ({which})" if which else "")
            + f", more than {limit}"
        )
        if RANK[severity] > RANK[status]:
            status = severity
    missing = [k for k in TOTALS if k not in g.aer]
    if missing:
        evidence["not_read"] = missing
    return CheckResult(
        check=check,
        status=status,  # type: ignore[arg-type]
        required=p.required,
        evidence=evidence,
        message="; ".join(problems),
    )
