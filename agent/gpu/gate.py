"""The pre-run health gate: per-GPU verdicts, fleet consistency, the usable-GPU inventory.

Pure: it takes node facts (or why a node gave none) and a policy, and returns the inventory
(docs/gpu-inventory.md is its schema). It decides per GPU, keeps a node that lost one GPU,
and never counts a GPU it could not prove healthy.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel

from agent.gpu.checks import (
    RANK,
    CheckResult,
    aer,
    ecc,
    identity,
    idle,
    kernellog,
    links,
    pages,
    state,
)
from agent.gpu.model import GpuFacts, HostFacts, NodeFacts
from agent.gpu.policy import Policy
from agent.view import n_of

SCHEMA = "tuner.gpu-inventory/1"

# check id -> (function, attribute of policy.checks)
GPU_CHECKS: list[tuple[str, Any, str]] = [
    ("gpu.query", state.query, "query"),
    ("gpu.ecc.uncorrectable", ecc.uncorrectable, "ecc_uncorrectable"),
    ("gpu.ecc.deferred", ecc.deferred, "ecc_deferred"),
    ("gpu.ecc.correctable", ecc.correctable, "ecc_correctable"),
    ("gpu.ras.enabled", ecc.ras_enabled, "ras"),
    ("gpu.bad_pages.count", pages.count, "bad_pages"),
    ("gpu.bad_pages.unreservable", pages.unreservable, "bad_pages_unreservable"),
    ("gpu.bad_pages.pending", pages.pending, "bad_pages_pending"),
    ("gpu.cper.fatal", state.cper_fatal, "cper_fatal"),
    ("gpu.xgmi.links", links.xgmi_links, "xgmi_links"),
    ("gpu.xgmi.errors", links.xgmi_errors, "xgmi_errors"),
    ("gpu.pcie.width", links.pcie_width, "pcie_width"),
    ("gpu.pcie.speed", links.pcie_speed, "pcie_speed"),
    ("gpu.pcie.errors", links.pcie_errors, "pcie_errors"),
    ("gpu.vram", state.vram, "vram"),
    ("gpu.power", state.power, "power"),
    ("gpu.temperature", state.temperature, "temperature"),
    ("gpu.processes", state.processes, "processes"),
    ("gpu.partition", state.partition, "partition"),
    ("gpu.idle", idle.idle, "idle"),
]


class GpuEntry(BaseModel):
    index: int | None  # as the runtime numbers it (HIP index with all GPUs visible)
    bdf: str | None
    uuid: str | None
    serial: str | None
    checks: list[CheckResult] = []  # usable: warnings; excluded: what failed
    # identity and what consumers of the inventory need (docs/export.md)
    hip_uuid: str | None = None  # GPU-<hex>, the form ROCR_VISIBLE_DEVICES accepts
    render_node: str | None = None  # /dev/dri/renderD<N>
    market_name: str | None = None
    firmware: dict[str, str] | None = None
    vbios_version: str | None = None
    driver_version: str | None = None


class GpuView(BaseModel):
    """One GPU at a glance, for `tuner check --gpus`: readings and the verdict."""

    index: int | None
    bdf: str | None
    verdict: Literal["usable", "warned", "excluded"]
    hotspot_c: int | None = None
    vram_c: int | None = None
    ecc: str = ""  # "ce/ue/deferred"
    xgmi: str = ""  # link letters
    pcie: str = ""  # "x16 32000"
    firmware: str = ""  # a short signature (PM and PSP_SOSDRV)
    numa_node: int | None = None
    nics_same_numa: list[str] = []  # evidence for the launch: NICs on the GPU's NUMA node
    render_node: str | None = None
    problems: list[str] = []


class PhysicalGpu(BaseModel):
    """A physical GPU of a node whose GPUs are split into compute partitions: its PCI device
    and the logical devices (runtime indices) amdsmi shows under it."""

    bdf: str | None  # the PCI device (function 0)
    serial: str | None
    compute_partition: str | None = None
    memory_partition: str | None = None
    partitions: list[int] = []  # runtime indices of its logical devices
    excluded_partitions: list[int] = []
    usable: bool = True  # every logical device usable (fail closed)


class NodeEntry(BaseModel):
    name: str
    status: Literal["ok", "degraded", "excluded", "failed"]
    reason: str = ""
    installed: int | None = None  # AMD GPUs on the PCI bus (failed node: expected, unknown)
    enumerated: int | None = None  # GPUs amdsmi reports
    usable: list[GpuEntry] = []
    excluded: list[GpuEntry] = []
    warnings: list[str] = []
    seconds: float | None = None
    needs_root: list[str] = []  # checks that could not read their data without root
    gpus: list[GpuView] = []  # every GPU's readings and verdict (the per-GPU view)
    # how to reach the node (from the inventory; set by attach_addresses)
    address: str | None = None  # ansible_host
    port: int | None = None  # ansible_port
    user: str | None = None  # ansible_user
    host: HostFacts | None = None  # CPUs, memory, OS of the node (for mlperf-system)
    # The XGMI link graph (runtime indices; links.xgmi_topology), for tuner launch --tp:
    # None when the report predates it or the node gave no facts.
    xgmi_groups: list[list[int]] | None = None  # GPUs of each hive whose links were read
    xgmi_down: list[list[int]] | None = None  # pairs whose link is down
    # Compute partitions: the physical GPUs and their logical devices (only for a node whose
    # GPUs are partitioned; `usable`/`excluded` list logical devices, what a launch masks)
    physical_gpus: list[PhysicalGpu] | None = None


class GateOptions(BaseModel):
    min_gpus: int | None = None
    min_gpus_per_node: int | None = None
    max_excluded_nodes: int | None = None


class Gate(BaseModel):
    passed: bool
    reasons: list[str]
    options: GateOptions
    policy: str | None


class FleetInfo(BaseModel):
    firmware_majority: dict[str, str] = {}
    driver_majority: str | None = None
    vbios_majority: str | None = None
    warnings: list[str] = []


class GpuInventory(BaseModel):
    schema_: str = SCHEMA
    generated_at: str
    gate: Gate
    usable_gpus: int
    installed_gpus: int  # includes the expected GPUs of failed nodes
    excluded_gpus: int
    unknown_gpus: int = 0  # expected GPUs of nodes that gave no facts
    # Physical GPUs (a GPU split into compute partitions counts once; usable when all its
    # logical devices are). Without partitions these equal usable_gpus / installed_gpus.
    usable_physical_gpus: int | None = None
    installed_physical_gpus: int | None = None
    duplicates: list[identity.Duplicate] = []  # identity seen in two places (fleet.identity)
    summary: str = ""
    nodes_total: int
    nodes_usable: int
    nodes_excluded: int
    nodes: list[NodeEntry]
    fleet: FleetInfo
    inventory: str | None = None  # the Ansible inventory the facts came through
    diagnostics: dict[str, Any] | None = None  # tuner check --level 2|3 (agent/diag/run.py)

    def model_dump_inventory(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["schema"] = d.pop("schema_")
        return d


def _entry(g: GpuFacts, checks: list[CheckResult]) -> GpuEntry:
    return GpuEntry(
        index=g.runtime_index,
        bdf=g.bdf,
        uuid=g.uuid,
        serial=g.serial,
        checks=checks,
        hip_uuid=g.hip_uuid,
        render_node=g.render_node,
        market_name=g.market_name,
        firmware=g.firmware,
        vbios_version=g.vbios_version,
        driver_version=g.driver_version,
    )


def _fw_signature(g: GpuFacts) -> tuple[tuple[str, str], ...] | None:
    if g.firmware is None:
        return None
    return tuple(sorted(g.firmware.items())) + (("vbios", g.vbios_version or ""),)


def evaluate_gpu(g: GpuFacts, policy: Policy) -> list[CheckResult]:
    out = []
    for _cid, fn, attr in GPU_CHECKS:
        p = getattr(policy.checks, attr)
        if p.enabled:
            out.append(fn(g, p))
    return out


def failed_node(name: str, reason: str, expected: int | None = None) -> NodeEntry:
    """A node that gave no facts (unreachable, past its deadline, no ROCm): nothing usable;
    its ``expected`` GPUs (policy or host variable) count as installed and unknown."""
    return NodeEntry(name=name, status="failed", reason=reason, installed=expected)


def evaluate_node(facts: NodeFacts, policy: Policy) -> NodeEntry:
    node = NodeEntry(
        name=facts.name,
        status="ok",
        installed=len(facts.pci_gpus),
        enumerated=len(facts.gpus),
        seconds=facts.seconds,
        host=facts.host,
    )
    checks = policy.checks
    if facts.errors:
        # amdsmi could not start or enumerate: no GPU on this node is proven healthy.
        err = CheckResult(
            check="gpu.query",
            status="fail",
            evidence={"errors": facts.errors},
            message="; ".join(facts.errors),
        )
        node.excluded = [
            GpuEntry(index=None, bdf=p.bdf, uuid=None, serial=None, checks=[err])
            for p in facts.pci_gpus
        ]
        node.status, node.reason = "failed", "amdsmi failed: " + "; ".join(facts.errors)
        return node

    results = {g.index: evaluate_gpu(g, policy) for g in facts.gpus}

    # Node context: the XGMI link graph, device nodes, NUMA placement.
    expected_n = max(policy.expected_gpus_per_node or 0, len(facts.pci_gpus))
    missing_n = max(expected_n - len(facts.gpus), 0)
    node.xgmi_groups, node.xgmi_down = links.xgmi_topology(facts)
    if checks.xgmi_links.enabled:
        graph = links.xgmi_graph(facts, checks.xgmi_links, missing_n)
        for g in facts.gpus:
            results[g.index] = [r for r in results[g.index] if r.check != "gpu.xgmi.links"]
            results[g.index].append(graph[g.index])
    for g in facts.gpus:
        if checks.pcie_replay.enabled:
            results[g.index].append(links.pcie_replay(g, checks.pcie_replay, facts.host.uptime_s))
        if checks.device_access.enabled:
            results[g.index].append(state.device_access(g, facts, checks.device_access))
        if checks.numa.enabled:
            results[g.index].append(state.numa(g, facts, checks.numa))
        if checks.firmware.enabled and checks.firmware.allowed:
            results[g.index].append(_baseline(g, checks.firmware))
        # Facts from a collector that predates these readers (saved snapshots) say nothing
        # about them: not judged. A collector that looked and found nothing: unknown.
        if checks.pcie_aer.enabled and (g.aer is not None or "aer" in g.unsupported):
            results[g.index].append(aer.pcie_aer(g, checks.pcie_aer))
        if checks.kernel_log.enabled and facts.kernel_log is not None:
            results[g.index].append(kernellog.kernel_log(g, facts, checks.kernel_log))
    if checks.kernel_log.enabled:
        log = facts.kernel_log
        if log is not None and log.error is not None:
            node.warnings.append(f"kernel log not read: {log.error}")
        elif log is not None:
            for e in kernellog.foreign(kernellog.parse(log.lines), facts):
                node.warnings.append(
                    f"kernel log: {kernellog.LABEL[e.kind]} on {e.bdf}, which is no GPU amdsmi "
                    "enumerates"
                )
    node.needs_root = sorted(
        {w for g in facts.gpus for r in results[g.index] for w in r.evidence.get("needs_root", [])}
    )
    if node.needs_root:
        who = f"the collector ran as uid {facts.euid}; " if facts.euid else ""
        node.warnings.append(
            f"needs root: {', '.join(node.needs_root)} (debugfs; {who}set tuner_become)"
        )

    # Firmware: drift inside the node warns; mixed firmware inside one XGMI hive fails it.
    if checks.firmware.enabled:
        sigs = {g.index: _fw_signature(g) for g in facts.gpus}
        known = [s for s in sigs.values() if s is not None]
        majority = Counter(known).most_common(1)[0][0] if known else None
        hives: dict[Any, set[Any]] = {}
        for g in facts.gpus:
            if sigs[g.index] is not None and g.xgmi_hive_id is not None:
                hives.setdefault(g.xgmi_hive_id, set()).add(sigs[g.index])
        mixed = {h for h, s in hives.items() if len(s) > 1}
        for g in facts.gpus:
            sig = sigs[g.index]
            if sig is None:
                results[g.index].append(
                    CheckResult(
                        check="gpu.firmware",
                        status="unknown",
                        required=checks.firmware.required,
                        evidence={"errors": {k: v for k, v in g.errors.items() if k == "firmware"}},
                        message="firmware versions could not be read",
                    )
                )
            elif g.xgmi_hive_id in mixed:
                diff = _fw_diff(sig, majority)
                results[g.index].append(
                    CheckResult(
                        check="gpu.firmware",
                        status=checks.firmware.mixed_hive,
                        evidence={"hive": g.xgmi_hive_id, "differs_from_node_majority": diff},
                        message=f"mixed firmware inside XGMI hive {g.xgmi_hive_id}",
                    )
                )
            elif sig != majority:
                results[g.index].append(
                    CheckResult(
                        check="gpu.firmware",
                        status=checks.firmware.severity,
                        required=checks.firmware.required,
                        evidence={"differs_from_node_majority": _fw_diff(sig, majority)},
                        message="firmware differs from the other GPUs of this node",
                    )
                )
        if mixed and checks.firmware.mixed_hive == "fail":
            node.reason = "mixed firmware inside one XGMI hive"
            for g in facts.gpus:
                if not any(
                    r.check == "gpu.firmware" and r.status == "fail" for r in results[g.index]
                ):
                    results[g.index].append(
                        CheckResult(
                            check="gpu.firmware",
                            status="fail",
                            evidence={"hive": g.xgmi_hive_id},
                            message="node failed: mixed firmware inside its XGMI hive",
                        )
                    )

    # The memory partition (NPS) is one mode for a whole XGMI hive: the driver switches every
    # GPU of the hive together, so a hive that reports two modes is a half-applied change.
    if checks.partition.enabled:
        modes: dict[Any, set[str]] = {}
        for g in facts.gpus:
            if g.xgmi_hive_id and g.memory_partition:
                modes.setdefault(g.xgmi_hive_id, set()).add(g.memory_partition)
        for g in facts.gpus:
            seen_modes = modes.get(g.xgmi_hive_id, set())
            if len(seen_modes) > 1:
                results[g.index].append(
                    CheckResult(
                        check="gpu.partition.memory_hive",
                        status=checks.partition.severity,
                        required=checks.partition.required,
                        evidence={"hive": g.xgmi_hive_id, "modes": sorted(seen_modes)},
                        message=f"memory partitions {', '.join(sorted(seen_modes))} inside one "
                        "XGMI hive (the mode is hive-wide: a half-applied change)",
                    )
                )

    for g in facts.gpus:
        res = results[g.index]
        blocking = [r for r in res if r.blocks]
        if blocking:
            node.excluded.append(_entry(g, blocking))
        else:
            node.usable.append(_entry(g, [r for r in res if r.status != "pass"]))
        node.gpus.append(_view(g, res, bool(blocking)))

    # A GPU on the PCI bus that amdsmi does not enumerate (the driver refused it).
    if checks.missing.enabled:
        seen = {(g.bdf or "").lower() for g in facts.gpus}
        for p in facts.pci_gpus:
            if p.bdf.lower() not in seen:
                node.excluded.append(
                    _missing(
                        p.bdf,
                        {"bdf": p.bdf, "on_pci_bus": True, "in_amdsmi": False},
                        f"GPU {p.bdf} is on the PCI bus but amdsmi does not see it",
                    )
                )
        expected = policy.expected_gpus_per_node
        found = len(seen | {p.bdf.lower() for p in facts.pci_gpus})
        if expected is not None and found < expected:
            for _ in range(expected - found):
                node.excluded.append(
                    _missing(
                        None,
                        {"expected": expected, "found": found},
                        f"{n_of(found, 'GPU')} found, {expected} expected",
                    )
                )

    if any(g.partitioned for g in facts.gpus):
        node.physical_gpus = physical_gpus(facts, node)
    node.usable.sort(key=lambda e: e.index if e.index is not None else -1)

    if not node.usable:
        node.status = "failed"
        node.reason = node.reason or "no usable GPU"
    elif node.excluded:
        node.status = "degraded"
        node.reason = node.reason or f"{len(node.excluded)} GPU(s) excluded"
    return node


def physical_gpus(facts: NodeFacts, node: NodeEntry) -> list[PhysicalGpu]:
    """The node's physical GPUs with their logical devices, in PCI order."""
    excluded = {e.index for e in node.excluded if e.index is not None}
    out: dict[str, PhysicalGpu] = {}
    for g in sorted(facts.gpus, key=lambda g: (g.physical_key or "", g.partition_id or 0)):
        key = g.physical_key or f"#{g.index}"
        pg = out.get(key)
        if pg is None:
            pg = out[key] = PhysicalGpu(
                bdf=f"{key}.0" if g.physical_key and g.bdf else g.bdf,
                serial=g.serial,
                compute_partition=g.compute_partition,
                memory_partition=g.memory_partition,
            )
        pg.partitions.append(g.runtime_index)
        if g.runtime_index in excluded:
            pg.excluded_partitions.append(g.runtime_index)
            pg.usable = False
    return list(out.values())


