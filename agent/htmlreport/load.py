"""Read the reports `tuner report` renders, through the existing report models.

A report is what `tuner check -o` / `tuner ready -o` (the usable-GPU inventory),
`tuner ready --json` (inventory + each host's verify answer) or `tuner verify --json` /
`tuner apply --json` (per-layer tuning) wrote. Several files may be given for one side
(`--from check.json --from verify.json`): at most one GPU inventory and one tuning report.
Everything is validated before anything is written (exit 2 with the file and field named).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import BadInput, validation_text
from agent.gpu.gate import GpuInventory
from agent.ready import HostReady
from agent.report import ApplyReport, VerifyReport

KINDS = (
    "a usable-GPU inventory (tuner check -o / ready -o), tuner ready --json, "
    "or tuner verify / apply --json"
)


class _Head(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    schema_: Any = Field(default=None, alias="schema")
    command: Any = None


class _ReadyHosts(BaseModel):
    """The verify side of `tuner ready --json` (its `gpus` is read by the export loader)."""

    model_config = ConfigDict(extra="ignore")
    profile: str
    strict: bool = False
    passed: bool
    reasons: list[str] = []
    hosts: list[HostReady]


@dataclass
class Side:
    """One side of the comparison (`--from` or `--since`): what its files held."""

    files: list[str] = field(default_factory=list)
    inventory: GpuInventory | None = None
    inventory_file: str | None = None
    tuning: VerifyReport | ApplyReport | None = None
    tuning_file: str | None = None
    ready: _ReadyHosts | None = None
    ready_file: str | None = None


MAX_BYTES = 1 << 30  # a 10,000-node GPU report is ~50 MB


def _read(path: str) -> str:
    """A regular file only (not a FIFO or a device that never ends), at most MAX_BYTES.
    (The trust-data branch's agent/loaders.py read_text does this for every loader.)"""
    p = Path(path)
    try:
        st = p.stat()
        if not p.is_file():
            raise BadInput("not a regular file", file=path)
        if st.st_size > MAX_BYTES:
            raise BadInput(f"larger than {MAX_BYTES >> 20} MiB: not a tuner report", file=path)
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise BadInput(f"cannot read the report: {why}", file=path) from e


def _model(model: type[BaseModel], text: str, path: str) -> Any:
    try:
        return model.model_validate_json(text)
    except ValidationError as e:
        fld, msg = validation_text(e, model)
        raise BadInput(msg, file=path, field=fld or None) from e


def load_side(paths: list[str], option: str) -> Side:
    """Validate every file of one side (exit 2 on the first bad one)."""
    from agent.export import load_report

    side = Side(files=list(paths))
    for path in paths:
        text = _read(path)
        try:
            head = _Head.model_validate_json(text)
        except ValidationError as e:
            raise BadInput(
                f"not JSON, or not a tuner report: {e.errors()[0]['msg']}", file=path
            ) from e
        schema = str(head.schema_ or "")
        command = str(head.command or "")
        if schema.startswith("tuner.ready/") or command == "ready":
            _one(side.inventory_file, path, "GPU inventory", option)
            _one(side.ready_file, path, "tuner ready report", option)
            side.ready, side.ready_file = _model(_ReadyHosts, text, path), path
            side.inventory, side.inventory_file = load_report(path), path
        elif schema.startswith("tuner.gpu-inventory/"):
            _one(side.inventory_file, path, "GPU inventory", option)
            side.inventory, side.inventory_file = load_report(path), path
        elif command in ("verify", "apply"):
            _one(side.tuning_file, path, "tuning report (verify / apply)", option)
            model = VerifyReport if command == "verify" else ApplyReport
            side.tuning, side.tuning_file = _model(model, text, path), path
        elif command == "rollback":
            raise BadInput(
                f"a rollback report says what was restored, not how the fleet stands; give {KINDS}",
                file=path,
                field=option,
            )
        else:
            raise BadInput(f"not a report tuner can render; give {KINDS}", file=path, field=option)
    return side


def _one(already: str | None, path: str, what: str, option: str) -> None:
    if already is not None:
        raise BadInput(
            f"two files hold a {what} ({already} and {path}); {option} takes one of each kind",
            file=path,
            field=option,
        )
