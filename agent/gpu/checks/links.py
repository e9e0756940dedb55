"""Interconnect: XGMI link state and errors, PCIe width, speed and link error counters."""

from __future__ import annotations

from typing import Any

from agent.gpu.checks import CheckResult, unknown, verdict
from agent.gpu.model import GpuFacts, NodeFacts
from agent.gpu.policy import CountCheck, PcieLinkCheck, ReplayCheck, XgmiLinksCheck


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
    """XGMI errors: the legacy error status (MI2xx), else the XGMI_WAFL RAS block's counts.

    On MI300/MI355 (DF 4.x) ``amdsmi_gpu_xgmi_error_status`` answers INVAL (the sysfs
    xgmi_error read fails, rocm-systems #11468); XGMI faults are counted as RAS errors of the
    XGMI_WAFL block there, so that is the source this check reads instead.
    """
    c = "gpu.xgmi.errors"
    if gpu.xgmi_error_status is None:
        if gpu.ecc is None:
            return unknown(c, gpu, ("xgmi_errors", "ecc"), p.required)
        wafl = gpu.ecc_blocks.get("XGMI_WAFL")
        n = wafl.uncorrectable if wafl else 0
        ev: dict[str, Any] = {
            "source": "XGMI_WAFL RAS block (uncorrectable)",
            "xgmi_error_status": gpu.errors.get("xgmi_errors", "not supported"),
            "xgmi_wafl_uncorrectable": n,
            "xgmi_wafl_correctable": wafl.correctable if wafl else 0,
            "max": p.max,
        }
        return verdict(
            c,
            p,
            ev,
            f"XGMI_WAFL: {n} uncorrectable XGMI errors, max {p.max}" if n > p.max else None,
        )
    ev = {"xgmi_error_status": gpu.xgmi_error_status, "max": p.max}
    problem = None
    if gpu.xgmi_error_status > p.max:
        kind = {1: "one error", 2: "multiple errors"}.get(gpu.xgmi_error_status, "errors")
        problem = f"XGMI {kind}"
    return verdict(c, p, ev, problem)


def _below_max(check: str, gpu: GpuFacts, p: PcieLinkCheck, field: str, unit: str) -> CheckResult:
    """PCIe width or speed: below what both ends are capable of, or below the expected value
    (a slot or riser that only trains x8 / Gen4 reports that as its maximum)."""
    cur = getattr(gpu.pcie, field, None) if gpu.pcie else None
    top = getattr(gpu.pcie, f"max_{field}", None) if gpu.pcie else None
    if cur is None or top is None:
        return unknown(check, gpu, ("pcie",), p.required)
    ev: dict[str, Any] = {field: cur, f"max_{field}": top, "expected": p.expected}
    problem = None
    if cur < top:
        problem = f"PCIe {field} {cur}{unit}, capable of {top}{unit}"
    elif p.expected is not None and cur < p.expected:
        problem = f"PCIe {field} {cur}{unit}, expected {p.expected}{unit}"
    return verdict(check, p, ev, problem)


def pcie_width(gpu: GpuFacts, p: PcieLinkCheck) -> CheckResult:
    return _below_max("gpu.pcie.width", gpu, p, "width", " lanes")


def pcie_speed(gpu: GpuFacts, p: PcieLinkCheck) -> CheckResult:
    return _below_max("gpu.pcie.speed", gpu, p, "speed", " MT/s")


def pcie_replay(gpu: GpuFacts, p: ReplayCheck, uptime_s: float | None = None) -> CheckResult:
    """PCIe replays (the link retransmitting TLPs): the count since boot, and its rate per
    minute averaged over the node's uptime (RDC and DCGM watch the rate)."""
    c = "gpu.pcie.replay"
    n = gpu.pcie.replay_count if gpu.pcie else None
    if n is None:
        return unknown(c, gpu, ("pcie",), p.required)
    rate = round(n / (uptime_s / 60), 3) if uptime_s else None
    ev = {"replay_count": n, "max": p.max, "per_minute": rate, "max_per_minute": p.max_per_minute}
    problems = []
    if n > p.max:
        problems.append(f"PCIe replay count {n}, max {p.max}")
    if rate is not None and p.max_per_minute is not None and rate > p.max_per_minute:
        problems.append(f"{rate:g} PCIe replays per minute since boot, max {p.max_per_minute:g}")
    return verdict(c, p, ev, "; ".join(problems) or None)


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


