"""The gate's edges: gather facts (this node in-process, the fleet through Ansible), then hand
them to the pure evaluation in agent/gpu/gate.py."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agent.errors import BadInput
from agent.gpu.gate import (
    GateOptions,
    GpuInventory,
    NodeEntry,
    evaluate_fleet,
    evaluate_node,
    failed_node,
)
from agent.gpu.model import NodeFacts
from agent.gpu.policy import Policy
from agent.view import fold, n_of


def local_facts(root: str = "/", rocm_path: str | None = None) -> NodeFacts:
    from agent.gpu.collect import RocmNotFound, gather

    try:
        raw = gather(root, rocm_path)
    except RocmNotFound as e:
        raise BadInput(str(e), field="ROCM_PATH") from e
    return NodeFacts.model_validate(raw)


def load_facts_files(paths: list[str]) -> list[NodeFacts]:
    """Facts snapshots (`tuner facts --json`), validated by agent.loaders.load_facts."""
    from agent.loaders import load_facts

    out: list[NodeFacts] = []
    for p in paths:
        out += load_facts(p)
    return out


def fleet_facts(
    inv: Any, deadline: float, forks: int | None, progress: Any
) -> tuple[list[NodeFacts], dict[str, str], str]:
    """Facts of every selected node, and why each node without facts has none."""
    from agent.runner import run_playbook

    outcomes, artifacts = run_playbook(
        "gpu.yml",
        inv,
        {"tuner_deadline": int(deadline)},
        forks=forks,
        progress=progress,
        module="tuner_gpu",
    )
    from agent.inventory import node_python

    pythons = {h.name: node_python(h) for h in inv.hosts}
    facts: list[NodeFacts] = []
    failures: dict[str, str] = {}
    for name, o in outcomes.items():
        if o.status == "ok":
            try:
                f = NodeFacts.model_validate(o.facts)
                f.name = name
                facts.append(f)
                continue
            except ValidationError as e:
                failures[name] = f"unreadable facts from the node: {e.errors()[0]['msg']}"
                continue
        msg = o.message or o.status
        if _no_runtime(msg, pythons.get(name, "")):
            failures[name] = (
                f"not provisioned: run tuner provision (no {pythons[name]} on the node: {msg})"
            )
        elif "expected time frame" in msg or "timed out" in msg.lower():
            failures[name] = f"past its deadline of {int(deadline)} s: {msg}"
        elif o.status == "unreachable":
            failures[name] = f"unreachable: {msg}"
        else:
            failures[name] = f"{o.status}: {msg}"
    return facts, failures, artifacts


def _no_runtime(msg: str, python: str) -> bool:
    """The node has no runtime: the shell could not start its Python (sh: "not found",
    env/exec: "No such file or directory"), or the runtime lacks tuner's packages."""
    if python and python in msg and ("not found" in msg or "No such file" in msg):
        return True
    return "No module named" in msg and python in msg


def expected_gpus(inv: Any) -> dict[str, int]:
    """Host variable ``tuner_expected_gpus`` (GPUs a node should have) of every host that
    sets it; bad values are bad input, raised before any host is touched."""
    out: dict[str, int] = {}
    for h in inv.hosts:
        v = h.vars.get("tuner_expected_gpus")
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
            raise BadInput(
                f"host {h.name!r}: tuner_expected_gpus must be an integer 1-64, got {v!r}",
                file=inv.path,
                field="tuner_expected_gpus",
            )
        out[h.name] = v
    return out


def gate(
    facts: list[NodeFacts],
    failures: dict[str, str],
    order: list[str],
    policy: Policy,
    options: GateOptions,
    expected: dict[str, int] | None = None,
) -> GpuInventory:
    """Evaluate every node; a failed node counts its expected GPUs (host variable
    ``tuner_expected_gpus``, else the policy's ``expected_gpus_per_node``) as unknown."""
    expected = expected or {}
    per_node = policy.expected_gpus_per_node
    entries: dict[str, NodeEntry] = {f.name: evaluate_node(f, policy) for f in facts}
    entries.update(
        {n: failed_node(n, why, expected.get(n, per_node)) for n, why in failures.items()}
    )
    names = order + [n for n in entries if n not in order]
    return evaluate_fleet([entries[n] for n in names if n in entries], facts, policy, options)


