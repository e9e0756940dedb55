"""`tuner provision`: each node's runtime for tuner."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import (
    app,
    emit,
    errors,
    out,
    prepare,
)
from agent.cli.options import (
    ExecutorsOpt,
    ForksOpt,
    InventoryOpt,
    JsonOpt,
    LimitOpt,
)
from agent.cli.progress import progress


@app.command()
def provision(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report each node and what would change; write nothing.")
    ] = False,
    wheelhouse: Annotated[
        str | None,
        typer.Option(
            "--wheelhouse",
            help="Your own folder of wheels (air-gapped sites); default: built once with pip "
            "download, cached in the state folder.",
        ),
    ] = None,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make nodes ready for tuner: /opt/tuner/venv with tuner's node-side packages and the
    amdsmi package of the node's ROCm, installed offline from a pushed wheelhouse.

    Exit 0 when every node is ready, 1 when one failed, 2 on bad input."""
    from agent.paths import state_dir
    from agent.provision import check_wheelhouse, print_report
    from agent.provision import provision as run_provision

    with errors(as_json):
        wh = check_wheelhouse(wheelhouse) if wheelhouse is not None else None
        _, inv = prepare(None, inventory, limit)
        with progress(len(inv.hosts), "provision", as_json) as prog:
            r = run_provision(inv, check, forks, prog, state_dir(), wh)
        emit(r, as_json, lambda: print_report(r, out))
        raise typer.Exit(1 if r.failed else 0)
