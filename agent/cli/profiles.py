"""`tuner profiles list|show`."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from agent.cli.common import (
    HELP,
    emit,
    errors,
    out,
)
from agent.cli.options import (
    JsonOpt,
)
from agent.errors import BadInput

profiles_app = typer.Typer(
    no_args_is_help=True,
    help="List and show tuning profiles.",
    **HELP,
)


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it


@profiles_app.command("list")
def profiles_list(as_json: JsonOpt = False) -> None:
    """List the profiles shipped in profiles/ (`profiles show NAME` validates one)."""
    import yaml

    from agent.paths import profiles_dir

    with errors(as_json):
        items = []
        d = profiles_dir()
        # Only each file's name and description (read as `profiles show` reads them): no
        # schema, no includes, so the list is quick (docs/performance.md).
        for path in sorted(d.glob("*.y*ml"), key=lambda p: p.stem) if d.is_dir() else []:
            try:
                raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                raise BadInput(f"cannot read this profile: {e}", file=str(path)) from e
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise BadInput("a profile needs a `name`", file=str(path), field="name")
            desc = raw.get("description") or ""
            items.append({"name": raw["name"], "description": str(desc), "file": str(path)})

        def human() -> None:
            from rich.table import Table

            t = Table()
            for c in ("profile", "description", "file"):
                t.add_column(c)
            for i in items:
                rel = os.path.relpath(i["file"])
                t.add_row(i["name"], i["description"], i["file"] if rel.startswith("..") else rel)
            out.print(t)

        emit({"profiles": items}, as_json, human)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or YAML path.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a resolved profile: every value and the file it came from."""
    from rich.table import Table

    from agent.profiles import load_profile

    with errors(as_json):
        p = load_profile(name)

        def human() -> None:
            out.print(f"[bold]{p.name}[/]: {p.description}")
            out.print("files (later wins): " + " -> ".join(p.files))
            t = Table()
            for c in ("setting", "value", "from"):
                t.add_column(c)
            dump = p.dump_sections()
            from agent.profiles import _flatten

            flat: dict[str, Any] = {}
            _flatten(dump, "", flat)
            for k, v in flat.items():
                t.add_row(
                    k, json.dumps(v) if not isinstance(v, str) else v, p.sources.get(k, "default")
                )
            out.print(t)

        emit(p, as_json, human)