def physical_counts(n: NodeEntry) -> tuple[int, int]:
    """(usable, installed) physical GPUs of a node: a partitioned node counts its physical
    GPUs, any other node its GPUs as listed."""
    if n.physical_gpus is None:
        return len(n.usable), max(n.installed or 0, len(n.usable) + len(n.excluded))
    usable = sum(1 for p in n.physical_gpus if p.usable)
    missing = sum(1 for e in n.excluded if e.index is None)  # not seen by amdsmi at all
    return usable, max(n.installed or 0, len(n.physical_gpus) + missing)


def _baseline(g: GpuFacts, p: Any) -> CheckResult:
    """Firmware, VBIOS and driver against the policy's known-good versions (a bad rollout to
    every node agrees with the fleet majority; only a baseline catches it)."""
    have = {**(g.firmware or {}), "vbios": g.vbios_version or "", "driver": g.driver_version or ""}
    if g.firmware is None and any(k not in ("vbios", "driver") for k in p.allowed):
        return CheckResult(
            check="gpu.firmware.baseline",
            status="unknown",
            required=p.required,
            evidence={"errors": {k: v for k, v in g.errors.items() if k == "firmware"}},
            message="firmware versions could not be read",
        )
    bad = {k: have.get(k, "") for k, ok in p.allowed.items() if have.get(k, "") not in ok}
    ev = {"outside_baseline": bad, "allowed": p.allowed}
    if not bad:
        return CheckResult(
            check="gpu.firmware.baseline", status="pass", required=p.required, evidence=ev
        )
    return CheckResult(
        check="gpu.firmware.baseline",
        status=p.baseline_severity,
        required=p.required,
        evidence=ev,
        message="outside the firmware baseline: "
        + ", ".join(
            f"{k} {v or '(none)'} (allowed {', '.join(p.allowed[k])})" for k, v in bad.items()
        ),
    )


