"""The fleet report as one self-contained HTML page (pure: a `Fleet` in, a string out).

No network, no external asset, no script: inline CSS and SVG only, so the file opens from a
USB stick on an air-gapped wall screen and a hostile string in a report cannot run. Every
string that came from a node or a report (host names, reasons, values, file names) goes
through `_e` (html.escape, quotes too) before it reaches the page.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter
from collections.abc import Iterable

from agent.htmlreport.model import (
    Cell,
    Fleet,
    Item,
    Node,
    check_counts,
    layer_counts,
)
from agent.view import fold

# The page may load nothing: no script, no network, no other file (a report is untrusted data)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CHANGE_CLS = {
    "gpu lost": "bad",
    "node gone": "bad",
    "setting drifted": "bad",
    "gpu regained": "ok",
    "setting fixed": "ok",
}
MAX_ROWS = 300  # rows of a long table shown before "N more" (the JSON summary has all)


def _e(s: object) -> str:
    return html.escape("" if s is None else str(s), quote=True)


CSS = """
:root{--ok:#1a7f37;--warn:#bf8700;--bad:#cf222e;--unk:#6e7781;--bg:#f6f8fa;--fg:#1f2328;
--mut:#59636e;--line:#d1d9e0;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--fg)}
header{padding:12px 20px;background:#24292f;color:#fff;display:flex;flex-wrap:wrap;gap:8px 24px;
align-items:baseline}
header h1{font-size:20px;margin:0}header .src{color:#c9d1d9;font-size:12px}
main{padding:12px 20px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px 14px;
margin:0 0 14px}
h2{font-size:16px;margin:2px 0 8px}h3{font-size:14px;margin:10px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:120px}
.card b{display:block;font-size:26px;line-height:1.1}.card span{color:var(--mut);font-size:12px}
.gate{font-weight:700;padding:2px 10px;border-radius:12px;color:#fff}
.gate.pass{background:var(--ok)}.gate.fail{background:var(--bad)}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:4px 0 10px;color:var(--mut);font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(104px,1fr));gap:6px}
.node{border:2px solid var(--line);border-radius:4px;padding:2px 3px 3px;min-width:0}
.node.degraded{border-color:var(--warn)}.node.excluded,.node.failed{border-color:var(--bad)}
.node.absent{border-style:dashed}.node.tune-bad{box-shadow:inset 0 -3px 0 #8250df}
.nn{font:11px/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;display:flex;justify-content:space-between;gap:2px}
.nn em{font-style:normal;color:var(--mut)}
.gpus{display:grid;grid-template-columns:repeat(8,1fr);gap:2px}
.g{height:12px;border-radius:2px}
.usable{background:var(--ok)}.warned{background:var(--warn)}
.excluded{background:repeating-linear-gradient(45deg,var(--bad) 0 3px,#fff 3px 4px)}
.unknown{background:repeating-linear-gradient(90deg,var(--unk) 0 2px,#fff 2px 4px)}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--bg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.mono,td:nth-child(-n+2){white-space:nowrap}
.mats{display:flex;flex-wrap:wrap;gap:16px}
.mat td,.mat th{border:1px solid #fff;padding:0;width:22px;height:22px;text-align:center;
font:11px ui-monospace,monospace}
.mat td.U{background:#8fd19e}.mat td.D{background:var(--bad);color:#fff;font-weight:700}
.mat td.X{background:#eaeef2;color:var(--mut)}.mat td.Q{background:#d0d7de}
.mat tr.out th{color:var(--bad)}
.chip{display:inline-block;border-radius:10px;padding:0 8px;margin:1px 2px;font-size:12px;
background:#eaeef2}
.chip.ok{background:#dafbe1}.chip.bad{background:#ffebe9}.chip.mid{background:#fff8c5}
.strip{display:flex;flex-wrap:wrap;gap:1px;margin:2px 0 6px}
.strip i{width:8px;height:12px;display:block}
.strip i.ok{background:var(--ok)}.strip i.bad{background:var(--bad)}
.strip i.mid{background:var(--warn)}
.lost{color:var(--bad);font-weight:600}.gained{color:var(--ok);font-weight:600}
.muted{color:var(--mut)}.c-warn{color:var(--warn)}.c-bad{color:var(--bad)}
.legend i.c-tune{background:#8250df}
details>summary{cursor:pointer;color:var(--mut)}
@media (min-width:2200px){body{font-size:16px}.g{height:16px}
.grid{grid-template-columns:repeat(auto-fill,minmax(132px,1fr))}}
"""


def _title(c: Cell) -> str:
    head = f"{c.node} {c.label}" + (f" {c.bdf}" if c.bdf else "") + f": {c.verdict}"
    lines = [head, *c.reasons]
    if c.hotspot_c is not None:
        lines.append(f"hotspot {c.hotspot_c} °C")
    if c.xgmi:
        lines.append(f"XGMI {c.xgmi}")
    return "\n".join(lines)


def _cell(c: Cell) -> str:
    return (
        f'<div class="g {c.verdict}" data-node="{_e(c.node)}" data-gpu="{_e(c.index)}" '
        f'data-verdict="{c.verdict}" title="{_e(_title(c))}"></div>'
    )


GOOD_UP = ("usable_gpus", "installed_gpus", "nodes_total", "nodes_usable")  # more is better
TUNE_BAD = ("drift", "failed", "unreachable", "pending", "not started", "would change", "excluded")


def _node(n: Node) -> str:
    cls = ["node", n.status or "absent"]  # absent: tuned, but not in the GPU report
    if n.tuning in TUNE_BAD:
        cls.append("tune-bad")
    tip = [f"{n.name}: {n.status or 'not in the GPU report'}"]
    if n.reason:
        tip.append(n.reason)
    tip.append(f"{n.usable} of {len(n.cells)} GPUs usable")
    if n.tuning:
        tip.append(f"tuning: {n.tuning}" + (f" ({n.tuning_reason})" if n.tuning_reason else ""))
    badge = f"<em>{_e(n.tuning)}</em>" if n.tuning in TUNE_BAD else ""
    cells = "".join(_cell(c) for c in n.cells)
    return (
        f'<div class="{" ".join(cls)}" data-node="{_e(n.name)}" title="{_e(chr(10).join(tip))}">'
        f'<div class="nn"><span>{_e(n.name)}</span>{badge}</div>'
        f'<div class="gpus">{cells}</div></div>'
    )


def _cards(fleet: Fleet) -> str:
    t = fleet.totals
    before = fleet.totals_before or {}
    if not t:
        return ""

    def card(key: str, label: str) -> str:
        delta = ""
        if key in before and before[key] != t[key]:
            d = t[key] - before[key]
            good = (d > 0) == (key in GOOD_UP)
            delta = f' <small class="{"gained" if good else "lost"}">({d:+d})</small>'
        return (
            f'<div class="card" data-total="{key}"><b>{t[key]}{delta}</b>'
            f"<span>{_e(label)}</span></div>"
        )

    return (
        '<div class="cards">'
        + "".join(
            card(k, label)
            for k, label in (
                ("usable_gpus", "usable GPUs"),
                ("installed_gpus", "installed GPUs"),
                ("excluded_gpus", "excluded GPUs"),
                ("unknown_gpus", "unknown GPUs (failed nodes)"),
                ("nodes_total", "nodes"),
                ("nodes_usable", "usable nodes"),
                ("nodes_excluded", "excluded nodes"),
                ("nodes_failed", "failed nodes"),
            )
        )
        + "</div>"
    )


def _legend() -> str:
    return (
        '<div class="legend">'
        '<span><i class="usable"></i>usable</span>'
        '<span><i class="warned"></i>usable, with a warning</span>'
        '<span><i class="excluded"></i>excluded</span>'
        '<span><i class="unknown"></i>unknown (node gave no facts)</span>'
        '<span>node border: <b class="c-warn">degraded</b> / '
        '<b class="c-bad">excluded or failed</b></span>'
        '<span><i class="c-tune"></i>tuning does not conform</span>'
        "<span>hover a GPU or a node for the reason</span></div>"
    )


def _table(
    head: list[str], rows: Iterable[list[str]], total: int, what: str, num: set[int] | None = None
) -> str:
    num = num or set()
    th = "".join(f"<th{' class=num' if i in num else ''}>{h}</th>" for i, h in enumerate(head))
    body = []
    for k, r in enumerate(rows):
        if k >= MAX_ROWS:
            break
        body.append(
            "<tr>"
            + "".join(f"<td{' class=num' if i in num else ''}>{v}</td>" for i, v in enumerate(r))
            + "</tr>"
        )
    more = (
        f'<p class="muted">{total - MAX_ROWS} more {what} not shown '
        "(tuner report --json lists all)</p>"
        if total > MAX_ROWS
        else ""
    )
    return f"<table><tr>{th}</tr>{''.join(body)}</table>{more}"


def _excluded(fleet: Fleet) -> str:
    cells = [c for n in fleet.nodes for c in n.cells if c.verdict in ("excluded", "unknown")]
    if not cells:
        return '<p class="muted">No GPU excluded.</p>'
    rows = (
        [
            f'<span class="mono">{_e(c.node)}</span>',
            _e(c.label),
            f'<span class="mono">{_e(c.bdf or "")}</span>',
            f'<span class="mono">{_e(c.serial or "")}</span>',
            _e(c.verdict),
            "<br>".join(_e(r) for r in c.reasons),
        ]
        for c in cells
    )
    return _table(["node", "GPU", "BDF", "serial", "verdict", "reason"], rows, len(cells), "GPUs")


def _matrix(n: Node) -> str:
    if not any(c.xgmi and c.xgmi != "?" for c in n.cells):
        return ""
    # every GPU a row; one amdsmi does not show (no link letters) reads "?" throughout
    cells = n.cells
    width = max(len(c.xgmi) for c in cells)
    head = "".join(f"<th>{k}</th>" for k in range(width))
    rows = []
    names = {"U": "up", "D": "down", "X": "disabled (itself)"}
    for c in cells:
        tds = []
        for k in range(width):
            ch = c.xgmi[k] if k < len(c.xgmi) else "?"
            cls = ch if ch in "UDX" else "Q"
            tip = f"{n.name} {c.label} link {k}: {names.get(ch, 'not read')}"
            tds.append(f'<td class="{cls}" title="{_e(tip)}">{_e(ch)}</td>')
        out = ' class="out"' if c.verdict in ("excluded", "unknown") else ""
        rows.append(f'<tr{out}><th title="{_e(_title(c))}">{_e(c.index)}</th>{"".join(tds)}</tr>')
    return (
        f'<div data-xgmi-node="{_e(n.name)}"><h3 class="mono">{_e(n.name)} '
        f'<span class="muted">{_e(n.status)}{": " + _e(n.reason) if n.reason else ""}</span></h3>'
        '<table class="mat"><tr><th title="GPU (runtime index) / '
        'link slot (peer position in the hive)">'
        f"GPU</th>{head}</tr>{''.join(rows)}</table></div>"
    )


def _xgmi(fleet: Fleet) -> str:
    worth = [n for n in fleet.nodes if n.status in ("degraded", "excluded") or n.links_degraded]
    if not worth:
        return '<p class="muted">No degraded node: every node\'s links are as the gate wants.</p>'
    mats = [m for m in (_matrix(n) for n in worth) if m]
    if not mats:
        return (
            '<p class="muted">Degraded nodes: '
            + _e(", ".join(n.name for n in worth))
            + "; the report has no per-GPU link readings "
            "(written before tuner check recorded them).</p>"
        )
    return (
        '<p class="muted">Rows: GPUs (runtime index); columns: XGMI link slots (the peer\'s '
        "position in the hive). U up, D down, X disabled (a GPU's own slot), ? not read.</p>"
        f'<div class="mats">{"".join(mats)}</div>'
    )


def _chip(status: str, n: int) -> str:
    cls = "ok" if status == "ok" else ("mid" if status in ("pending", "would change") else "bad")
    return f'<span class="chip {cls}">{n} {_e(status)}</span>'


def _conformance(fleet: Fleet) -> str:
    if not fleet.items:
        return (
            '<p class="muted">No tuning report given (add <code>--from</code> a '
            "<code>tuner verify --json</code>, <code>tuner apply --json</code> or "
            "<code>tuner ready --json</code> file).</p>"
        )
    counts = layer_counts(fleet)
    hosts = list(dict.fromkeys(i.host for i in fleet.items))
    per: dict[str, dict[str, Item]] = {}
    for i in fleet.items:
        cur = per.setdefault(i.layer, {}).get(i.host)
        if cur is None or (cur.conforms and not i.conforms):
            per[i.layer][i.host] = i
    order = [*fleet.layers, *[x for x in counts if x not in fleet.layers]]
    rows = []
    for layer in order:
        if layer not in counts:
            continue
        strip = "".join(
            '<i class="{}" title="{}"></i>'.format(
                "ok" if it.conforms else ("mid" if it.status == "pending" else "bad"),
                _e(f"{h}: {layer} {it.status}" + ("" if it.conforms else f" ({it.key})")),
            )
            for h in hosts
            if (it := per[layer].get(h)) is not None
        )
        chips = "".join(_chip(s, n) for s, n in counts[layer].items())
        rows.append(
            f'<tr data-layer="{_e(layer)}"><th>{_e(layer)}</th>'
            f'<td>{chips}<div class="strip">{strip}</div></td></tr>'
        )
    bad = [i for i in fleet.items if not i.conforms]
    groups: dict[tuple[str, str, str | None, str | None, str], list[str]] = {}
    for i in bad:
        groups.setdefault((i.layer, i.key, i.wanted, i.actual, i.status), []).append(i.host)
    brows = (
        [
            _e(layer),
            f"<code>{_e(key)}</code>",
            _e(wanted if wanted is not None else ""),
            _e(actual if actual is not None else ""),
            _e(status),
            f'<span class="mono">{_e(fold(hs))}</span>',
            str(len(hs)),
        ]
        for (layer, key, wanted, actual, status), hs in sorted(
            groups.items(), key=lambda kv: -len(kv[1])
        )
    )
    kind = {"verify": "tuner verify", "apply": "tuner apply", "ready": "tuner ready"}[
        fleet.tuning_command
    ]
    out = (
        f'<p class="muted">From {_e(kind)}: each host\'s worst status per layer '
        "(one mark per host, "
        "in report order; hover for the host).</p>"
        f'<table class="layers">{"".join(rows)}</table>'
    )
    if bad:
        out += "<h3>What does not conform</h3>" + _table(
            ["layer", "setting", "wanted", "actual", "status", "hosts", "count"],
            brows,
            len(groups),
            "rows",
            {6},
        )
    else:
        out += '<p class="gained">Every host conforms in every layer.</p>'
    return out


def _changes(fleet: Fleet) -> str:
    if fleet.since is None:
        return ""
    ch = fleet.changes
    src = ", ".join(fleet.since.files)
    if not ch:
        body = '<p class="gained">Nothing changed.</p>'
    else:
        by = Counter(c.what for c in ch)
        chips = "".join(
            f'<span class="chip {CHANGE_CLS.get(k, "")}" data-change="{_e(k)}">{n} {_e(k)}</span>'
            for k, n in by.items()
        )

        # one row per kind of change, its nodes folded (node[007,018]): readable at 2,048 GPUs
        groups: dict[tuple[str, str, str, str, str], list[str]] = {}
        for c in ch:
            groups.setdefault((c.what, c.item, c.before, c.now, c.reason), []).append(c.node)

        def row(key: tuple[str, str, str, str, str], nodes: list[str]) -> list[str]:
            what, item, before, now, reason = key
            cls = (
                "lost"
                if what in ("gpu lost", "node gone", "setting drifted")
                else ("gained" if what in ("gpu regained", "setting fixed", "gpu added") else "")
            )
            return [
                f'<span class="{cls}">{_e(what)}</span>',
                f'<span class="mono">{_e(fold(nodes))}</span>',
                _e(item),
                _e(before),
                _e(now),
                _e(reason),
                str(len(nodes)),
            ]

        body = f"<p>{chips}</p>" + _table(
            ["change", "nodes", "what", "before", "now", "why", "count"],
            (row(k, v) for k, v in groups.items()),
            len(groups),
            "rows",
            {6},
        )
    return (
        '<section id="changes"><h2>What changed since '
        f'<span class="mono">{_e(src)}</span></h2>{body}</section>'
    )


def _histogram(values: list[int], unit: str, label: str) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    nb = max(1, min(20, hi - lo + 1))
    width = (hi - lo + 1) / nb
    bins = [0] * nb
    for v in values:
        bins[min(nb - 1, int((v - lo) / width))] += 1
    top = max(bins)
    w, h, bw = 420, 120, 420 / nb
    bars = []
    for k, b in enumerate(bins):
        bh = 0 if top == 0 else (h - 20) * b / top
        a = lo + k * width
        bars.append(
            f'<rect x="{k * bw + 1:.1f}" y="{h - 14 - bh:.1f}" '
            f'width="{bw - 2:.1f}" height="{bh:.1f}" '
            f'fill="#0969da"><title>{a:.0f}-{a + width:.0f} {unit}: {b} GPUs</title></rect>'
        )
    med = statistics.median(values)
    return (
        f'<div><h3>{_e(label)}</h3><svg width="{w}" height="{h}" role="img" '
        f'aria-label="{_e(label)}">{"".join(bars)}'
        f'<text x="0" y="{h - 2}" font-size="11">{lo} {unit}</text>'
        f'<text x="{w}" y="{h - 2}" font-size="11" text-anchor="end">{hi} {unit}</text></svg>'
        f'<p class="muted">{len(values)} GPUs: min {lo}, median {med:g}, max {hi} {unit}</p></div>'
    )


def _numbers(fleet: Fleet) -> str:
    inv = fleet.side.inventory
    parts = []
    if inv is not None:
        cc = check_counts(fleet)
        if cc:
            parts.append(
                "<h3>GPUs out, by check</h3>"
                + _table(
                    ["check", "GPUs"],
                    ([_e(k), str(v)] for k, v in cc.items()),
                    len(cc),
                    "checks",
                    {1},
                )
            )
        st = Counter(n.status for n in fleet.nodes if n.status)
        parts.append(
            "<h3>Nodes by gate status</h3><p>"
            + "".join(_chip(s, k) for s, k in st.most_common())
            + "</p>"
        )
        temps = [c.hotspot_c for n in fleet.nodes for c in n.cells if c.hotspot_c is not None]
        parts.append(_histogram(temps, "°C", "Hotspot temperature spread"))
        fw = inv.fleet
        rows = [[_e(k), f"<code>{_e(v)}</code>"] for k, v in sorted(fw.firmware_majority.items())]
        if fw.driver_majority:
            rows.append(["driver", f"<code>{_e(fw.driver_majority)}</code>"])
        if fw.vbios_majority:
            rows.append(["VBIOS", f"<code>{_e(fw.vbios_majority)}</code>"])
        if rows:
            parts.append(
                "<h3>Fleet majority (firmware, driver)</h3>"
                + _table(["component", "version"], rows, len(rows), "rows")
            )
        if fw.warnings:
            parts.append(
                "<h3>Fleet warnings</h3><ul>"
                + "".join(f"<li>{_e(w)}</li>" for w in fw.warnings)
                + "</ul>"
            )
        nrows = (
            [
                f'<span class="mono">{_e(n.name)}</span>',
                _e(n.status),
                str(n.usable),
                _e(n.installed if n.installed is not None else ""),
                _e(n.tuning),
                _e(n.reason or n.tuning_reason),
            ]
            for n in fleet.nodes
        )
        parts.append(
            f"<details><summary>Every node ({len(fleet.nodes)})</summary>"
            + _table(
                ["node", "gate", "usable", "installed", "tuning", "reason"],
                nrows,
                len(fleet.nodes),
                "nodes",
                {2, 3},
            )
            + "</details>"
        )
    return "".join(parts)


def render(
    fleet: Fleet,
    title: str = "tuner fleet report",
    refresh: int | None = None,
    written_at: str | None = None,
) -> str:
    """The page. `refresh`: seconds after which a browser reloads the file (a wall screen
    whose page a timer rewrites); `written_at`: when the page was made (shown)."""
    inv = fleet.side.inventory
    gate = ""
    if inv is not None:
        ok = inv.gate.passed
        word = "passed" if ok else "FAILED"
        gate = f'<span class="gate {"pass" if ok else "fail"}" id="gate">gate {word}</span>'
        if inv.gate.reasons:
            gate += f"<span>{_e('; '.join(inv.gate.reasons))}</span>"
    when = f"<span>gate ran {_e(inv.generated_at)}</span>" if inv is not None else ""
    if written_at:
        when += f'<span class="src">page written {_e(written_at)}</span>'
    reload = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    srcs = ", ".join(fleet.side.files)
    summary = f"<p>{_e(inv.summary)}</p>" if inv is not None and inv.summary else ""
    grid = details = ""
    if fleet.nodes and inv is not None:
        grid = (
            f'<section id="grid"><h2>Fleet: {len(fleet.nodes)} nodes x GPUs</h2>{_legend()}'
            f'<div class="grid">{"".join(_node(n) for n in fleet.nodes)}</div></section>'
        )
        details = (
            f'<section id="excluded"><h2>Excluded GPUs</h2>{_excluded(fleet)}</section>'
            f'<section id="xgmi"><h2>XGMI links of degraded nodes</h2>{_xgmi(fleet)}</section>'
        )
    elif inv is None:
        grid = (
            '<section id="grid"><h2>Fleet</h2><p class="muted">No GPU inventory given (add '
            "<code>--from</code> a <code>tuner check -o</code> or <code>tuner ready -o</code> "
            "file).</p></section>"
        )
    numbers = _numbers(fleet)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">{reload}'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1>{gate}{when}<span class="src">from {_e(srcs)}</span></header>'
        f'<main><section id="totals">{summary}{_cards(fleet)}</section>'
        f"{grid}{_changes(fleet)}{details}"
        '<section id="conformance"><h2>Tuning conformance per layer</h2>'
        f"{_conformance(fleet)}</section>"
        + (f'<section id="numbers"><h2>The numbers</h2>{numbers}</section>' if numbers else "")
        + "</main></body></html>\n"
    )
