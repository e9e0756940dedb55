"""`tuner report`: the fleet as one self-contained HTML page (docs/report.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import app, emit, err, errors, out, plural
from agent.cli.options import JsonOpt
from agent.errors import BadInput


@app.command()
def report(
    from_: Annotated[
        list[str],
        typer.Option(
            "--from",
            help="A report: tuner check/ready -o, ready/verify/apply --json (repeatable: "
            "one GPU inventory and one tuning report).",
        ),
    ],
    since: Annotated[
        list[str] | None,
        typer.Option("--since", help="An older report to compare with (repeatable, as --from)."),
    ] = None,
    html_file: Annotated[
        str | None,
        typer.Option("--html", help="Write the page here (atomically; - for stdout)."),
    ] = None,
    refresh: Annotated[
        int | None,
        typer.Option(
            "--refresh",
            min=10,
            max=86400,
            help="Reload the page every N seconds (a wall screen; rewrite the file on a timer).",
        ),
    ] = None,
    title: Annotated[
        str, typer.Option("--title", help="The page's title (e.g. the cluster's name).")
    ] = "tuner fleet report",
    as_json: JsonOpt = False,
) -> None:
    """The fleet at a glance: GPUs by verdict, XGMI links, tuning, what changed.

    One HTML file with no external reference (inline CSS and SVG, no script). Exit 0
    written, 2 bad input (nothing written)."""
    with errors(as_json):
        if html_file is None and not as_json:
            raise BadInput(
                "give --html FILE (the page), --json (the summary), or both", field="--html"
            )
        if html_file == "-" and as_json:
            raise BadInput("--html - and --json both print on stdout: give a file", field="--html")
        import time

        start = time.monotonic()
        from agent import htmlreport
        from agent.export import write_text
        from agent.htmlreport.model import summary
        from agent.htmlreport.render import render

        fleet = htmlreport.build(list(from_), list(since) if since else None)
        doc = summary(fleet)
        if html_file is not None:
            if html_file != "-" and html_file.endswith((".json", ".prom")):
                raise BadInput("looks like a report, not a page: give a .html file", field="--html")
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            page = render(fleet, title, refresh, now)
            try:
                write_text(html_file, page)
            except BadInput as e:
                raise BadInput(e.detail, file=html_file, field="--html") from None
            doc["html"] = html_file if html_file != "-" else None
            doc["bytes"] = len(page.encode())
        doc["seconds"] = round(time.monotonic() - start, 3)

        def human() -> None:
            t = doc["totals"] or {}
            parts = []
            if t:
                parts.append(f"{t['usable_gpus']} of {t['installed_gpus']} GPUs usable")
            if doc["changes"] is not None:
                n = plural(len(doc["changes"]), "change")
                parts.append(f"{n} since {', '.join(since or [])}")
            if html_file not in (None, "-"):
                err.print(f"wrote {html_file}" + (f" ({'; '.join(parts)})" if parts else ""))
            elif html_file is None:
                out.print("; ".join(parts))

        emit(doc, as_json, human)
