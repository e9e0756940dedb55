"""Reading a YAML file into a pydantic model, with bad input reported as BadInput (exit 2):
the file, the line or the dotted field, and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import BadInput, validation_text

M = TypeVar("M", bound=BaseModel)


def load_model(
    path: Path, model: type[M], what: str, empty: bool = False
) -> tuple[M, dict[str, Any]]:
    """Parse `path` as a YAML mapping and validate it as `model`; `empty`: {} if blank."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise BadInput(
            f"not valid YAML: {getattr(e, 'problem', e)}", file=str(path), field=where
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read: {e}", file=str(path)) from e
    if raw is None and empty:
        raw = {}
    if not isinstance(raw, dict):
        raise BadInput(f"a {what} must be a YAML mapping", file=str(path))
    try:
        return model.model_validate(raw), raw
    except ValidationError as e:
        loc, msg = validation_text(e, model)
        raise BadInput(msg, file=str(path), field=loc) from e
