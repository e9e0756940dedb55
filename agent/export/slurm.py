"""Slurm: the usable node list in Slurm's hostlist form (ClusterShell's NodeSet folds it),
`scontrol update ... State=DRAIN` lines for excluded and failed nodes, and a gres.conf line
per usable node naming its usable GPUs' render devices.

The file is a POSIX sh fragment to source: USABLE_NODES and EXCLUDED_NODES for
`srun --nodelist "$USABLE_NODES"`, a function `tuner_drain` with the scontrol lines (sourcing
runs nothing), and the gres.conf lines as comments to copy. Reasons are untrusted text: quoted
with shlex.quote.
"""

from __future__ import annotations

import shlex
from functools import lru_cache

from ClusterShell.NodeSet import NodeSet

from agent.gpu.gate import GpuInventory


def nodeset(names: list[str]) -> str:
    return str(NodeSet.fromlist(names)) if names else ""


def drain_reason(text: str) -> str:
    clean = " ".join(text.replace('"', "'").split())[:200]
    return f"tuner: {clean}" if clean else "tuner: excluded"


@lru_cache(maxsize=1024)
def _folded(devices: tuple[str, ...]) -> str:
    return nodeset(list(devices))


def gres_line(name: str, devices: list[str]) -> str:
    # most nodes have the same render devices: fold each distinct set once
    return f"NodeName={name} Name=gpu File={_folded(tuple(devices))}"


def render(inv: GpuInventory) -> str:
    usable = [n for n in inv.nodes if n.usable]
    out = [n for n in inv.nodes if not n.usable]
    lines = [
        "# Written by `tuner export --format slurm`.",
        "# usable nodes (srun --nodelist / sbatch --nodelist):",
        f"USABLE_NODES={shlex.quote(nodeset([n.name for n in usable]))}",
        "# excluded or failed nodes (srun --exclude):",
        f"EXCLUDED_NODES={shlex.quote(nodeset([n.name for n in out]))}",
        "# drain what the gate took out: run `tuner_drain` as the Slurm admin",
        "tuner_drain() {",
    ]
    for n in out:
        reason = shlex.quote(drain_reason(n.reason or n.status))
        lines.append(f"  scontrol update NodeName={n.name} State=DRAIN Reason={reason}")
    lines += ["  :", "}"]
    lines.append("# gres.conf lines: the usable GPUs of each node by DRM render device")
    for n in usable:
        devs = [g.render_node for g in n.usable if g.render_node]
        if len(devs) == len(n.usable):
            lines.append("# " + gres_line(n.name, devs))
        else:
            lines.append(f"# {n.name}: render devices unknown for some usable GPUs")
    return "\n".join(lines) + "\n"
