"""What every command shares: the root app, the consoles, JSON or human output, errors
to exit codes, validation before any host is touched."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from agent.errors import TunerError

# Plain help wrapped at 80 columns (agent/clihelp.py adds placeholders and examples).
HELP: dict[str, Any] = {"rich_markup_mode": None, "context_settings": {"max_content_width": 80}}
app = typer.Typer(
    no_args_is_help=True,
    help="Tune MI355X inference nodes: OS and BIOS profiles, health gate, fleet.",
    **HELP,
)

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: commands that print nothing do not import rich."""

    def __init__(self, **kw: Any) -> None:
        self._kw = kw
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kw)
        return getattr(self._console, name)

    def print(self, *objects: Any, **kw: Any) -> None:
        """Console.print with terminal control characters in text shown as visible escapes
        (`\\x1b`): host names, reasons and values can come from nodes, BMCs and reports, and
        Rich passes ESC sequences and carriage returns to the terminal as they are (tables
        clean their cells with agent.view.escape; this covers every other line)."""
        from agent.view import visible

        objects = tuple(visible(o) if isinstance(o, str) else o for o in objects)
        self.__getattr__("print")(*objects, **kw)


out = cast("Console", _LazyConsole(highlight=False, width=None if sys.stdout.isatty() else 160))
err = cast("Console", _LazyConsole(stderr=True, highlight=False))

last_doc: list[Any] = []  # the document a command emitted (for the run history)


def emit(model: Any, as_json: bool, human: Callable[[], None]) -> None:
    """`model`: a pydantic model or a dict; as JSON with --json, else `human()`."""
    data = model if isinstance(model, dict) else model.model_dump(mode="json")
    last_doc[:] = [data]
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human()


@contextmanager
def errors(as_json: bool) -> Iterator[None]:
    """Turn tuner's errors into a message and an exit code: never a traceback."""
    try:
        yield
    except TunerError as e:
        if as_json:
            sys.stdout.write(json.dumps(e.to_json(), indent=2) + "\n")
        err.print(f"[bold red]error:[/] {e}", markup=True, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except RecursionError:
        # a last net for input nested too deeply for a parser (YAML is limited before this)
        msg = "input nested too deeply to read (a facts, profile or inventory file?)"
        if as_json:
            sys.stdout.write(json.dumps({"error": msg, "file": None, "field": None}) + "\n")
        err.print(f"[bold red]error:[/] {msg}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def plural(count: int, word: str) -> str:
    """`1 node`, `2 nodes`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def phases(label: str, as_json: bool) -> Callable[[str], None]:
    """A line per phase on stderr (terminal or not, so CI logs show it); none with --json."""
    import time

    start = time.monotonic()

    def say(text: str) -> None:
        if not as_json:
            err.print(f"{label}: {text} [{time.monotonic() - start:.1f} s]", soft_wrap=True)

    return say


def prepare(profile: str | None, inventory: str | None, limit: str | None) -> tuple[Any, Any]:
    """Validate everything before any host is touched: profile, inventory, limit."""
    from agent.inventory import default_inventory, load_inventory
    from agent.paths import check_state_dir
    from agent.profiles import load_profile

    check_state_dir()
    prof = load_profile(profile) if profile is not None else None
    inv = load_inventory(default_inventory(inventory), limit)
    return prof, inv


def state_folder(state_dir: str | None) -> Path:
    from agent.paths import check_state_dir

    d = check_state_dir(state_dir)
    if state_dir:
        os.environ["TUNER_STATE_DIR"] = str(d)
    return d