def _view(g: GpuFacts, res: list[CheckResult], excluded: bool) -> GpuView:
    hot = g.temperatures.get("hotspot")
    vr = g.temperatures.get("vram")
    fw = g.firmware or {}
    probs = [f"{r.check}: {r.message}" for r in res if r.status != "pass"]
    return GpuView(
        index=g.runtime_index,
        bdf=g.bdf,
        verdict="excluded" if excluded else ("warned" if probs else "usable"),
        hotspot_c=hot.current if hot else None,
        vram_c=vr.current if vr else None,
        ecc=f"{g.ecc.correctable}/{g.ecc.uncorrectable}/{g.ecc.deferred}" if g.ecc else "?",
        xgmi="".join(g.xgmi_links) if g.xgmi_links is not None else "?",
        pcie=f"x{g.pcie.width} {g.pcie.speed}" if g.pcie else "?",
        firmware=" ".join(f"{k}={fw[k]}" for k in ("PM", "PSP_SOSDRV") if k in fw) or "?",
        numa_node=g.numa_node,
        nics_same_numa=next(
            (r.evidence.get("nics_same_numa", []) for r in res if r.check == "gpu.numa"), []
        ),
        render_node=g.render_node,
        problems=probs,
    )


def _missing(bdf: str | None, evidence: dict[str, Any], message: str) -> GpuEntry:
    """An excluded GPU that amdsmi does not show: known by its PCI address at most."""
    res = CheckResult(check="gpu.missing", status="fail", evidence=evidence, message=message)
    return GpuEntry(index=None, bdf=bdf, uuid=None, serial=None, checks=[res])


