"""Errors that end a command with a clear message instead of a traceback."""

from __future__ import annotations


class TunerError(Exception):
    """An error the user can act on. `exit_code` follows the CLI's convention."""

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
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