def write_atomic(path: str, data: dict[str, Any]) -> None:
    from agent.paths import write_file

    write_file(path, json.dumps(data, indent=2) + "\n")


def print_gpus(inv: GpuInventory, console: Console) -> None:
    """Every GPU: one table per group of nodes whose GPUs all read the same (a healthy
    64-node fleet is a few lines), then one row per GPU of every other node."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    detailed = []
    for n in inv.nodes:
        if not n.gpus:
            continue
        if all(g.verdict == "usable" for g in n.gpus):
            key = tuple((g.xgmi, g.pcie, g.firmware, g.ecc) for g in n.gpus)
            groups.setdefault(key, []).append(n.name)
        else:
            detailed.append(n)
    if groups:
        t = Table(title="healthy nodes, grouped by identical GPU readings")
        for c in ("nodes", "GPUs", "ECC ce/ue/def", "XGMI", "PCIe", "firmware", "hotspot C"):
            t.add_column(c)
        by_name = {n.name: n for n in inv.nodes}
        for key, names in groups.items():
            first = by_name[names[0]]
            temps = [g.hotspot_c for nm in names for g in by_name[nm].gpus if g.hotspot_c]
            label = fold(names) + (f" ({len(names)})" if len(names) > 1 else "")
            t.add_row(
                label,
                f"{len(first.gpus)} each",
                key[0][3],
                key[0][0],
                key[0][1],
                key[0][2],
                f"{min(temps)}-{max(temps)}" if temps else "?",
            )
        console.print(t)
    if detailed:
        t = Table(title="nodes with a warned or excluded GPU: every GPU")
        for c in (
            "node",
            "GPU",
            "verdict",
            "hot/vram C",
            "ECC ce/ue/def",
            "XGMI",
            "PCIe",
            "firmware",
            "NUMA",
            "problems",
        ):
            t.add_column(c)
        for n in detailed:
            for i, g in enumerate(n.gpus):
                style = {"usable": "green", "warned": "yellow"}.get(g.verdict, "bold red")
                t.add_row(
                    n.name if i == 0 else "",
                    f"{g.index if g.index is not None else '-'} {g.bdf or ''}",
                    f"[{style}]{g.verdict}[/]",
                    f"{g.hotspot_c}/{g.vram_c}",
                    g.ecc,
                    g.xgmi,
                    g.pcie,
                    g.firmware,
                    str(g.numa_node),
                    "; ".join(g.problems)[:160],
                )
        console.print(t)


def print_inventory(inv: GpuInventory, console: Console, gpus: bool = False) -> None:
    if gpus:
        print_gpus(inv, console)
    from agent.view import HostView, Row, fleet_table

    views = []
    for n in inv.nodes:
        usable = f"{len(n.usable)}/{n.installed if n.installed is not None else '?'} usable"
        if n.physical_gpus is not None:
            from agent.gpu.gate import physical_counts

            pu, pi = physical_counts(n)
            usable = f"{pu}/{pi} usable ({len(n.usable)} logical devices)"
        rows, notes = [], []
        for e in n.excluded:
            gpu = f"GPU {e.index if e.index is not None else '-'} {e.bdf or ''}".strip()
            why = "; ".join(f"{c.check}: {c.message}" for c in e.checks)
            rows.append(Row("excluded", (gpu, why)))
        if n.reason and n.status != "ok":
            notes.append(n.reason)
        views.append(HostView(host=n.name, status=n.status, summary=usable, rows=rows, notes=notes))
    fleet_table("tuner check: usable GPUs per node", ["GPUs", "why"], views, console)
    for w in inv.fleet.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for n in inv.nodes:
        for w in n.warnings:
            if w.startswith("needs root"):
                console.print(f"[yellow]warning:[/] {n.name}: {w}")
    verdict = "[green]PASSED[/]" if inv.gate.passed else "[bold red]FAILED[/]"
    console.print(
        f"{inv.summary or f'{inv.usable_gpus} of {inv.installed_gpus} GPUs usable'}; "
        f"{inv.nodes_usable} of {n_of(inv.nodes_total, 'node')} usable. Gate {verdict}"
    )
    for r in inv.gate.reasons:
        console.print(f"  - {r}")


def print_facts(nodes: list[NodeFacts], failures: dict[str, str], console: Console) -> None:
    """`tuner facts` for people: one row per node (the JSON has every field)."""
    t = Table(title="tuner facts")
    for c in ("node", "GPUs", "model", "partition", "driver", "hottest", "ECC", "host", "notes"):
        t.add_column(c)
    for n in nodes:
        models = sorted({g.market_name or "?" for g in n.gpus})
        parts = sorted({f"{g.compute_partition}/{g.memory_partition}" for g in n.gpus})
        drivers = sorted({g.driver_version or "?" for g in n.gpus})
        temps = [tp.current for g in n.gpus for tp in g.temperatures.values() if tp.current]
        corr = sum(g.ecc.correctable for g in n.gpus if g.ecc)
        uncorr = sum(g.ecc.uncorrectable for g in n.gpus if g.ecc)
        h = n.host
        mem = f"{h.memory_bytes / 2**30:.0f} GiB" if h.memory_bytes else "?"
        errors = len(n.errors) + sum(len(g.errors) for g in n.gpus)
        notes = "; ".join(n.errors) if n.errors else (f"{errors} query errors" if errors else "")
        phys = {g.physical_key for g in n.gpus}
        count = (
            f"{len(phys)} x {'/'.join(sorted({g.compute_partition or '?' for g in n.gpus}))} "
            f"({len(n.gpus)} logical, PCI {len(n.pci_gpus)})"
            if any(g.partitioned for g in n.gpus)
            else f"{len(n.gpus)} (PCI {len(n.pci_gpus)})"
        )
        t.add_row(
            n.name,
            count,
            ", ".join(models),
            ", ".join(parts),
            ", ".join(drivers),
            f"{max(temps)} C" if temps else "?",
            f"{corr} corr, {uncorr} uncorr",
            f"{h.logical_cpus or '?'} CPUs, {h.numa_nodes or '?'} NUMA, {mem}",
            notes,
        )
    for name, why in failures.items():
        t.add_row(name, "", "", "", "", "", "", "", f"[bold red]failed:[/] {why}")
    console.print(t)
    gpus = sum(len(n.gpus) for n in nodes)
    console.print(
        f"{n_of(len(nodes), 'node')} read, {len(failures)} failed; {n_of(gpus, 'GPU')} "
        "(--json: all)."
    )


def record_gate(
    inv: Any, result: GpuInventory, facts: list[NodeFacts], forks: int | None
) -> list[str]:
    """Send each node that runs tuner's node agent its verdict (playbooks/gate-record.yml:
    /var/lib/tuner/gate.json, which the agent's textfile shows). Nodes without the agent
    get nothing (and the gate pays nothing). -> warnings for nodes the record missed; the
    gate's verdict does not depend on it."""
    import calendar
    import time

    with_agent = {f.name: f for f in facts if f.agent_installed}
    if not with_agent:
        return []
    from agent.runner import run_playbook

    now = time.time()
    records: dict[str, dict[str, Any]] = {}
    for n in result.nodes:
        f = with_agent.get(n.name)
        if f is None:
            continue
        try:
            t = calendar.timegm(time.strptime(f.collected_at or "", "%Y-%m-%dT%H:%M:%SZ"))
            facts_time = t - (f.seconds or 0.0)
        except ValueError:
            facts_time = 0.0  # unknown: the stale marker stays
        records[n.name] = {
            "time": now,
            "passed": n.status in ("ok", "degraded"),
            "status": n.status,
            "reason": n.reason,
            "usable_gpus": len(n.usable),
            "fleet_gate_passed": result.gate.passed,
            "facts_time": facts_time,
        }
    sub = inv.model_copy(update={"hosts": [h for h in inv.hosts if h.name in records]})
    outcomes, _ = run_playbook(
        "gate-record.yml",
        sub,
        {"tuner_gate_records": records},
        forks=forks,
        module="tuner_gate_record",
    )
    return [
        f"{name}: the gate's verdict was not recorded on the node: {o.message or o.status}"
        for name, o in outcomes.items()
        if o.status != "ok"
    ]
