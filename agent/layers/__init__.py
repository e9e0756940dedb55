"""Layers: the parts of a node tuner tunes, each with the same small interface.

A layer (`base.Layer`) has `facts`, `plan`, `apply`, `verify` and `rollback`, each working on
one batch of validated hosts and returning one `HostResult` per host; `targets` validates
its host variables before anything runs; its class declares its name, order, profile
section, options, report part and part in the reboot. The orchestrator (`run.execute`)
runs the selected layers in rolling batches with the failure cap and the reboot plan.

`REGISTRY` below is the only place that lists the layers: the orchestrator, profiles,
reports, `tuner ready` and the CLI loop over it. Adding a layer is one line here (see
docs/architecture.md "Adding a layer"). This module stays light (the CLI reads it at
start-up) and imports no layer: agent/profiles.py and agent/report.py read it, and the
layers import those (no import circle). Layer modules are imported on first use; the types
here are `Any` for that reason (each is a `base.Layer` subclass, `base.Cross`...).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from agent.errors import BadInput

# One line per layer: its --layer word -> "module:class". They run in their classes' `order`.
REGISTRY: dict[str, str] = {
    "cmdline": "agent.layers.cmdline:CmdlineLayer",  # kernel command line (bootloader)
    "bios": "agent.layers.bios:BiosLayer",  # BIOS attributes through the BMC (Redfish)
    "os": "agent.layers.os:OsLayer",  # sysctl, THP, governor, C-states
    "nic": "agent.layers.nic:NicLayer",  # scale-out NICs: MTU, rings, IRQs, PCIe, RoCE ToS
}


@functools.cache
def classes() -> tuple[Any, ...]:
    """The registered layer classes, in run order (their `order`)."""
    out = []
    for name, where in REGISTRY.items():
        module, _, cls_name = where.partition(":")
        cls = getattr(importlib.import_module(module), cls_name)
        if cls.name != name:
            raise RuntimeError(
                f"layer {where} is registered as {name!r} but names itself {cls.name!r}"
            )
        out.append(cls)
    return tuple(sorted(out, key=lambda c: c.order))


def words() -> list[str]:
    """The --layer words, without importing any layer: the registered names and `all`."""
    return [*REGISTRY, "all"]


def names(layer: str = "all") -> list[str]:
    """The --layer word -> the layers it selects, in run order (exit 2 on a bad word)."""
    if layer not in words():
        raise BadInput(f"must be one of {', '.join(words())}, got {layer!r}", field="--layer")
    every = [c.name for c in classes()]
    return every if layer == "all" else [layer]


def make(layer: str = "all", options: dict[str, Any] | None = None) -> list[Any]:
    """The layer objects for a --layer word; `options`: each layer's own options by name
    (absent: the layer's defaults)."""
    picked = set(names(layer))
    opts = options or {}
    return [cls(opts.get(cls.name)) for cls in classes() if cls.name in picked]


def sections() -> dict[str, Any]:
    """Profile section -> its pydantic model, of every registered layer that has one."""
    out: dict[str, Any] = {}
    for cls in classes():
        schema = cls.schema()
        if cls.section and schema is not None:
            out[cls.section] = schema
    return out


def secrets() -> tuple[str, ...]:
    """The environment variables any registered layer takes as a secret (Credentials)."""
    return tuple(s for cls in classes() for s in cls.secrets)


def crosses() -> list[Any]:
    """Every registered cross-layer check (each registered with a layer it needs)."""
    return [c for cls in classes() for c in cls.crosses]
