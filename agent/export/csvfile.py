"""CSV: one row per GPU (usable and excluded) and one per node that gave no GPU at all — the
fleet inventory a person opens in a spreadsheet. Cells are encoded by
agent/export/encode.py (csv_cell): a cell that a spreadsheet would run as a formula
(starting with = + - @ or a tab/CR/LF; OWASP "CSV injection") gets a leading quote, a cell
with a quote, comma or any control character is quoted (RFC 4180), and control characters
other than tab/CR/LF are written as visible escapes."""

from __future__ import annotations

from agent.export.encode import csv_line
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


_FW: dict[tuple[tuple[str, str], ...], str] = {}


def _firmware(fw: dict[str, str] | None) -> str:
    key = tuple(sorted((fw or {}).items()))
    if key not in _FW:  # GPUs of a fleet share a few firmware sets: format each once
        _FW[key] = ";".join(f"{k}={v}" for k, v in key)
    return _FW[key]


def _row(n: NodeEntry, g: GpuEntry | None, status: str) -> list[object]:
    if g is None:
        return [n.name, n.status, *[""] * 10, status, n.reason]
    fw = _firmware(g.firmware)
    reasons = "; ".join(f"{c.check}: {c.message}" for c in g.checks if c.status != "pass")
    return [
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
    ]


def render(inv: GpuInventory) -> str:
    out = [csv_line(list(COLUMNS))]
    for n in inv.nodes:
        for g in n.usable:
            out.append(csv_line(_row(n, g, "usable")))
        for g in n.excluded:
            out.append(csv_line(_row(n, g, "excluded")))
        if not n.usable and not n.excluded:
            out.append(csv_line(_row(n, None, n.status)))
    return "".join(out)
