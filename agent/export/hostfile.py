"""Open MPI / MPICH hostfile: `host slots=N`, N = the node's usable GPUs, usable nodes only.

Open MPI's syntax (mpirun(1), "Specifying Host Nodes"): one host per line, `slots=N`,
`#` starts a comment. MPICH's Hydra reads `host:N`; `--format hostfile` writes Open MPI's.
Names are checked by agent/export/encode.py (host names or addresses only).
"""

from __future__ import annotations

from agent.export import usable_nodes
from agent.export.encode import hostname
from agent.gpu.gate import GpuInventory


def render(inv: GpuInventory) -> str:
    lines = [
        "# Written by `tuner export --format hostfile`: usable nodes, slots = usable GPUs",
        f"# {inv.usable_gpus} usable GPUs on {inv.nodes_usable} of {inv.nodes_total} nodes",
    ]
    # a name that is not a host name would be read as more hosts or options: refused
    lines += [
        f"{hostname(n.name, f'node {n.name!r}: name')} slots={len(n.usable)}"
        for n in usable_nodes(inv)
    ]
    return "\n".join(lines) + "\n"
