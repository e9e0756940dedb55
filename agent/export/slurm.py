"""Slurm: the usable node list in Slurm's hostlist form (ClusterShell's NodeSet folds it),
`scontrol update ... State=DRAIN` lines for excluded and failed nodes, and a gres.conf line
per usable node naming its usable GPUs' render devices.

The file is a POSIX sh fragment to source: USABLE_NODES and EXCLUDED_NODES for
`srun --nodelist "$USABLE_NODES"`, a function `tuner_drain` with the scontrol lines (sourcing
runs nothing), and the gres.conf lines as comments to copy. Everything in it came from a report,
so from nodes, and goes through agent/export/encode.py: node names must be host names, render
devices /dev/dri/renderD<N>, and reasons are one shell word (shlex.quote) with no control
character; anything else makes the export refuse (exit 2). tests/test_trust.py sources the
file with bash to prove that nothing in it runs.
"""

from __future__ import annotations

from functools import lru_cache

from ClusterShell.NodeSet import NodeSet

from agent.export.encode import hostname, render_node, shell_comment, shell_word
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
    for i, n in enumerate(inv.nodes):
        hostname(n.name, f"nodes.{i}.name")
    usable = [n for n in inv.nodes if n.usable]
    out = [n for n in inv.nodes if not n.usable]
    lines = [
        "# Written by `tuner export --format slurm`.",
        "# usable nodes (srun --nodelist / sbatch --nodelist):",
        f"USABLE_NODES={shell_word(nodeset([n.name for n in usable]), 'USABLE_NODES')}",
        "# excluded or failed nodes (srun --exclude):",
        f"EXCLUDED_NODES={shell_word(nodeset([n.name for n in out]), 'EXCLUDED_NODES')}",
        "# drain what the gate took out: run `tuner_drain` as the Slurm admin",
        "tuner_drain() {",
    ]
    for n in out:
        reason = shell_word(drain_reason(n.reason or n.status), f"node {n.name}: reason")
        lines.append(f"  scontrol update NodeName={n.name} State=DRAIN Reason={reason}")
    lines += ["  :", "}"]
    lines.append("# gres.conf lines: the usable GPUs of each node by DRM render device")
    for n in usable:
        devs = [
            render_node(g.render_node, f"node {n.name}: render_node")
            for g in n.usable
            if g.render_node
        ]
        if len(devs) == len(n.usable):
            lines.append("# " + shell_comment(gres_line(n.name, devs), f"node {n.name}: gres"))
        else:
            lines.append(f"# {n.name}: render devices unknown for some usable GPUs")
    return "\n".join(lines) + "\n"
