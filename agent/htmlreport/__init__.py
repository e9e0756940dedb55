"""`tuner report`: the fleet as one self-contained HTML page (docs/report.md).

    load.py    read and validate the reports (the existing report models and loader)
    model.py   what the page shows: GPU cells, link letters, conformance, changes (pure)
    render.py  the HTML (pure; inline CSS and SVG, no script, every node string escaped)

`write(from_paths, since_paths, html_path)` is the whole command minus the CLI.
"""

from __future__ import annotations

from typing import Any


def build(from_paths: list[str], since_paths: list[str] | None = None) -> Any:
    """Load (exit 2 on bad input, before anything is written) and compute the page's model.

    The cyclic garbage collector is paused meanwhile: the reports become millions of
    long-lived objects with no cycles to free, and its passes over them cost more than half
    of this at 1,000 nodes (bench/report_bench.py)."""
    import gc

    from agent.htmlreport.load import load_side
    from agent.htmlreport.model import build as build_model

    was = gc.isenabled()
    gc.disable()
    try:
        side = load_side(from_paths, "--from")
        since = load_side(since_paths, "--since") if since_paths else None
        return build_model(side, since)
    finally:
        if was:
            gc.enable()
