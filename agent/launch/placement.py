"""Engine placement, pure: which usable GPUs of a node form each engine of TP x PP GPUs.

An engine is TP x PP GPUs on one node, all inside one fully connected XGMI group: every pair of
its GPUs is in the same hive (the gate's `xgmi_groups`) and their link is not down (`xgmi_down`).
A GPU whose links amdsmi could not read is in no group: it can only be an engine of one GPU.
Per node the most engines are placed (an exact search over the node's few GPUs; the first
solution in GPU order among equals); the usable GPUs left over are named with the reason.
"""

from __future__ import annotations

from itertools import combinations

from pydantic import BaseModel

from agent.gpu.gate import GpuEntry, NodeEntry

SEARCH_LIMIT = 16  # GPUs per group above which the first-fit placement is used


class Leftover(BaseModel):
    index: int | None
    uuid: str | None
    reason: str


class NodePlacement(BaseModel):
    node: str
    engines: list[list[GpuEntry]]
    leftover: list[Leftover]


def partners(node: NodeEntry) -> dict[int, set[int]] | None:
    """runtime index -> the usable GPUs it has an up XGMI link to; None: the report carries
    no link graph (written before tuner recorded it)."""
    if node.xgmi_groups is None:
        return None
    usable = {g.index for g in node.usable if g.index is not None}
    down = {(a, b) for a, b in (node.xgmi_down or [])} | {(b, a) for a, b in (node.xgmi_down or [])}
    out: dict[int, set[int]] = {i: set() for i in usable}
    for group in node.xgmi_groups:
        members = [i for i in group if i in usable]
        for a in members:
            out[a] |= {b for b in members if b != a and (a, b) not in down}
    return out


def _best(cands: list[int], size: int, adj: dict[int, set[int]]) -> list[list[int]]:
    """The most disjoint cliques of `size` among `cands` (sorted); the first in GPU order."""
    if len(cands) < size:
        return []
    if all(adj[a] >= set(cands) - {a} for a in cands):  # fully connected: chunks in order
        return [cands[i : i + size] for i in range(0, len(cands) - size + 1, size)]
    if len(cands) > SEARCH_LIMIT:
        out: list[list[int]] = []
        free = list(cands)
        while free:
            a = free.pop(0)
            near = [b for b in free if b in adj[a]]
            pick = next((c for c in combinations(near, size - 1) if _clique(c, adj)), None)
            if pick is not None:
                out.append([a, *pick])
                free = [b for b in free if b not in pick]
        return out
    best: list[list[int]] = []

    def search(free: list[int], chosen: list[list[int]]) -> None:
        nonlocal best
        if len(chosen) + len(free) // size <= len(best):
            return  # cannot beat what we have
        if len(free) < size:
            if len(chosen) > len(best):
                best = list(chosen)
            return
        a, rest = free[0], free[1:]
        for c in combinations([b for b in rest if b in adj[a]], size - 1):
            if _clique(c, adj):
                search([b for b in rest if b not in c], [*chosen, [a, *c]])
        search(rest, chosen)  # `a` left over

    search(cands, [])
    return best


def _clique(c: tuple[int, ...], adj: dict[int, set[int]]) -> bool:
    return all(b in adj[a] for a, b in combinations(c, 2))


def place(node: NodeEntry, size: int) -> NodePlacement:
    """The engines of `size` GPUs on `node` and the usable GPUs left over, with why."""
    by_index = {g.index: g for g in node.usable if g.index is not None}
    leftover = [
        Leftover(index=None, uuid=g.uuid, reason="no runtime index in the report")
        for g in node.usable
        if g.index is None
    ]
    if size == 1:
        return NodePlacement.model_construct(
            node=node.name, engines=[[g] for g in by_index.values()], leftover=leftover
        )
    ids = sorted(by_index)
    groups = node.xgmi_groups
    if groups is not None and not node.xgmi_down and any(set(ids) <= set(g) for g in groups):
        # the common case: every usable GPU in one hive, no link down: engines in GPU order
        chunks = [ids[i : i + size] for i in range(0, len(ids) - size + 1, size)]
        placed = {i for c in chunks for i in c}
        rest = [i for i in ids if i not in placed]
        why = (
            f"{size} GPUs per engine: no {size - 1} fully connected usable partners left for it "
            f"on the node ({len(rest) - 1} left)"
        )
        return NodePlacement.model_construct(
            node=node.name,
            engines=[[by_index[i] for i in c] for c in chunks],
            leftover=leftover
            + [Leftover.model_construct(index=i, uuid=by_index[i].uuid, reason=why) for i in rest],
        )
    adj = partners(node)
    if adj is None:
        return NodePlacement(
            node=node.name,
            engines=[],
            leftover=leftover
            + [
                Leftover(
                    index=g.index,
                    uuid=g.uuid,
                    reason="the report has no XGMI link graph (written by an older tuner: run "
                    "tuner check or tuner ready again)",
                )
                for g in by_index.values()
            ],
        )
    engines = _best(sorted(by_index), size, adj)
    placed = {i for e in engines for i in e}
    for i in sorted(set(by_index) - placed):
        g = by_index[i]
        linked = sorted(adj[i] - placed)
        pairs = node.xgmi_down or []
        down = sorted({b for a, b in pairs if a == i} | {a for a, b in pairs if b == i})
        if not any(i in grp for grp in node.xgmi_groups or []):
            why = "its XGMI links could not be read: it can only run alone (TP x PP 1)"
        elif down and len(adj[i]) + 1 < size:
            why = (
                f"XGMI link down to GPU {', '.join(str(d) for d in down)}: too few partners for "
                f"{size} GPUs per engine"
            )
        else:
            why = (
                f"{size} GPUs per engine: no {size - 1} fully connected usable partners left for "
                f"it on the node ({len(linked)} left)"
            )
        leftover.append(Leftover(index=i, uuid=g.uuid, reason=why))
    return NodePlacement.model_construct(
        node=node.name,
        engines=[[by_index[i] for i in e] for e in engines],
        leftover=leftover,
    )
