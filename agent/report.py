"""Reports: what apply, verify and rollback found per host, as pydantic models (the --json
output; docs/json.md is their schema).

A host's report carries `layers`: one `LayerPart` per layer that ran on it (the layer's
status in the command's host words, its message, and its own `detail`, a model the layer
defines: agent/layers/*.py), and the host's `status`, the worst of its layers'. Nothing here
names a layer: the orchestrator (agent/layers/run.py) fills the parts, each layer prints its
table (`print_report`).

Schema 2 (SCHEMA_VERSION) moved each layer's part under `layers`; the fields a host had in
schema 1 (`settings`, `files`, `facts`, `bios`, `cmdline`) are still written beside it (the
layers' `v1_keys`), so readers of schema 1 keep working, and a schema-1 document still
loads (`_upgrade`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from agent.runner import RunSecurity

SCHEMA_VERSION = 2


class LayerPart(BaseModel):
    """One layer's part of a host report."""

    status: str  # the layer's status on this host, in the command's host words
    message: str = ""  # why, when failed / not started / skipped
    detail: Any = None  # the layer's own part (its model; docs/json.md per layer)


def _upgrade(command: str, data: Any) -> Any:
    """A schema-1 host document (`layers: {name: status}`) -> schema 2, each registered
    layer reading its own part back from its schema-1 fields."""
    if not isinstance(data, dict):
        return data
    old = data.get("layers")
    if not isinstance(old, dict) or not any(isinstance(v, str) for v in old.values()):
        return data
    from agent import layers

    parts: dict[str, Any] = {}
    for layer in layers.make("all"):
        status = old.get(layer.name)
        if isinstance(status, str):
            detail = layer.from_v1(command, data)
            parts[layer.name] = {"status": status, "detail": detail}
    return {**data, "layers": parts}


class _Host(BaseModel):
    # extra: the schema-1 fields of each layer's part (see the module's docstring)
    model_config = ConfigDict(extra="allow")

    host: str
    message: str = ""
    layers: dict[str, LayerPart] = {}  # layer -> its part on this host

    def detail(self, layer: str) -> Any:
        part = self.layers.get(layer)
        return None if part is None else part.detail


class HostApply(_Host):
    status: Literal["unchanged", "changed", "would change", "failed", "unreachable", "not started"]

    @model_validator(mode="before")
    @classmethod
    def _v1(cls, data: Any) -> Any:
        return _upgrade("apply", data)


class Summary(BaseModel):
    hosts: int
    by_status: dict[str, int]


class Batches(BaseModel):
    """How the layers ran: rolling batches and the failure cap (whole run, every layer)."""

    batch_size: int
    max_failed: int | None
    batches: int  # batches started
    failed: int  # hosts failed or unreachable, across all batches
    stopped: bool  # the cap was exceeded: later batches were not started
    artifacts: list[str] = []  # every ansible-runner run, in order


class _Report(BaseModel):
    # extra: a layer's run-level part (`Layer.finish`, e.g. the BIOS run's `bios`)
    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    inventory: str
    artifacts: str  # the last run's
    layers: list[str] = []  # the layers that ran, in order
    summary: Summary
    security: RunSecurity = RunSecurity()  # what the run relaxed (--insecure...)


class ApplyReport(_Report):
    command: Literal["apply"] = "apply"
    profile: str
    check: bool
    hosts: list[HostApply]
    batches: Batches | None = None

    @property
    def exit_code(self) -> int:
        bad = ("failed", "unreachable", "not started")
        return 1 if any(h.status in bad for h in self.hosts) else 0


class CrossResult(BaseModel):
    """A cross-layer check's result read back from a document (the check's own model, e.g.
    agent/bios/models.py `CrossCheck`, when the run made it): at least `status`."""

    model_config = ConfigDict(extra="allow")

    id: str = ""
    status: str = ""  # ok | mismatch | unknown
    message: str = ""


class HostVerify(_Host):
    # pending: nothing drifted, but values are set and wait for a reboot
    status: Literal["ok", "pending", "drift", "failed", "unreachable"]
    cross: list[Any] = []  # the cross-layer checks (agent/layers/base.py `Cross`)

    @model_validator(mode="before")
    @classmethod
    def _v1(cls, data: Any) -> Any:
        return _upgrade("verify", data)

    @field_validator("cross", mode="before")
    @classmethod
    def _cross(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [CrossResult.model_validate(c) if isinstance(c, dict) else c for c in v]
        return v


class VerifyReport(_Report):
    command: Literal["verify"] = "verify"
    profile: str
    hosts: list[HostVerify]

    @property
    def exit_code(self) -> int:
        """0 only when every host conforms; `pending` does not conform yet (exit 1)."""
        return 0 if all(h.status == "ok" for h in self.hosts) else 1


class FileRestore(BaseModel):
    """A file a rollback put back (any layer that restores files)."""

    path: str
    status: Literal[
        "restored", "would restore", "unchanged", "removed", "would remove", "gone", "failed"
    ]
    message: str = ""


class HostRollback(_Host):
    status: Literal[
        "restored",
        "would restore",
        "pending reboot",
        "nothing to do",
        "failed",
        "unreachable",
        "not started",
    ]

    @model_validator(mode="before")
    @classmethod
    def _v1(cls, data: Any) -> Any:
        return _upgrade("rollback", data)


class RollbackReport(_Report):
    command: Literal["rollback"] = "rollback"
    check: bool
    hosts: list[HostRollback]
    batches: Batches | None = None

    @property
    def exit_code(self) -> int:
        bad = ("failed", "unreachable", "not started")
        return 1 if any(h.status in bad for h in self.hosts) else 0


def summary(statuses: list[str]) -> Summary:
    by: dict[str, int] = {}
    for s in statuses:
        by[s] = by.get(s, 0) + 1
    return Summary(hosts=len(statuses), by_status=by)


def counts(s: Summary) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(s.by_status.items()))
