"""Levels 2 and 3 on this node, without Ansible (`tuner check --local --level 2`).

For a node that checks itself: a Slurm HealthCheckProgram or prolog, a node agent, an
engineer on the node. The same planner, budget, node runner (`node.py`, the tools found
under `--root`), parsers, policy and verdicts as the fleet run; what needs other nodes does
not run here: the all-reduce across nodes is listed as skipped, and fleet-relative
stragglers compare this node's GPUs with each other only (a node-level figure needs a
fleet)."""

from __future__ import annotations

from typing import Any

from agent.diag.plan import DiagPlan, Skipped
from agent.diag.policy import DiagPolicy
from agent.diag.run import CLUSTER, DiagReport, _fleet_relative, join, judge, narrow_vars, targets


def local_plan(plan: DiagPlan) -> DiagPlan:
    """The plan without what needs other nodes."""
    if CLUSTER not in plan.run:
        return plan
    return plan.model_copy(
        update={
            "run": [t for t in plan.run if t != CLUSTER],
            "skipped": [
                *plan.skipped,
                Skipped(test=CLUSTER, reason="across nodes: not with --local"),
            ],
        }
    )


def run_local(
    root: str, plan: DiagPlan, policy: DiagPolicy, gpus: dict[str, list[dict[str, Any]]]
) -> DiagReport:
    """Run the planned tests on this node in-process and judge them (no Ansible)."""
    from agent.diag.node import run_plan

    plan = local_plan(plan)
    rep = DiagReport(plan=plan, policy=policy.file)
    if not plan.run or not gpus:
        return rep
    tests = policy.tests.named()
    [(node, gs)] = list(gpus.items())
    try:
        runs = run_plan(
            root,
            [{"name": n, "deadline": tests[n].seconds * 2} for n in plan.run],
            gs,
            narrow_vars(policy, plan.run),
            plan.budget,
        )
    except OSError as e:  # fail closed: the node's GPUs stay unknown
        rep.failed[node] = f"diagnostics could not run: {e}"
        return rep
    from agent.diag.evaluate import ToolRun

    rep.nodes.append(
        judge(node, [g["bdf"] for g in gs], [ToolRun.model_validate(r) for r in runs], policy)
    )
    _fleet_relative(rep, policy)
    return rep


def diag_local(
    root: str,
    result: Any,
    facts: list[Any],
    policy: Any,
    options: Any,
    dpol: DiagPolicy,
    dplan: DiagPlan,
) -> Any:
    """The level-1 result of this node joined with its level 2/3 verdicts (the CLI's
    `check --local --level N` hook)."""
    rep = run_local(root, dplan, dpol, targets(result.nodes))
    return join(result, rep, facts, policy, options)