def _peer_of(gpu: GpuFacts, slot: int, gpus: list[GpuFacts]) -> tuple[str, GpuFacts | None, bool]:
    """Who link ``slot`` of ``gpu`` reaches: (label, the peer's facts or None if amdsmi does not
    enumerate it, whether the peer's identity is known from its BDF).

    The peer BDF from amdsmi_get_link_metrics when the library gives it, else the GPU whose
    XGMI index in the hive is ``slot`` (docs/sim-gpu-state.md says what is confirmed).
    """
    peers = gpu.xgmi_peers or []
    bdf = peers[slot] if slot < len(peers) else None
    if bdf:
        for g in gpus:
            if (g.bdf or "").lower() == bdf:
                return f"GPU {g.runtime_index} ({bdf})", g, True
        return f"GPU at {bdf}", None, True
    for g in gpus:
        idx = g.xgmi_index if g.xgmi_index is not None else g.index
        same_hive = g.xgmi_hive_id == gpu.xgmi_hive_id
        if g is not gpu and same_hive and idx == slot:
            return f"GPU {g.runtime_index} ({g.bdf})", g, True
    return f"hive slot {slot} (no GPU enumerated there)", None, False


def xgmi_graph(facts: NodeFacts, p: XgmiLinksCheck, missing: int) -> dict[int, CheckResult]:
    """Peer-aware XGMI link check for every GPU of a node (key: GpuFacts.index).

    Every GPU's link view goes into one graph. A link down to a GPU amdsmi does not enumerate
    is blamed on that GPU (it is excluded as missing). A link down between two present GPUs
    is blamed on the end with more down links; on a tie (one link) on both, each naming the
    other. A GPU passes when its up links plus the down links blamed elsewhere reach the
    expected count less the node's missing GPUs (``missing``).
    """
    out: dict[int, CheckResult] = {}
    gpus = facts.gpus
    down: dict[int, set[int]] = {g.index: set() for g in gpus}  # present-present edges
    to_missing: dict[int, list[str]] = {g.index: [] for g in gpus}
    unknown_slots: dict[int, list[int]] = {g.index: [] for g in gpus}
    for g in gpus:
        for slot, st in enumerate(g.xgmi_links or []):
            if st != "D":
                continue
            label, peer, known = _peer_of(g, slot, gpus)
            if peer is None:
                if not known and missing == 0:  # nobody missing to blame: this GPU's link
                    unknown_slots[g.index].append(slot)
                else:
                    to_missing[g.index].append(label)
            else:
                down[g.index].add(peer.index)
                down[peer.index].add(g.index)
    by_index = {g.index: g for g in gpus}
    for g in gpus:
        if g.xgmi_links is None:
            out[g.index] = unknown("gpu.xgmi.links", g, ("xgmi_links",), p.required)
            continue
        up = g.xgmi_links.count("U")
        deg = len(down[g.index])
        mine: list[str] = []
        theirs: list[str] = []
        for q in sorted(down[g.index]):
            label = f"GPU {by_index[q].runtime_index} ({by_index[q].bdf})"
            (mine if deg >= len(down[q]) else theirs).append(label)
        expected = max(p.expected_up - missing, 0)
        credited = up + len(theirs) + len(to_missing[g.index])
        ev: dict[str, Any] = {
            "links": "".join(g.xgmi_links),
            "up": up,
            "expected_up": expected,
            "down_to": mine,
            "down_blamed_on_peer": theirs,
            "down_to_missing": to_missing[g.index],
            "down_slots_without_gpu": unknown_slots[g.index],
        }
        problems = []
        if mine:
            problems.append(f"XGMI link down to {', '.join(mine)}")
        if unknown_slots[g.index]:
            problems.append(f"XGMI link slots {unknown_slots[g.index]} down")
        if not problems and credited < expected:
            problems.append(f"{up} XGMI links up, expected {expected}")
        out[g.index] = verdict("gpu.xgmi.links", p, ev, "; ".join(problems) or None)
        if not problems and (theirs or to_missing[g.index]):
            out[g.index].message = (
                "links down to " + ", ".join(theirs + to_missing[g.index]) + " (blamed on the peer)"
            )
    return out


def xgmi_topology(facts: NodeFacts) -> tuple[list[list[int]], list[list[int]]]:
    """The node's XGMI link graph, for placing engines (tuner launch --tp): (groups, down).

    groups: the GPUs of each XGMI hive (runtime indices), only GPUs whose link states amdsmi
    read; down: pairs of GPUs (runtime indices) whose link between them is down, seen from
    either end. Two GPUs are XGMI partners when they share a group and are not a down pair.
    """
    hives: dict[Any, list[int]] = {}
    down: set[tuple[int, int]] = set()
    for g in facts.gpus:
        if g.xgmi_links is None:
            continue
        key = g.xgmi_hive_id if g.xgmi_hive_id is not None else ("alone", g.index)
        hives.setdefault(key, []).append(g.runtime_index)
        for slot, st in enumerate(g.xgmi_links):
            if st != "D":
                continue
            _label, peer, _known = _peer_of(g, slot, facts.gpus)
            if peer is not None:
                a, b = sorted((g.runtime_index, peer.runtime_index))
                down.add((a, b))
    groups = sorted(sorted(v) for v in hives.values())
    return groups, [list(p) for p in sorted(down)]
