"""What the report shows, computed from the loaded reports (pure; no HTML here).

`build(side, since)` -> `Fleet`: every node's GPU cells with their verdict and reason, the
XGMI link letters of the nodes worth a matrix, per-layer tuning conformance, what changed
since an older report, and the numbers behind them. `summary(fleet)` is the `--json` form.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.gpu.gate import GpuEntry, NodeEntry
from agent.htmlreport.load import Side

CONFORMS = ("ok", "unchanged", "changed")  # verify ok; apply: the wanted value is in effect
VERDICTS = ("usable", "warned", "excluded", "unknown")


@dataclass
class Cell:
    """One GPU of the grid."""

    node: str
    index: int | None
    bdf: str | None
    serial: str | None
    verdict: str  # usable | warned | excluded | unknown (its node gave no facts)
    reasons: list[str] = field(default_factory=list)
    xgmi: str = ""  # link letters per slot (U up, D down, X disabled, ? not read)
    hotspot_c: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.node, self.bdf or f"#{self.index}")

    @property
    def label(self) -> str:
        return f"GPU {self.index}" if self.index is not None else "GPU ?"


@dataclass
class Node:
    name: str
    status: str  # the gate's: ok | degraded | excluded | failed; "" without an inventory
    reason: str = ""
    installed: int | None = None
    cells: list[Cell] = field(default_factory=list)
    tuning: str = ""  # the host's tuning status (verify / apply / ready), "" when not given
    tuning_reason: str = ""

    @property
    def usable(self) -> int:
        return sum(c.verdict in ("usable", "warned") for c in self.cells)

    @property
    def links_degraded(self) -> bool:
        return any(set(c.xgmi) - {"U", "X"} for c in self.cells if c.xgmi)


@dataclass
class Item:
    """One tuned thing on one host: a setting, a BIOS attribute, the command line..."""

    host: str
    layer: str
    key: str
    wanted: str | None
    actual: str | None
    status: str
    message: str = ""
    missing_ok: bool = False

    @property
    def conforms(self) -> bool:
        return self.status in CONFORMS or (self.status == "missing" and self.missing_ok)


@dataclass
class Change:
    what: str  # gpu lost | gpu regained | gpu added | gpu gone | setting drifted | ...
    node: str
    item: str  # "GPU 5 (0000:95:00.0)" or "os sysctl.vm.swappiness"
    before: str
    now: str
    reason: str = ""


@dataclass
class Fleet:
    side: Side
    nodes: list[Node]
    items: list[Item]
    layers: list[str]
    tuning_command: str  # verify | apply | ready | ""
    since: Side | None = None
    changes: list[Change] = field(default_factory=list)
    totals_before: dict[str, int] | None = None

    @property
    def totals(self) -> dict[str, int]:
        inv = self.side.inventory
        if inv is None:
            return {}
        return {
            "usable_gpus": inv.usable_gpus,
            "installed_gpus": inv.installed_gpus,
            "excluded_gpus": inv.excluded_gpus,
            "unknown_gpus": inv.unknown_gpus,
            "nodes_total": inv.nodes_total,
            "nodes_usable": inv.nodes_usable,
            "nodes_excluded": inv.nodes_excluded,
            "nodes_failed": sum(n.status == "failed" for n in inv.nodes),
        }


def _reasons(g: GpuEntry) -> list[str]:
    return [f"{c.check}: {c.message}" if c.message else c.check for c in g.checks]


def node_cells(n: NodeEntry) -> list[Cell]:
    """The node's GPUs, by runtime index: the per-GPU view when the report has it (readings,
    link letters), else the usable / excluded lists; a failed node's expected GPUs unknown."""
    views = {(v.bdf, v.index): v for v in n.gpus}
    cells: list[Cell] = []
    for verdict, entries in (("usable", n.usable), ("excluded", n.excluded)):
        for g in entries:
            v = views.pop((g.bdf, g.index), None)
            why = _reasons(g)
            if verdict == "usable" and why:
                verdict_here = "warned"
            else:
                verdict_here = verdict
            cells.append(
                Cell(
                    n.name,
                    g.index,
                    g.bdf,
                    g.serial,
                    verdict_here,
                    why or (list(v.problems) if v else []),
                    v.xgmi if v else "",
                    v.hotspot_c if v else None,
                )
            )
    for v in views.values():  # a view without an entry (should not happen): show it
        cells.append(
            Cell(n.name, v.index, v.bdf, None, v.verdict, list(v.problems), v.xgmi, v.hotspot_c)
        )
    if n.status == "failed" and not n.usable:
        # expected GPUs the node could not show: unknown, never usable (fail closed)
        for _ in range(len(cells), n.installed or 0):
            cells.append(Cell(n.name, None, None, None, "unknown", [n.reason or "node failed"]))
        for c in cells:
            if c.verdict == "excluded" and not c.reasons:
                c.reasons = [n.reason]
    cells.sort(key=lambda c: (c.index is None, c.index if c.index is not None else 0, c.bdf or ""))
    return cells


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def host_items(host: str, d: dict[str, Any], verify: bool) -> list[Item]:
    """One host's items from its report as JSON (docs/json.md). Read from the document's
    schema-1 fields (`settings`, `bios`, `cmdline`, `cross`), which the layer registry keeps
    writing beside `layers`; a layer without such a field (a new one) is one item with its
    status (`layers` maps a layer to its status, or to a part with a `status`)."""
    items: list[Item] = []
    for s in d.get("settings") or []:
        actual = s.get("actual") if verify else s.get("after")
        items.append(
            Item(host, "os", str(s.get("id")), _s(s.get("wanted")), _s(actual),
                 str(s.get("status")), s.get("message") or "", bool(s.get("missing_ok"))),
        )  # fmt: skip
    bios = d.get("bios")
    if isinstance(bios, dict):
        attrs = bios.get("attributes") or []
        for a in attrs:
            actual = a.get("current") if verify else (a.get("after") or a.get("current"))
            setting, attr = str(a.get("setting")), str(a.get("attribute"))
            key = f"{setting} ({attr})" if attr != setting else setting
            items.append(
                Item(host, "bios", key, _s(a.get("wanted")), _s(actual), str(a.get("status")),
                     a.get("message") or ""),
            )  # fmt: skip
        if not attrs or bios.get("status") in ("failed", "skipped"):
            items.append(
                Item(host, "bios", "(layer)", None, None, str(bios.get("status")),
                     bios.get("message") or ""),
            )  # fmt: skip
    cmdline = d.get("cmdline")
    if isinstance(cmdline, dict):
        off = " ".join(str(x) for x in cmdline.get("off") or [])
        items.append(
            Item(host, "cmdline", "kernel command line", None, off or "as wanted",
                 str(cmdline.get("status")), cmdline.get("message") or ""),
        )  # fmt: skip
    for c in d.get("cross") or []:
        st = {"ok": "ok", "mismatch": "drift"}.get(str(c.get("status")), "unknown")
        items.append(
            Item(host, "cross", str(c.get("id")), _s(c.get("wanted")), _s(c.get("actual")), st,
                 c.get("message") or ""),
        )  # fmt: skip
    seen = {i.layer for i in items}
    for layer, part in (d.get("layers") or {}).items():
        if layer in seen:
            continue
        if isinstance(part, str):
            st, why = part, ""
        else:
            st, why = str((part or {}).get("status")), str((part or {}).get("message") or "")
        items.append(Item(host, str(layer), "(layer)", None, None, st, why))
    return items