def _fw_diff(sig: Any, majority: Any) -> dict[str, list[str]]:
    a, b = dict(sig or ()), dict(majority or ())
    return {
        k: [a.get(k, ""), b.get(k, "")] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
    }


def evaluate_fleet(
    nodes: list[NodeEntry], facts: list[NodeFacts], policy: Policy, options: GateOptions
) -> GpuInventory:
    fleet = _fleet_consistency(nodes, facts, policy)
    if options.min_gpus_per_node is not None:
        k = options.min_gpus_per_node
        for n in nodes:
            if n.usable and len(n.usable) < k:
                res = CheckResult(
                    check="gate.min_gpus_per_node",
                    status="fail",
                    evidence={"usable": len(n.usable), "min_gpus_per_node": k},
                    message=f"node has {len(n.usable)} usable GPUs, fewer than {k}",
                )
                n.excluded += [
                    GpuEntry(**{**e.model_dump(exclude={"checks"}), "checks": [res]})
                    for e in n.usable
                ]
                n.usable = []
                n.status, n.reason = "excluded", res.message
    usable = sum(len(n.usable) for n in nodes)
    excluded_nodes = [n for n in nodes if not n.usable]
    reasons = []
    dups: list[identity.Duplicate] = []
    if policy.checks.identity.enabled:
        dups = identity.duplicates(facts, policy.checks.identity)
        by_name = {n.name: n for n in nodes}
        lines = identity.summarise(dups)
        if policy.checks.identity.severity == "fail":
            reasons += lines
        else:
            fleet.warnings += lines
        for d in dups:
            for name in d.nodes:
                if name in by_name and d.message not in by_name[name].warnings:
                    if len(by_name[name].warnings) < 20:  # the inventory lists them all
                        by_name[name].warnings.append(d.message)
    if options.max_excluded_nodes is not None and len(excluded_nodes) > options.max_excluded_nodes:
        reasons.append(
            f"{n_of(len(excluded_nodes), 'node')} failed or excluded at once, more than "
            f"--max-excluded-nodes {options.max_excluded_nodes}: suspect the infrastructure "
            f"(SSH, driver rollout) rather than the GPUs "
            f"({', '.join(n.name for n in excluded_nodes[:10])})"
        )
    if options.min_gpus is not None and usable < options.min_gpus:
        reasons.append(f"{n_of(usable, 'usable GPU')}, fewer than --min-gpus {options.min_gpus}")
    if usable == 0:
        root = sorted({w for n in nodes for w in n.needs_root})
        hint = (
            f": {sum(1 for n in nodes if n.needs_root)} node(s) could not read root-only data "
            f"(needs root: {', '.join(root)}); run the collector as root (tuner_become)"
            if root
            else ""
        )
        reasons.append("no usable GPU in the fleet" + hint)
    installed = sum(max(n.installed or 0, len(n.usable) + len(n.excluded)) for n in nodes)
    unknown_gpus = sum((n.installed or 0) for n in nodes if n.status == "failed" and not n.excluded)
    failed = [n for n in nodes if n.status == "failed" and not n.excluded]
    counts = [physical_counts(n) for n in nodes]
    phys_usable, phys_installed = sum(c[0] for c in counts), sum(c[1] for c in counts)
    summary = f"{phys_usable} of {phys_installed} GPUs usable"
    if any(n.physical_gpus for n in nodes):
        modes = sorted({p.compute_partition or "?" for n in nodes for p in n.physical_gpus or []})
        summary += f" ({usable} logical devices usable, {'/'.join(modes)})"
    if failed:
        parts = [
            f"{n.name} failed ({n.reason.split(':')[0]}), its "
            f"{n.installed if n.installed is not None else '?'} GPUs unknown"
            for n in failed[:5]
        ]
        more = f" and {len(failed) - 5} more nodes" if len(failed) > 5 else ""
        summary += "; " + "; ".join(parts) + more
    return GpuInventory(
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        gate=Gate(passed=not reasons, reasons=reasons, options=options, policy=policy.file),
        usable_gpus=usable,
        installed_gpus=installed,
        excluded_gpus=sum(len(n.excluded) for n in nodes),
        unknown_gpus=unknown_gpus,
        usable_physical_gpus=phys_usable,
        installed_physical_gpus=phys_installed,
        duplicates=dups,
        summary=summary,
        nodes_total=len(nodes),
        nodes_usable=len(nodes) - len(excluded_nodes),
        nodes_excluded=len(excluded_nodes),
        nodes=nodes,
        fleet=fleet,
    )


