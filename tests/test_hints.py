"""Every `tuner ...` a message suggests exists (issue 23, "Words").

Walks every string literal (f-strings with their fields as placeholders) in agent/ and
playbooks/ and checks each suggestion against the real typer app: the command path, each
--option on that command, and a literal value of a choice option among its choices. A
"tuner <word>" whose word is no command is prose ("tuner did not ...") unless it is quoted in
backticks or follows run/use/try/with/see: then it is a suggestion, and must be a command."""

from __future__ import annotations

import ast
import enum
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from agent.cli import app

REPO = Path(__file__).resolve().parent.parent
HOLE = "\x00"  # where an f-string field was

SUGGESTION = re.compile(
    r"(?P<lead>`|\b(?:run|use|try|with|see)\s+)?\btuner((?: +[^\s`'\",;:()\[\]]+)+)"
)
PROSE = {"again"}  # "run tuner again"


def strings(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    parts.append(v.value)
                    inside.add(id(v))
                else:
                    parts.append(HOLE)
            yield node.lineno, "".join(parts)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside
        ):
            yield node.lineno, node.value


def sources() -> list[Path]:
    files = sorted((REPO / "agent").rglob("*.py")) + sorted((REPO / "playbooks").rglob("*.py"))
    return [f for f in files if not f.is_symlink()]


def choices(p: Any) -> list[str] | None:
    """The values an option takes when its type says so (an Enum or a Literal), else None."""
    t = p.type_descriptor.annotation
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return [str(m.value) for m in t]
    if typing.get_origin(t) is typing.Literal:
        return [str(v) for v in typing.get_args(t)]
    return None


def check(root: Any, text: str, lead: bool) -> str | None:
    """None if the suggestion `tuner <text>` exists, else what is wrong."""
    tokens = []
    for t in text.split():
        if t in ("&&", "||", ";", "|", "--"):
            break  # the next command, or the end of tuner's options
        tokens.append(t.rstrip("."))
    cmd = root
    path: list[str] = []
    while hasattr(cmd, "commands") and tokens and tokens[0] in cmd.commands:
        path.append(tokens.pop(0))
        cmd = cmd.commands[path[-1]]
    if not path:
        word = tokens[0] if tokens else ""
        if word.startswith(HOLE) and lead:
            return "the command is a placeholder: spell each suggestion out"
        if word == HOLE and len(tokens) > 1:
            return "`tuner {...}`: the command is a placeholder: spell each suggestion out"
        if lead and re.fullmatch(r"[a-z][a-z-]*", word) and word not in PROSE:
            return f"no command {word!r}"
        return None  # prose: "tuner did not ..."
    if hasattr(cmd, "commands"):
        if tokens and lead and re.fullmatch(r"[a-z][a-z-]*", tokens[0]):
            return f"no command {' '.join([*path, tokens[0]])!r}"
        return None
    opts = {
        name: p
        for p in cmd.params
        if p.param_type_name == "option"
        for name in [*p.opts, *p.secondary_opts]
    }
    i = 0
    while i < len(tokens):
        t = tokens[i]
        i += 1
        if not t.startswith("-") or HOLE in t:
            continue
        name, _, inline = t.partition("=")
        if not re.fullmatch(r"--?[a-z][a-z0-9-]*", name):
            continue
        p = opts.get(name)
        if p is None:
            return f"`tuner {' '.join(path)}` has no option {name}"
        if p.is_flag or p.count:
            continue
        value = inline or (tokens[i] if i < len(tokens) else "")
        if not inline:
            i += 1
        allowed = choices(p)
        if allowed and re.fullmatch(r"[a-z0-9][a-z0-9-]*", value) and value not in allowed:
            return f"`tuner {' '.join(path)} {name}` takes {allowed}, not {value!r}"
    return None


def suggestions() -> Iterator[tuple[str, int, str, bool]]:
    for f in sources():
        for line, s in strings(f):
            for m in SUGGESTION.finditer(s):
                yield f"{f.relative_to(REPO)}:{line}", line, m.group(2), bool(m.group("lead"))


def test_every_suggested_command_and_option_exists() -> None:
    root = typer.main.get_command(app)
    seen = 0
    wrong = []
    for where, _, text, lead in suggestions():
        seen += 1
        problem = check(root, text, lead)
        if problem:
            wrong.append(f"{where}: tuner{text}: {problem}")
    assert seen > 50  # the walk finds the hints
    assert wrong == []


def test_the_check_catches_a_wrong_hint() -> None:
    root = typer.main.get_command(app)
    assert check(root, " verify --reboot if-needed", True) is not None
    assert check(root, " rollback --reboot if-needed", True) is None
    assert check(root, " sim down --state-dir X", True) is None
    assert check(root, " sim nonesuch", True) is not None
    assert check(root, " frobnicate", True) is not None
    assert check(root, " did not create it", False) is None
