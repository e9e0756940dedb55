"""Layers: the parts of a node tuner tunes, each with the same small interface.

A layer (`base.Layer`) has `facts`, `plan`, `apply`, `verify` and `rollback`, each working on
one batch of validated hosts and returning one `HostResult` per host; `targets` validates
its host variables before anything runs; `fill` and `table` build its part of the reports.
The orchestrator (`run.execute`) runs the selected layers in rolling batches with the
failure cap and combines the hosts' statuses.

Layers, in the order they run on a host:

* `cmdline` (`cmdline.CmdlineLayer`): the kernel command line through the bootloader
  configuration; first, so that a BIOS reset of the same batch also boots it (its `settle`
  reboots, after the BIOS layer, the hosts no BIOS reset rebooted).
* `bios` (`bios.BiosLayer`): BIOS attributes through the BMC (Redfish); its reset reboots.
* `os` (`os.OsLayer`): sysctl, THP, governor, C-states through Ansible.
* `nic` (`nic.NicLayer`): the scale-out NICs' runtime values (after the reboot step, as the
  OS's).

A new layer is a `Layer` subclass in its own file, an entry in `ORDER` and `make`, and its
part of the host reports (agent/report.py, docs/json.md).
"""

from __future__ import annotations

from typing import Any

from agent.errors import BadInput
from agent.layers.base import Layer

ORDER = ("cmdline", "bios", "os", "nic")
CHOICES = ("os", "bios", "cmdline", "nic", "all")


def names(layer: str) -> list[str]:
    """The --layer word -> the layers it selects, in run order (exit 2 on a bad word)."""
    if layer not in CHOICES:
        raise BadInput(f"must be one of {', '.join(CHOICES)}, got {layer!r}", field="--layer")
    return list(ORDER) if layer == "all" else [layer]


def make(layer: str, bios_options: Any = None) -> list[Layer]:
    """The layer objects for a --layer word (BIOS options: agent.layers.bios.BiosOptions)."""
    from agent.layers.bios import BiosLayer, BiosOptions
    from agent.layers.cmdline import CmdlineLayer
    from agent.layers.nic import NicLayer
    from agent.layers.os import OsLayer

    o = bios_options or BiosOptions()
    out: list[Layer] = []
    for n in names(layer):
        if n == "bios":
            out.append(BiosLayer(o))
        elif n == "cmdline":
            out.append(CmdlineLayer(o.reboot, o.reset_timeout, o.also_reset))
        elif n == "nic":
            out.append(NicLayer())
        else:
            out.append(OsLayer())
    return out
