"""Reading a YAML file into a pydantic model, with bad input reported as BadInput (exit 2):
the file, the line or the dotted field, and what is allowed.

YAML from users is untrusted: a file larger than MAX_BYTES, nested deeper than MAX_DEPTH,
or whose aliases expand it past MAX_NODES (an "alias bomb") is refused before it is built,
and a key given twice in one mapping is an error (YAML says keys are unique; PyYAML would
silently keep the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import BadInput, short, validation_text

M = TypeVar("M", bound=BaseModel)

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000


class _TooBig(yaml.constructor.ConstructorError):
    """A limit of this module (not a YAML syntax error)."""


class _Limited(yaml.SafeLoader):
    """PyYAML's safe loader with depth and duplicate-key checks."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooBig(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: PyYAML reports it below
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {short(str(key), 80)!r} (first on line {first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (a node shared through
    an alias counts each time it is used), computed without expanding."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in memo:
            return memo[id(n)]
        memo[id(n)] = 1  # guards against cycles
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(c) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        total = min(total, MAX_NODES + 1)
        memo[id(n)] = total
        return total

    return size(node)


def _read(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file as text: a regular file (a FIFO or device is refused, never waited on), at
    most `max_bytes`, UTF-8 (agent/loaders.py)."""
    from agent.loaders import read_regular

    data = read_regular(path, max_bytes, "file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 text (byte {e.start})", file=str(path)) from e


def _yaml_error(path: Path, e: yaml.YAMLError) -> BadInput:
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark else None
    problem = getattr(e, "problem", None) or str(e)
    return BadInput(f"not valid YAML: {short(str(problem), 200)}", file=str(path), field=where)


def _reader_error(path: Path, text: str, e: yaml.reader.ReaderError) -> BadInput:
    """A character YAML does not allow (a NUL byte, other control characters)."""
    line = text.count("\n", 0, e.position) + 1
    return BadInput(
        f"character U+{e.character:04X} is not allowed in YAML (control characters other "
        "than tab and newline are not text)",
        file=str(path),
        field=f"line {line}",
    )


def _compose(path: Path, text: str, not_yaml_ok: bool = False) -> yaml.Node | None:
    """The YAML node tree of `text` within the limits (not_yaml_ok: None if it is no YAML)."""
    try:
        loader = _Limited(text)  # PyYAML checks the characters here
    except yaml.reader.ReaderError as e:
        if not_yaml_ok:
            return None
        raise _reader_error(path, text, e) from e
    try:
        node = loader.get_single_node()
    except RecursionError as e:
        raise BadInput(f"nested deeper than {MAX_DEPTH} levels", file=str(path)) from e
    except _TooBig as e:
        raise _yaml_error(path, e) from e
    except yaml.YAMLError as e:
        if not_yaml_ok:
            return None
        raise _yaml_error(path, e) from e
    finally:
        loader.dispose()
    if node is not None and _expanded_size(node) > MAX_NODES:
        raise BadInput(
            f"expands to more than {MAX_NODES} values through aliases (*name): refused",
            file=str(path),
        )
    return node


def check_limits(path: Path, max_bytes: int = 32 * MAX_BYTES) -> None:
    """Size, depth and alias expansion of a file read by someone else (Ansible) that may
    be YAML: a file that is not YAML (an INI inventory) is left to its reader."""
    _compose(path, _read(path, max_bytes), not_yaml_ok=True)


def safe_load(path: Path) -> Any:
    """A YAML file as Python data, within the limits and without duplicate keys."""
    text = _read(path)
    node = _compose(path, text)
    if node is None:
        return None
    loader = _Limited(text)
    try:
        return loader.construct_document(node)
    except RecursionError as e:
        raise BadInput(f"nested deeper than {MAX_DEPTH} levels", file=str(path)) from e
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from e
    finally:
        loader.dispose()


def load_model(
    path: Path, model: type[M], what: str, empty: bool = False
) -> tuple[M, dict[str, Any]]:
    """Parse `path` as a YAML mapping and validate it as `model`; `empty`: {} if blank."""
    raw = safe_load(path)
    if raw is None and empty:
        raw = {}
    if not isinstance(raw, dict):
        raise BadInput(f"a {what} must be a YAML mapping", file=str(path))
    try:
        return model.model_validate(raw), raw
    except ValidationError as e:
        loc, msg = validation_text(e, model)
        raise BadInput(msg, file=str(path), field=loc) from e
