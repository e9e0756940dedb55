"""The gate on this node alone (`tuner check --local`): collect through amdsmi in-process,
evaluate with the policy, no Ansible. The level-1 path; `agent/slurmgate.py` runs it under a
watchdog as Slurm's HealthCheckProgram or Prolog.

One node is a fleet of one: the same `gate()` as the fleet's, so the verdict, the JSON and
the exit code (0 passed, 1 failed) are the fleet's for that node."""

from __future__ import annotations

from agent.gpu.gate import GateOptions, GpuInventory, NodeEntry
from agent.gpu.model import NodeFacts
from agent.gpu.policy import Policy


def collect(root: str = "/") -> NodeFacts:
    """This node's facts (amdsmi, PCI sysfs, host facts under `root`)."""
    from agent.gpu.run import local_facts

    return local_facts(root)


def evaluate(facts: NodeFacts, policy: Policy, options: GateOptions) -> GpuInventory:
    """The gate over this one node's facts (pure)."""
    from agent.gpu.run import gate

    return gate([facts], {}, [facts.name], policy, options)


def check_local(root: str, policy: Policy, options: GateOptions) -> GpuInventory:
    """Level 1 on this node: collect, then evaluate."""
    return evaluate(collect(root), policy, options)


def node_verdict(inv: GpuInventory) -> tuple[bool, str]:
    """Whether this node may take jobs, and why not, from a one-node inventory.

    The node passes only when the gate passed and every GPU it has is usable: a scheduler
    hands out GPUs by count (Slurm's gres, the device plugin's amd.com/gpu), so a node with
    an excluded GPU would still give that GPU to a job (fail closed)."""
    if not inv.nodes:
        return False, "no verdict for the node"
    n: NodeEntry = inv.nodes[0]
    if inv.gate.passed and n.status == "ok":
        return True, f"{len(n.usable)} GPUs usable"
    parts: list[str] = []
    for e in n.excluded:
        where = f"GPU {e.index}" if e.index is not None else f"GPU {e.bdf or '?'}"
        checks = ",".join(c.check for c in e.checks) or "excluded"
        parts.append(f"{where} {checks}")
    if n.reason and n.status != "ok":
        parts.insert(0, n.reason)
    if not parts:
        parts = list(inv.gate.reasons) or [f"node {n.status}"]
    installed = n.installed if n.installed is not None else "?"
    return False, f"{len(n.usable)}/{installed} GPUs usable: " + "; ".join(parts)
