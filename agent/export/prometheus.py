"""node_exporter textfile collector output, through prometheus_client: one registry with a
collector of gauge families, written with agent.paths.write_file (an exclusive temp file
renamed into place, as the textfile collector requires; not prometheus_client's
`write_to_textfile`, whose temp name is predictable). Metrics (docs/export.md):

    tuner_gpu_usable{node,index,bdf,serial,uuid}     1 usable, 0 excluded
    tuner_gpu_check_failed{node,index,bdf,check}     1 per failed check of an excluded GPU
    tuner_node_usable_gpus{node,status}              usable GPUs of the node
    tuner_fleet_gpus{state}                          usable / installed / excluded
    tuner_fleet_nodes{state}                         total / usable / excluded
    tuner_fleet_gate_passed                          1 passed, 0 failed
    tuner_report_timestamp_seconds                   when the gate ran

Per node (--per-node): every series carries the node label, the fleet-wide gauges too
(tuner_fleet_gate_passed{node}, tuner_report_timestamp_seconds{node}), and the fleet totals
are left out, so node_exporter reads all the files of one folder together without a series
twice. `tuner_fleet_gate_passed` is not the node agent's `tuner_gate_passed` (the node's own
verdict, other help text): both can sit in one textfile folder.
"""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.errors import BadInput
from agent.export.encode import hostname
from agent.gpu.gate import GpuInventory, NodeEntry
from agent.paths import write_file


def _s(v: object) -> str:
    return "" if v is None else str(v)


class _InventoryCollector(Collector):
    """The report as metric families: a custom collector (one pass over the report at
    collection time) is much faster than a Gauge child per GPU at 10,000 nodes."""

    def __init__(self, inv: GpuInventory, nodes: list[NodeEntry] | None) -> None:
        self.inv, self.nodes = inv, nodes

    def collect(self) -> Iterator[Metric]:
        inv = self.inv
        usable = GaugeMetricFamily(
            "tuner_gpu_usable",
            "1 when tuner's gate found the GPU usable, 0 when it excluded it",
            labels=["node", "index", "bdf", "serial", "uuid"],
        )
        failed = GaugeMetricFamily(
            "tuner_gpu_check_failed",
            "1 for each check that took a GPU out",
            labels=["node", "index", "bdf", "check"],
        )
        per_node = GaugeMetricFamily(
            "tuner_node_usable_gpus", "Usable GPUs of the node", labels=["node", "status"]
        )
        for n in self.nodes if self.nodes is not None else inv.nodes:
            per_node.add_metric([n.name, n.status], len(n.usable))
            for g in n.usable:
                usable.add_metric([n.name, _s(g.index), _s(g.bdf), _s(g.serial), _s(g.uuid)], 1)
            for g in n.excluded:
                usable.add_metric([n.name, _s(g.index), _s(g.bdf), _s(g.serial), _s(g.uuid)], 0)
                for c in g.checks:
                    if c.blocks:
                        failed.add_metric([n.name, _s(g.index), _s(g.bdf), c.check], 1)
        yield from (usable, failed, per_node)
        if self.nodes is None:
            gpus = GaugeMetricFamily(
                "tuner_fleet_gpus", "GPUs in the fleet by state", labels=["state"]
            )
            gpus.add_metric(["usable"], inv.usable_gpus)
            gpus.add_metric(["installed"], inv.installed_gpus)
            gpus.add_metric(["excluded"], inv.excluded_gpus)
            nodes = GaugeMetricFamily(
                "tuner_fleet_nodes", "Nodes in the fleet by state", labels=["state"]
            )
            nodes.add_metric(["total"], inv.nodes_total)
            nodes.add_metric(["usable"], inv.nodes_usable)
            nodes.add_metric(["excluded"], inv.nodes_excluded)
            yield from (gpus, nodes)
        try:
            ts = calendar.timegm(time.strptime(inv.generated_at, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            ts = 0
        passed = 1 if inv.gate.passed else 0
        gate_help = "1 when the fleet gate of tuner's report passed"
        ts_help = "When the gate of tuner's report ran (Unix time)"
        if self.nodes is None:
            yield GaugeMetricFamily("tuner_fleet_gate_passed", gate_help, value=passed)
            yield GaugeMetricFamily("tuner_report_timestamp_seconds", ts_help, value=ts)
            return
        gate = GaugeMetricFamily("tuner_fleet_gate_passed", gate_help, labels=["node"])
        stamp = GaugeMetricFamily("tuner_report_timestamp_seconds", ts_help, labels=["node"])
        for n in self.nodes:
            gate.add_metric([n.name], passed)
            stamp.add_metric([n.name], ts)
        yield from (gate, stamp)


def registry(inv: GpuInventory, nodes: list[NodeEntry] | None = None) -> CollectorRegistry:
    """Metrics for the fleet (nodes None) or for some nodes only (--per-node)."""
    reg = CollectorRegistry()
    reg.register(_InventoryCollector(inv, nodes))
    return reg


def render(inv: GpuInventory) -> str:
    return generate_latest(registry(inv)).decode()


def write(inv: GpuInventory, path: str) -> None:
    write_file(path, generate_latest(registry(inv)))  # never prometheus' predictable temp name


def write_per_node(inv: GpuInventory, folder: str) -> list[str]:
    """One `tuner_<node>.prom` per node (the node's own textfile collector folder, or a folder
    synced to each node). Each file is written atomically (agent.paths.write_file: an
    exclusive temp file renamed into place, as the textfile collector needs)."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise BadInput("is not a folder", file=folder, field="--per-node")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot create: {e.strerror or e}", file=folder, field="--per-node") from e
    written = []
    for n in inv.nodes:
        p = str(d / f"tuner_{hostname(n.name, 'node name')}.prom")  # no path in a name
        write_file(p, generate_latest(registry(inv, [n])))
        written.append(p)
    try:  # the renames themselves made durable
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return written
