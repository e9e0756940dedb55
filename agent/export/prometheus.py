"""node_exporter textfile collector output, through prometheus_client: one registry, gauges,
`write_to_textfile` (which writes a temp file and renames it, as the textfile collector
requires). Metrics (docs/export.md):

    tuner_gpu_usable{node,index,bdf,serial,uuid}     1 usable, 0 excluded
    tuner_gpu_check_failed{node,index,bdf,check}     1 per failed check of an excluded GPU
    tuner_node_usable_gpus{node,status}              usable GPUs of the node
    tuner_fleet_gpus{state}                          usable / installed / excluded
    tuner_fleet_nodes{state}                         total / usable / excluded
    tuner_gate_passed                                1 passed, 0 failed
    tuner_report_timestamp_seconds                   when the gate ran
"""

from __future__ import annotations

import calendar
import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from agent.errors import BadInput
from agent.gpu.gate import GpuInventory, NodeEntry


def _s(v: object) -> str:
    return "" if v is None else str(v)


def registry(inv: GpuInventory, nodes: list[NodeEntry] | None = None) -> CollectorRegistry:
    """Metrics for the fleet (nodes None) or for some nodes only (--per-node)."""
    reg = CollectorRegistry()
    usable = Gauge(
        "tuner_gpu_usable",
        "1 when tuner's gate found the GPU usable, 0 when it excluded it",
        ["node", "index", "bdf", "serial", "uuid"],
        registry=reg,
    )
    failed = Gauge(
        "tuner_gpu_check_failed",
        "1 for each check that took a GPU out",
        ["node", "index", "bdf", "check"],
        registry=reg,
    )
    per_node = Gauge(
        "tuner_node_usable_gpus",
        "Usable GPUs of the node",
        ["node", "status"],
        registry=reg,
    )
    for n in nodes if nodes is not None else inv.nodes:
        per_node.labels(n.name, n.status).set(len(n.usable))
        for g in n.usable:
            usable.labels(n.name, _s(g.index), _s(g.bdf), _s(g.serial), _s(g.uuid)).set(1)
        for g in n.excluded:
            usable.labels(n.name, _s(g.index), _s(g.bdf), _s(g.serial), _s(g.uuid)).set(0)
            for c in g.checks:
                if c.blocks:
                    failed.labels(n.name, _s(g.index), _s(g.bdf), c.check).set(1)
    if nodes is None:
        gpus = Gauge("tuner_fleet_gpus", "GPUs in the fleet by state", ["state"], registry=reg)
        gpus.labels("usable").set(inv.usable_gpus)
        gpus.labels("installed").set(inv.installed_gpus)
        gpus.labels("excluded").set(inv.excluded_gpus)
        nodes_g = Gauge("tuner_fleet_nodes", "Nodes in the fleet by state", ["state"], registry=reg)
        nodes_g.labels("total").set(inv.nodes_total)
        nodes_g.labels("usable").set(inv.nodes_usable)
        nodes_g.labels("excluded").set(inv.nodes_excluded)
    Gauge("tuner_gate_passed", "1 when the fleet gate passed", registry=reg).set(
        1 if inv.gate.passed else 0
    )
    ts = Gauge("tuner_report_timestamp_seconds", "When the gate ran (Unix time)", registry=reg)
    try:
        ts.set(calendar.timegm(time.strptime(inv.generated_at, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        ts.set(0)
    return reg


def render(inv: GpuInventory) -> str:
    return generate_latest(registry(inv)).decode()


def write(inv: GpuInventory, path: str) -> None:
    write_to_textfile(path, registry(inv))


def write_per_node(inv: GpuInventory, folder: str) -> list[str]:
    """One `tuner_<node>.prom` per node (the node's own textfile collector folder, or a folder
    synced to each node). Each file is written atomically by write_to_textfile."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise BadInput("is not a folder", file=folder, field="--per-node")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot create: {e.strerror or e}", file=folder, field="--per-node") from e
    written = []
    for n in inv.nodes:
        p = str(d / f"tuner_{n.name}.prom")
        write_to_textfile(p, registry(inv, [n]))
        os.chmod(p, 0o644)
        written.append(p)
    return written
