"""Errors that end a command with a clear message instead of a traceback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic is imported by what raises these, not by the CLI's start-up
    from pydantic import BaseModel, ValidationError

MAX_MESSAGE = 2000


def short(v: object, n: int = 120) -> str:
    """A value for a message: at most `n` characters, the rest counted, not shown."""
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else f"{s[:n]}... ({len(s) - n} more characters)"


class TunerError(Exception):
    """An error the user can act on. `exit_code` follows the CLI's convention."""

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = short(file, 300) if file else file
        self.field = short(field, 120) if field else field
        message = short(message, MAX_MESSAGE)
        self.detail = message
        where = ": ".join(x for x in (file, field) if x)
        super().__init__(f"{where}: {message}" if where else message)

    def to_json(self) -> dict[str, str | None]:
        return {"error": str(self), "file": self.file, "field": self.field}


class BadInput(TunerError):
    """Invalid profile, inventory, flag or value: nothing was touched (exit 2)."""

    exit_code = 2


class Failed(TunerError):
    """The command ran but could not finish its work (exit 1)."""

    exit_code = 1


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    from pydantic import BaseModel

    m = model
    for part in loc[:-1]:
        fields = {f.alias or n: f for n, f in m.model_fields.items()}
        f = fields.get(str(part))
        ann = f.annotation if f else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        m = ann
    return [f.alias or n for n, f in m.model_fields.items()]


def validation_text(e: ValidationError, model: type[BaseModel] | None = None) -> tuple[str, str]:
    """The field (dotted) and a message for the first error of a pydantic validation."""
    err = e.errors()[0]
    loc = ".".join(
        str(x) for x in err["loc"] if not str(x).startswith(("function-", "constrained"))
    )
    loc = short(re.sub(r"\.(str|int|bool|literal\[.*?\])$", "", loc), 200)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, tuple(err["loc"])) if model is not None else []
        msg = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    elif err["type"] == "string_pattern_mismatch":
        pattern = err["ctx"]["pattern"]
        msg = f"value {short(repr(err.get('input')))} is not allowed here (allowed: {pattern})"
    elif "input" in err and err["type"] not in ("missing",):
        msg = f"{msg} (got {short(repr(err['input']))})"
    more = f" (and {len(e.errors()) - 1} more errors)" if len(e.errors()) > 1 else ""
    return loc, msg + more
