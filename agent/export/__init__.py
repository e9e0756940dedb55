"""`tuner export`: the usable-GPU inventory in every form a cluster consumes it (docs/export.md).

One module per format, each a pure function from the report (`GpuInventory`) to text (or,
for Prometheus, a registry). `load_report` (agent/loaders.py) validates the report file before
anything is written; `write_text` writes atomically (agent.paths.write_file: exclusive temp
file, rename).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agent.errors import BadInput
from agent.gpu.gate import GpuInventory, NodeEntry
from agent.paths import write_file

FORMATS = ("ansible", "hostfile", "slurm", "prometheus", "csv", "mlperf-system", "json")


def load_report(path: str) -> GpuInventory:
    """A `tuner check --output` / `tuner ready --output` file, validated (exit 2 when not):
    agent.loaders.load_report, the one loader of reports."""
    from agent.loaders import load_report as load

    return load(path)


def usable_nodes(inv: GpuInventory) -> list[NodeEntry]:
    return [n for n in inv.nodes if n.usable]


def pick_head(inv: GpuInventory, head: str | None = None) -> NodeEntry | None:
    """The head node: `head` when given (must be usable), else the usable node with the most
    usable GPUs, the first in report (inventory) order among equals. None: nothing usable."""
    nodes = usable_nodes(inv)
    if head is not None:
        found = next((n for n in nodes if n.name == head), None)
        if found is None:
            known = next((n for n in inv.nodes if n.name == head), None)
            why = f"it is {known.status}: {known.reason}" if known else "no such node in the report"
            raise BadInput(f"{head!r} cannot be the head: {why}", field="--head")
        return found
    if not nodes:
        return None
    most = max(len(n.usable) for n in nodes)
    return next(n for n in nodes if len(n.usable) == most)


def gpu_mask(node: NodeEntry) -> str:
    """ROCR_VISIBLE_DEVICES for the node's usable GPUs: by UUID (GPU-<hex>) when every usable
    GPU has one, else by runtime index (docs/launch.md)."""
    if node.usable and all(g.hip_uuid for g in node.usable):
        return ",".join(str(g.hip_uuid) for g in node.usable)
    return ",".join(str(g.index) for g in node.usable if g.index is not None)


def write_text(path: str, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of it."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    p = Path(path)
    if p.is_dir():
        raise BadInput("is a folder; give a file name", file=path, field="--output")
    try:
        write_file(p, text)
    except OSError as e:
        raise BadInput(f"cannot write here: {e.strerror or e}", file=path, field="--output") from e


def render(inv: GpuInventory, fmt: str, **opts: Any) -> str:
    """The export as text (every format; Prometheus in the text exposition format)."""
    if fmt == "ansible":
        from agent.export import ansible

        return ansible.render(inv, as_json=bool(opts.get("as_json")))
    if fmt == "hostfile":
        from agent.export import hostfile

        return hostfile.render(inv)
    if fmt == "slurm":
        from agent.export import slurm

        return slurm.render(inv)
    if fmt == "prometheus":
        from agent.export import prometheus

        return prometheus.render(inv)
    if fmt == "csv":
        from agent.export import csvfile

        return csvfile.render(inv)
    if fmt == "mlperf-system":
        from agent.export import mlperf

        return json.dumps(mlperf.system_description(inv, **opts.get("mlperf", {})), indent=2) + "\n"
    if fmt == "json":
        # pydantic's serializer (fast at 10,000 nodes); the one top-level "schema_" key is
        # renamed as model_dump_inventory() does.
        return inv.model_dump_json(indent=2).replace('"schema_":', '"schema":', 1) + "\n"
    raise BadInput(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})", field="--format")