def tuning_items(side: Side) -> tuple[list[Item], list[str], str]:
    """Every tuned item of every host, the layers, and which command said so."""
    items: list[Item] = []
    t = side.tuning
    if t is not None:
        verify = t.command == "verify"
        for h in t.hosts:
            mine = host_items(h.host, h.model_dump(mode="json"), verify)
            if not mine or h.status in ("unreachable", "failed", "not started"):
                if not any(not i.conforms for i in mine):
                    mine.append(Item(h.host, "host", "(host)", None, None, h.status, h.message))
            items += mine
        return items, list(t.layers), t.command
    if side.ready is not None:
        for r in side.ready.hosts:
            items.append(Item(r.name, "verify", "(host)", None, None, r.verify, r.reason))
        return items, ["verify"], "ready"
    return [], [], ""


def _why(i: Item) -> str:
    if i.key in ("(host)", "(layer)"):
        return f"{i.layer} {i.status}" + (f": {i.message}" if i.message else "")
    if i.actual is not None and i.wanted is not None:
        return f"{i.key} is {i.actual!r}, profile wants {i.wanted!r}"
    return f"{i.layer} {i.key} {i.status}" + (f": {i.message}" if i.message else "")


def host_tuning(side: Side, items: list[Item]) -> dict[str, tuple[str, str]]:
    """Each host's tuning status (the worst of its layers) and why: what does not conform."""
    out: dict[str, tuple[str, str]] = {}
    if side.tuning is not None:
        bad: dict[str, list[str]] = {}
        for i in items:
            if not i.conforms:
                bad.setdefault(i.host, []).append(_why(i))
        for h in side.tuning.hosts:
            why = bad.get(h.host, [])
            text = "; ".join(why[:6]) + (f" (+{len(why) - 6} more)" if len(why) > 6 else "")
            out[h.host] = (h.status, text or h.message)
    elif side.ready is not None:
        for r in side.ready.hosts:
            out[r.name] = (r.verify, r.reason)
    return out


