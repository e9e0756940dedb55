"""Identity that must be unique across the fleet: GPU serials, UUIDs, XGMI hive ids.

A GPU serial or UUID seen in two places means an inventory lists one machine twice (two
names, one node) or a board reports another's identity; either way launch masks by UUID
(``ROCR_VISIBLE_DEVICES=GPU-<uuid>``) and any per-GPU bookkeeping break. "Places" are physical
GPUs (node, PCI device): the logical devices of one partitioned GPU share its board serial,
which is not a duplicate. An XGMI hive spans the GPUs of one node (MI355X: the 8 OAMs of one
UBB), so the same hive id on two nodes is the same kind of duplicate. Pure: facts in, one
finding per duplicated value, naming every place it was seen.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent.gpu.model import NodeFacts
from agent.gpu.policy import IdentityCheck

LABELS = {
    "serial": "GPU serial",
    "uuid": "GPU UUID",
    "hip_uuid": "HIP UUID",
    "hive_id": "XGMI hive id",
}
_BLANK = {"", "n/a", "0", "none", "unknown"}


class Duplicate(BaseModel):
    key: str  # serial | uuid | hip_uuid | hive_id
    value: str
    places: list[str]  # "node01 GPU 3 (0000:75:00.0)", or "node01" for a hive
    nodes: list[str]
    message: str


def _place(node: str, index: int, bdf: str | None) -> str:
    return f"{node} GPU {index}" + (f" ({bdf})" if bdf else "")


def duplicates(facts: list[NodeFacts], p: IdentityCheck) -> list[Duplicate]:
    seen: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    shown: dict[tuple[str, str], str] = {}  # the value as the first place reported it
    for f in facts:
        for g in f.gpus:
            phys = g.physical_key or f"#{g.index}"
            for key in p.keys:
                if key == "hive_id":
                    continue
                v = getattr(g, key, None)
                if v is None or str(v).strip().lower() in _BLANK:
                    continue
                shown.setdefault((key, str(v).strip().lower()), str(v).strip())
                places = seen.setdefault((key, str(v).strip().lower()), {})
                places.setdefault((f.name, phys), _place(f.name, g.runtime_index, g.bdf))
        if "hive_id" in p.keys:
            for g in f.gpus:
                if g.xgmi_hive_id:
                    places = seen.setdefault(("hive_id", f"{g.xgmi_hive_id:#x}"), {})
                    places.setdefault((f.name, ""), f.name)
    out = []
    for (kind, low), places in seen.items():
        if len(places) < 2:
            continue
        value = shown.get((kind, low), low)
        nodes = sorted({n for n, _ in places})
        where = list(places.values())
        listed = ", ".join(where[:6]) + (f" and {len(where) - 6} more" if len(where) > 6 else "")
        if kind == "hive_id":
            why = "one hive spans the GPUs of one node"
        elif len(nodes) > 1:
            why = "an inventory lists one machine twice, or a board reports another's identity"
        else:
            why = "two GPUs of one node report the same identity"
        out.append(
            Duplicate(
                key=kind,
                value=value,
                places=where,
                nodes=nodes,
                message=f"{LABELS[kind]} {value} seen in {len(where)} places: {listed} ({why})",
            )
        )
    return sorted(out, key=lambda d: (d.key, d.value))


def summarise(dups: list[Duplicate]) -> list[str]:
    """One line per set of nodes that share identities (a node listed twice duplicates every
    serial, UUID and its hive id: one reason, not 137), with one example named in full."""
    groups: dict[tuple[str, ...], list[Duplicate]] = {}
    for d in dups:
        groups.setdefault(tuple(d.nodes), []).append(d)
    out = []
    for nodes, ds in groups.items():
        if len(ds) == 1:
            out.append(ds[0].message)
            continue
        kinds: dict[str, int] = {}
        for d in ds:
            kinds[d.key] = kinds.get(d.key, 0) + 1
        what = ", ".join(
            f"{kinds[k]} {LABELS[k]}{'s' if kinds[k] > 1 else ''}" for k in LABELS if k in kinds
        )
        who = " and ".join(nodes) if len(nodes) > 1 else nodes[0]
        order = list(LABELS)
        first = min(ds, key=lambda d: order.index(d.key))
        out.append(f"{who} report the same identities ({what}); e.g. {first.message}")
    return out
