"""The `tuner` command line, one module per command group. Exit codes: 0 ok, 1 drift or a
host failed, 2 bad input.

| module | commands |
| --- | --- |
| `common.py` | the root app, consoles, `emit` (JSON or human), `errors` (exit codes), `prepare` |
| `options.py` | option types shared by commands |
| `progress.py` | the progress renderer (bar on a terminal, lines otherwise) |
| `profiles.py` | `profiles list|show` |
| `tuning.py` | `apply`, `verify`, `rollback` |
| `provision.py` | `provision` |
| `sim.py` | `sim up|down|reboot|event|scenarios` |
| `agentcmd.py` | `agent run|install|remove|status` |
| `gpu.py` | `facts`, `check`, `ready` |
| `fleet.py` | `export`, `launch`, `status` |
| `report.py` | `report` (the HTML page, agent/htmlreport/) |

Modules import their domain code lazily, inside the commands, to keep start-up fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from agent.cli import agentcmd, profiles, sim
from agent.cli.common import app, last_doc

app.add_typer(profiles.profiles_app, name="profiles")
app.add_typer(sim.sim_app, name="sim")
app.add_typer(agentcmd.agent_app, name="agent")

# registered after the groups: the order of `tuner --help`
# isort: split
from agent.cli import tuning  # noqa: E402

# isort: split
from agent.cli import provision  # noqa: E402

# isort: split
from agent.cli import gpu  # noqa: E402

# isort: split
from agent.cli import fleet  # noqa: E402

# isort: split
from agent.cli import report  # noqa: E402

__all__ = ["app", "main", "fleet", "gpu", "provision", "report", "tuning"]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"tuner {version('tuner')}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    _: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print tuner's version and exit."
        ),
    ] = False,
) -> None:
    """Tune MI355X inference nodes: OS and BIOS profiles, health gate, fleet."""


def main() -> None:
    import time

    from agent.clihelp import apply_conventions

    # tuner uses no pydantic plugins; looking for them reads every installed package's metadata
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    cmd = typer.main.get_command(app)
    apply_conventions(cmd)
    start, rc = time.monotonic(), 1
    try:
        cmd(prog_name="tuner")
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise
    finally:
        if "_TUNER_COMPLETE" not in os.environ:
            from agent import history
            from agent.paths import state_dir

            doc = last_doc[0] if last_doc else None
            history.record(state_dir(), sys.argv[1:], rc, time.monotonic() - start, doc)