def build(side: Side, since: Side | None = None) -> Fleet:
    nodes: list[Node] = []
    items, layers, command = tuning_items(side)
    tuning = host_tuning(side, items)
    if side.inventory is not None:
        for n in side.inventory.nodes:
            st, why = tuning.get(n.name, ("", ""))
            nodes.append(Node(n.name, n.status, n.reason, n.installed, node_cells(n), st, why))
    known = {n.name for n in nodes}
    for host, (st, why) in tuning.items():  # tuned hosts the inventory does not list
        if host not in known:
            nodes.append(Node(host, "", "", None, [], st, why))
    fleet = Fleet(side, nodes, items, layers, command, since)
    if since is not None:
        old = build(since)
        fleet.changes = diff(old, fleet)
        fleet.totals_before = old.totals
    return fleet


def _gpu_state(c: Cell | None) -> str:
    if c is None:
        return "absent"
    return "usable" if c.verdict in ("usable", "warned") else c.verdict


def diff(old: Fleet, new: Fleet) -> list[Change]:
    """GPUs lost or regained, nodes added or gone, settings drifted or fixed."""
    out: list[Change] = []
    if old.side.inventory is not None and new.side.inventory is not None:
        before = {c.key: c for n in old.nodes for c in n.cells}
        now = {c.key: c for n in new.nodes for c in n.cells}
        old_nodes = {n.name: n for n in old.nodes}
        new_nodes = {n.name: n for n in new.nodes}
        added = new_nodes.keys() - old_nodes.keys()
        for key in list(before) + [k for k in now if k not in before]:
            if key[0] in added:
                continue  # counted by its "node added" line
            b, c = before.get(key), now.get(key)
            sb, sc = _gpu_state(b), _gpu_state(c)
            if sb == sc:
                continue
            ref = c or b
            assert ref is not None
            item = f"{ref.label} ({ref.bdf})" if ref.bdf else ref.label
            if sb == "usable":
                what = "gpu lost"
                nn = new_nodes.get(key[0])
                why = "; ".join(c.reasons) if c else (nn.reason if nn else "node not in the report")
            elif sc == "usable":
                what = "gpu regained" if b is not None else "gpu added"
                why = "; ".join(b.reasons) if b else ""
                why = f"was: {why}" if why else ""
            else:
                what = "gpu state"
                why = "; ".join(c.reasons) if c else ""
            out.append(Change(what, key[0], item, sb, sc if c else "absent", why))
        for name in added:
            nn = new_nodes[name]
            now_s = f"{nn.status}, {nn.usable} of {len(nn.cells)} GPUs usable"
            out.append(Change("node added", name, "node", "absent", now_s, nn.reason))
        for name in old_nodes.keys() - new_nodes.keys():
            out.append(Change("node gone", name, "node", old_nodes[name].status, "absent"))
    if old.items and new.items:
        before_i = {(i.host, i.layer, i.key): i for i in old.items}
        for i in new.items:
            was = before_i.get((i.host, i.layer, i.key))
            if was is None:
                continue
            item = f"{i.layer} {i.key}"
            if was.conforms and not i.conforms:
                out.append(Change("setting drifted", i.host, item, _val(was), _val(i), i.message))
            elif not was.conforms and i.conforms:
                out.append(Change("setting fixed", i.host, item, _val(was), _val(i), ""))
            elif (was.actual, was.status) != (i.actual, i.status) and i.actual is not None:
                out.append(Change("setting changed", i.host, item, _val(was), _val(i), i.message))
    order = {n.name: k for k, n in enumerate(new.nodes)}
    kinds = [
        "gpu lost",
        "node gone",
        "setting drifted",
        "gpu state",
        "setting changed",
        "gpu regained",
        "gpu added",
        "node added",
        "setting fixed",
    ]
    out.sort(key=lambda c: (kinds.index(c.what), order.get(c.node, 1 << 30), c.node, c.item))
    return out


