"""MLPerf Inference system description JSON (the `systems/<name>.json` of a submission),
filled from the facts. Field names are MLCommons' own: the required list of the submission
checker (mlcommons/inference, tools/submission/submission_checker.py,
SYSTEM_DESC_REQUIRED_FIELDS). What the facts cannot tell (submitter, division, storage,
framework, ...) is left "" for the submitter to fill, or set with `--field KEY=VALUE`.

Non-uniform GPU counts (87 GPUs over 11 nodes): `accelerators_per_node` is an integer per
node in MLCommons' schema, so tuner writes the most common usable count per node (8) and
records the exact distribution in `hw_notes` ("87 accelerators in use on 11 nodes: 10 x 8,
1 x 7 (node07: ...)"), which is where submitters describe irregular systems.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent.errors import BadInput
from agent.gpu.gate import GpuInventory

FIELDS = [
    "division",
    "submitter",
    "status",
    "system_name",
    "number_of_nodes",
    "host_processor_model_name",
    "host_processors_per_node",
    "host_processor_core_count",
    "host_memory_capacity",
    "host_storage_capacity",
    "host_storage_type",
    "accelerators_per_node",
    "accelerator_model_name",
    "accelerator_memory_capacity",
    "framework",
    "operating_system",
    "system_type",
    "other_software_stack",
    "host_processor_frequency",
    "host_processor_caches",
    "host_memory_configuration",
    "host_processor_interconnect",
    "host_networking",
    "host_networking_topology",
    "accelerator_frequency",
    "accelerator_host_interconnect",
    "accelerator_interconnect",
    "accelerator_interconnect_topology",
    "accelerator_memory_configuration",
    "accelerator_on-chip_memories",
    "cooling",
    "hw_notes",
    "sw_notes",
    "host_networking_card_count",
    "system_type_detail",
]


def _majority(values: list[Any]) -> Any:
    known = [v for v in values if v not in (None, "")]
    return Counter(known).most_common(1)[0][0] if known else None


def parse_fields(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or key not in FIELDS:
            raise BadInput(
                f"{p!r}: expected KEY=VALUE with KEY one of MLCommons' system fields "
                f"({', '.join(FIELDS)})",
                field="--field",
            )
        out[key] = value
    return out


def system_description(inv: GpuInventory, fields: dict[str, str] | None = None) -> dict[str, Any]:
    nodes = [n for n in inv.nodes if n.usable]
    hosts = [n.host for n in nodes if n.host is not None]
    gpus = [g for n in nodes for g in n.usable]
    counts = Counter(len(n.usable) for n in nodes)
    per_node = counts.most_common(1)[0][0] if counts else 0
    mem = _majority([h.memory_bytes for h in hosts])
    os_name = _majority([h.os for h in hosts])
    kernel = _majority([h.kernel for h in hosts])
    driver = inv.fleet.driver_majority or _majority([g.driver_version for g in gpus])
    vbios = inv.fleet.vbios_majority or _majority([g.vbios_version for g in gpus])
    sw = [
        s
        for s in (f"amdgpu driver {driver}" if driver else "", f"VBIOS {vbios}" if vbios else "")
        if s
    ]
    notes = ""
    if len(counts) > 1:
        shape = ", ".join(f"{k} x {g}" for g, k in sorted(counts.items(), reverse=True))
        odd = [f"{n.name}: {n.reason}" for n in nodes if len(n.usable) != per_node]
        notes = (
            f"{len(gpus)} accelerators in use on {len(nodes)} nodes: {shape} "
            f"({'; '.join(odd[:20])})"
        )
    doc: dict[str, Any] = {k: "" for k in FIELDS}
    doc.update(
        {
            "system_type": "datacenter",
            "number_of_nodes": len(nodes),
            "host_processor_model_name": _majority([h.cpu_model for h in hosts]) or "",
            "host_processors_per_node": _majority([h.sockets for h in hosts]) or "",
            "host_processor_core_count": _majority([h.cores_per_socket for h in hosts]) or "",
            "host_memory_capacity": f"{round(mem / 2**30)} GB" if mem else "",
            "accelerators_per_node": per_node,
            "accelerator_model_name": _majority([g.market_name for g in gpus]) or "",
            "operating_system": " ".join(
                x for x in (os_name, kernel and f"(kernel {kernel})") if x
            ),
            "other_software_stack": ", ".join(sw),
            "hw_notes": notes,
        }
    )
    doc.update(fields or {})
    return doc
