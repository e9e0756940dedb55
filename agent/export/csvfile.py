"""CSV: one row per GPU (usable and excluded) and one per node that gave no GPU at all — the
fleet inventory a person opens in a spreadsheet. Cells that a spreadsheet would run as a
formula (starting with = + - @ or a tab/CR; OWASP "CSV injection") get a leading quote."""

from __future__ import annotations

import csv
import io

from agent.gpu.gate import GpuEntry, GpuInventory, NodeEntry

COLUMNS = [
    "node",
    "node_status",
    "index",
    "bdf",
    "serial",
    "uuid",
    "hip_uuid",
    "render_node",
    "model",
    "firmware",
    "vbios",
    "driver",
    "status",
    "reasons",
]


def _cell(v: object) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


_FW: dict[tuple[tuple[str, str], ...], str] = {}


def _firmware(fw: dict[str, str] | None) -> str:
    key = tuple(sorted((fw or {}).items()))
    if key not in _FW:  # GPUs of a fleet share a few firmware sets: format each once
        _FW[key] = ";".join(f"{k}={v}" for k, v in key)
    return _FW[key]


def _row(n: NodeEntry, g: GpuEntry | None, status: str) -> list[str]:
    if g is None:
        return [_cell(x) for x in (n.name, n.status, *[""] * 10, status, n.reason)]
    fw = _firmware(g.firmware)
    reasons = "; ".join(f"{c.check}: {c.message}" for c in g.checks if c.status != "pass")
    return [
        _cell(x)
        for x in (
            n.name,
            n.status,
            g.index,
            g.bdf,
            g.serial,
            g.uuid,
            g.hip_uuid,
            g.render_node,
            g.market_name,
            fw,
            g.vbios_version,
            g.driver_version,
            status,
            reasons,
        )
    ]


def render(inv: GpuInventory) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for n in inv.nodes:
        for g in n.usable:
            w.writerow(_row(n, g, "usable"))
        for g in n.excluded:
            w.writerow(_row(n, g, "excluded"))
        if not n.usable and not n.excluded:
            w.writerow(_row(n, None, n.status))
    return buf.getvalue()