def _fleet_consistency(nodes: list[NodeEntry], facts: list[NodeFacts], policy: Policy) -> FleetInfo:
    """Firmware, VBIOS and driver that differ from the fleet majority: a warning."""
    info = FleetInfo()
    gpus = [g for f in facts for g in f.gpus]
    if not gpus or not policy.checks.firmware.enabled:
        return info
    fw = Counter(tuple(sorted(g.firmware.items())) for g in gpus if g.firmware is not None)
    drv = Counter(g.driver_version for g in gpus if g.driver_version)
    vb = Counter(g.vbios_version for g in gpus if g.vbios_version)
    if fw:
        info.firmware_majority = dict(fw.most_common(1)[0][0])
    info.driver_majority = drv.most_common(1)[0][0] if drv else None
    info.vbios_majority = vb.most_common(1)[0][0] if vb else None
    by_name = {n.name: n for n in nodes}
    # amdsmi library and package versions: a fleet half-way through a ROCm upgrade. ROCm's
    # library (e.g. 26.x) and the PyPI package (7.0.x) number differently, so only
    # differences from the fleet majority are reported, never one against the other.
    for attr, what in (("amdsmi_library", "libamd_smi.so"), ("amdsmi_package", "amdsmi package")):
        seen = Counter(getattr(f, attr) for f in facts if getattr(f, attr))
        if len(seen) > 1:
            top = seen.most_common(1)[0][0]
            for f in facts:
                v = getattr(f, attr)
                if v and v != top:
                    msg = f"{f.name}: {what} {v}, the fleet runs {top} (ROCm upgrade half-way?)"
                    info.warnings.append(msg)
                    if f.name in by_name:
                        by_name[f.name].warnings.append(msg)
    for f in facts:
        odd = []
        for g in f.gpus:
            if g.firmware is not None and dict(g.firmware) != info.firmware_majority:
                odd.append(f"GPU {g.runtime_index} firmware")
            if g.driver_version and g.driver_version != info.driver_majority:
                odd.append(f"GPU {g.runtime_index} driver {g.driver_version}")
            if g.vbios_version and g.vbios_version != info.vbios_majority:
                odd.append(f"GPU {g.runtime_index} VBIOS {g.vbios_version}")
        if odd:
            msg = f"{f.name}: differs from the fleet majority: {', '.join(odd[:8])}"
            info.warnings.append(msg)
            if f.name in by_name:
                by_name[f.name].warnings.append(msg)
    return info


def attach_addresses(inv: GpuInventory, hosts: list[Any]) -> GpuInventory:
    """Copy each node's address (ansible_host, ansible_port, ansible_user) from the inventory
    hosts (agent.inventory.InventoryHost) into the report: consumers need to reach the node."""
    by_name = {h.name: h for h in hosts}
    for n in inv.nodes:
        h = by_name.get(n.name)
        if h is None:
            continue
        n.address = h.address
        port = h.vars.get("ansible_port")
        n.port = int(port) if isinstance(port, int | str) and str(port).isdigit() else None
        user = h.vars.get("ansible_user")
        n.user = user if isinstance(user, str) else None
    return inv


def worst(results: list[CheckResult]) -> str:
    return max((r.status for r in results), key=lambda s: RANK[s], default="pass")