def _val(i: Item) -> str:
    if i.actual is None:
        return i.status
    return i.actual if i.status in CONFORMS else f"{i.actual} ({i.status})"


def layer_counts(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Per layer: hosts by their worst status in that layer."""
    worst: dict[str, dict[str, Item]] = {}
    for i in fleet.items:
        per = worst.setdefault(i.layer, {})
        cur = per.get(i.host)
        if cur is None or (cur.conforms and not i.conforms):
            per[i.host] = i
    out: dict[str, dict[str, int]] = {}
    for layer, per in worst.items():
        c = Counter("ok" if i.conforms else i.status for i in per.values())
        out[layer] = dict(sorted(c.items()))
    return out


def check_counts(fleet: Fleet) -> dict[str, int]:
    """Excluded / unknown GPUs by the check that took them out (a GPU may count twice)."""
    c: Counter[str] = Counter()
    for n in fleet.nodes:
        for cell in n.cells:
            if cell.verdict in ("excluded", "unknown"):
                for r in cell.reasons or ["(no reason given)"]:
                    c[r.split(":", 1)[0] if cell.verdict == "excluded" else "node failed"] += 1
    return dict(c.most_common())


def summary(fleet: Fleet) -> dict[str, Any]:
    """`tuner report --json`: the numbers the page shows."""
    excluded = [
        {
            "node": c.node,
            "index": c.index,
            "bdf": c.bdf,
            "verdict": c.verdict,
            "reasons": c.reasons,
        }
        for n in fleet.nodes
        for c in n.cells
        if c.verdict in ("excluded", "unknown")
    ]
    inv = fleet.side.inventory
    out: dict[str, Any] = {
        "from": fleet.side.files,
        "since": fleet.since.files if fleet.since else None,
        "generated_at": inv.generated_at if inv else None,
        "gate": {"passed": inv.gate.passed, "reasons": inv.gate.reasons} if inv else None,
        "totals": fleet.totals or None,
        "gpus_by_verdict": dict(
            Counter(c.verdict for n in fleet.nodes for c in n.cells).most_common()
        ),
        "excluded": excluded,
        "excluded_by_check": check_counts(fleet),
        "links_degraded_nodes": [n.name for n in fleet.nodes if n.links_degraded],
        "tuning": {
            "command": fleet.tuning_command,
            "layers": fleet.layers,
            "by_layer": layer_counts(fleet),
            "not_conforming": [
                {
                    "host": i.host,
                    "layer": i.layer,
                    "item": i.key,
                    "wanted": i.wanted,
                    "actual": i.actual,
                    "status": i.status,
                    "message": i.message,
                }
                for i in fleet.items
                if not i.conforms
            ],
        }
        if fleet.tuning_command
        else None,
        "changes": [c.__dict__ for c in fleet.changes] if fleet.since else None,
        "totals_before": fleet.totals_before,
    }
    return out
