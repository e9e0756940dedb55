"""MLPerf Inference system description JSON (the `systems/<name>.json` of a submission),
filled from the facts. Field names and order are MLCommons' own: `SYSTEM_DESC_REQUIRED_FIELDS`
of the submission checker (mlcommons/inference,
tools/submission/submission_checker/constants.py; the field is `host_network_card_count`).
What tuner never collects (submitter, division, status, storage, framework, ...) is left ""
for the submitter (the checker rejects it until filled), or set with `--field KEY=VALUE`; a
host fact tuner collects but a node did not give is written as UNKNOWN.

Totals: MLCommons computes a system's accelerators as `number_of_nodes *
accelerators_per_node` (tools/submission/submission_checker/results.py,
`total_accelerators`), one integer per node. With uneven usable counts (87 GPUs: 10 nodes x 8,
one x 7) tuner describes the largest uniform system the fleet can run: the per-node count k
that maximises k x (nodes with at least k usable GPUs), here 10 x 8 = 80; `hw_notes` names
the nodes left out and why, so the totals agree with what the checker computes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent.errors import BadInput
from agent.gpu.gate import GpuInventory
from agent.view import n_of

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
    "host_network_card_count",
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


UNKNOWN = "unknown (not collected)"


def system_shape(counts: list[int]) -> tuple[int, int]:
    """(accelerators_per_node k, number_of_nodes n) maximising k x n over the nodes with at
    least k usable GPUs (ties: the larger k, fewer nodes)."""
    best = (0, 0)
    for k in sorted({c for c in counts if c > 0}, reverse=True):
        n = sum(1 for c in counts if c >= k)
        if k * n > best[0] * best[1]:
            best = (k, n)
    return best


def _fact(name: str, values: list[Any], notes: list[str]) -> Any:
    """The nodes' common value of a host fact; UNKNOWN when no node gave it; a note when
    they differ."""
    known = [v for v in values if v not in (None, "")]
    if not known:
        return UNKNOWN
    counts = Counter(known).most_common()
    if len(counts) > 1 or len(known) < len(values):
        shown = ", ".join(f"{v} ({k})" for v, k in counts[:4])
        missing = len(values) - len(known)
        notes.append(
            f"{name} differs across nodes: {shown}"
            + (f", not collected on {missing}" if missing else "")
        )
    return counts[0][0]


def system_description(inv: GpuInventory, fields: dict[str, str] | None = None) -> dict[str, Any]:
    per_node, n_nodes = system_shape([len(n.usable) for n in inv.nodes])
    nodes = [n for n in inv.nodes if per_node and len(n.usable) >= per_node]
    gpus = [g for n in nodes for g in n.usable[:per_node]]
    hosts = [n.host for n in nodes]
    notes: list[str] = []
    out = [n for n in inv.nodes if n not in nodes]
    fleet_gpus = sum(len(n.usable) for n in inv.nodes)
    if out or any(len(n.usable) > per_node for n in nodes):
        why = [
            f"{n.name} ({len(n.usable)} usable" + (f": {n.reason})" if n.reason else ")")
            for n in out
        ]
        extra = [
            f"{n.name} (uses {per_node} of {len(n.usable)})"
            for n in nodes
            if len(n.usable) > per_node
        ]
        notes.append(
            f"{per_node * n_nodes} accelerators: {n_nodes} nodes x {per_node} of the "
            f"{fleet_gpus} usable on {n_of(len(inv.nodes), 'node')} (MLCommons counts "
            "number_of_nodes x accelerators_per_node)"
            + (f"; left out: {'; '.join(why[:20])}" if why else "")
            + (f"; {', '.join(extra[:20])}" if extra else "")
        )
    cpu = _fact("host_processor_model_name", [h.cpu_model if h else None for h in hosts], notes)
    sockets = _fact("host_processors_per_node", [h.sockets if h else None for h in hosts], notes)
    cores = _fact(
        "host_processor_core_count", [h.cores_per_socket if h else None for h in hosts], notes
    )
    mem = _fact(
        "host_memory_capacity",
        [f"{round(h.memory_bytes / 2**30)} GiB" if h and h.memory_bytes else None for h in hosts],
        notes,
    )
    os_name = _fact(
        "operating_system",
        [
            " ".join(x for x in (h.os, h.kernel and f"(kernel {h.kernel})") if x) if h else None
            for h in hosts
        ],
        notes,
    )
    model = _fact("accelerator_model_name", [g.market_name for g in gpus], notes)
    driver = inv.fleet.driver_majority or _majority([g.driver_version for g in gpus])
    vbios = inv.fleet.vbios_majority or _majority([g.vbios_version for g in gpus])
    sw = [
        s
        for s in (f"amdgpu driver {driver}" if driver else "", f"VBIOS {vbios}" if vbios else "")
        if s
    ]
    doc: dict[str, Any] = {k: "" for k in FIELDS}
    doc.update(
        {
            "system_type": "datacenter",
            "number_of_nodes": n_nodes,
            "host_processor_model_name": cpu,
            "host_processors_per_node": sockets,
            "host_processor_core_count": cores,
            "host_memory_capacity": mem,
            "accelerators_per_node": per_node,
            "accelerator_model_name": model,
            "operating_system": os_name,
            "other_software_stack": ", ".join(sw),
            "hw_notes": ". ".join(notes),
        }
    )
    doc.update(fields or {})
    return doc
