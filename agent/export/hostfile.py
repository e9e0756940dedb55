"""Open MPI / MPICH hostfile: `host slots=N`, N = the node's usable GPUs, usable nodes only.

Open MPI's syntax (mpirun(1), "Specifying Host Nodes"): one host per line, `slots=N`,
`#` starts a comment. MPICH's Hydra reads `host:N`; `--format hostfile` writes Open MPI's.
"""

from __future__ import annotations

from agent.export import usable_nodes
from agent.gpu.gate import GpuInventory


def render(inv: GpuInventory) -> str:
    lines = [
        "# Written by `tuner export --format hostfile`: usable nodes, slots = usable GPUs",
        f"# {inv.usable_gpus} usable GPUs on {inv.nodes_usable} of {inv.nodes_total} nodes",
    ]
    lines += [f"{n.name} slots={len(n.usable)}" for n in usable_nodes(inv)]
    return "\n".join(lines) + "\n"
