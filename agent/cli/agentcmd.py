"""`tuner agent run|install|remove|status`: the node agent."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import (
    HELP,
    emit,
    err,
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

agent_app = typer.Typer(
    no_args_is_help=True,
    help="The node agent: keeps each node tuned across boots and hotplug (docs/agent.md).",
    **HELP,
)


@agent_app.command("run", context_settings={"ignore_unknown_options": False})
def agent_run(
    once: Annotated[bool, typer.Option("--once", help="Re-apply once and exit.")] = False,
    root: Annotated[
        str, typer.Option("--root", help="The node's / (a simulated node's tree).")
    ] = "/",
    events: Annotated[
        str, typer.Option("--events", help="netlink (udev, a real node), sim or none.")
    ] = "netlink",
    textfile_dir: Annotated[
        str,
        typer.Option("--textfile-dir", help="node_exporter's textfile folder, on the node."),
    ] = "/var/lib/prometheus/node-exporter",
    as_json: JsonOpt = False,
) -> None:
    """On a node: re-apply the settings tuner apply recorded, then watch udev and re-apply
    what a CPU coming online or a cpufreq driver loading undoes (what the unit runs)."""
    from agent.nodeagent import run

    if events not in ("netlink", "sim", "none"):
        err.print("error: --events must be netlink, sim or none")
        raise typer.Exit(2)
    argv = ["run", "--root", root, "--events", events, "--textfile-dir", textfile_dir]
    argv += ["--once"] if once else []
    argv += ["--json"] if as_json else []
    raise typer.Exit(run(argv))


def _agent_fleet(
    mode: str,
    inventory: str | None,
    limit: str | None,
    check: bool,
    forks: int | None,
    as_json: bool,
) -> None:
    from agent.agentfleet import print_report, run

    with errors(as_json):
        _, inv = prepare(None, inventory, limit)
        with progress(len(inv.hosts), f"agent {mode}", as_json) as prog:
            rep = run(mode, inv, check=check, forks=forks, progress=prog)
        emit(rep, as_json, lambda: print_report(rep, out))
        raise typer.Exit(rep.exit_code)


@agent_app.command("install")
def agent_install(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be installed.")] = False,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Install the node agent on every host: its code under /opt/tuner/lib and a systemd
    unit run by the node runtime /opt/tuner/venv (tuner provision builds it)."""
    _agent_fleet("install", inventory, limit, check, forks, as_json)


@agent_app.command("remove")
def agent_remove(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be removed.")] = False,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove the node agent: the unit and every file install made. The tuning stays
    (tuner rollback restores the originals)."""
    _agent_fleet("remove", inventory, limit, check, forks, as_json)


@agent_app.command("status")
def agent_status(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the agent installed and running on every host, and what did it last do. Exit 1
    when a host lacks it, its files, or its last run failed."""
    _agent_fleet("status", inventory, limit, False, forks, as_json)
