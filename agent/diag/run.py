"""`tuner check --level 2|3`: the diagnostics over the fleet (the edges: Ansible, reports).

After the level-1 gate: every node with usable GPUs runs the planned tools once (nodes in
parallel, each under the budget); the controller parses and judges the output
(`evaluate.py`), flags fleet stragglers, and a GPU stays usable only when level 1 passed it
and every planned test passed it (a warn keeps it, with the reason)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from agent.diag.evaluate import RANK, NodeDiag, ToolRun, evaluate
from agent.diag.plan import DiagPlan
from agent.diag.policy import DiagPolicy
from agent.diag.stragglers import Straggler, stragglers

CLUSTER = "rccl.all_reduce.cluster"
BDF = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\Z")


class DiagReport(BaseModel):
    plan: DiagPlan
    policy: str | None
    nodes: list[NodeDiag] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)  # node -> why it gave no result
    stragglers: dict[str, list[Straggler]] = Field(default_factory=dict)  # metric -> flagged
    excluded: dict[str, dict[str, str]] = Field(default_factory=dict)  # node -> BDF -> why
    cluster: dict[str, Any] = Field(default_factory=dict)  # level 3 across nodes
    runtimes: dict[str, str] = Field(default_factory=dict)  # node -> the module's python


def targets(gate_nodes: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """node -> the GPUs level 1 left usable, as {bdf, hip}. Node-derived values are
    checked here: only a well-formed BDF and an integer HIP index go to Ansible."""
    out: dict[str, list[dict[str, Any]]] = {}
    for n in gate_nodes:
        gpus = []
        for e in n.usable:
            bdf = (e.bdf or "").lower()
            if BDF.match(bdf) and isinstance(e.index, int) and not isinstance(e.index, bool):
                gpus.append({"bdf": bdf, "hip": e.index})
        if gpus:
            out[n.name] = gpus
    return out


def run_fleet(  # noqa: C901 - the node phase, then the cross-node one
    inv: Any,
    plan: DiagPlan,
    policy: DiagPolicy,
    gpus: dict[str, list[dict[str, Any]]],
    forks: int | None,
    progress: Any,
) -> DiagReport:
    import time

    from agent.runner import run_playbook

    rep = DiagReport(plan=plan, policy=policy.file)
    hosts = [h for h in inv.hosts if h.name in gpus]
    if not plan.run or not hosts:
        return rep
    tests = policy.tests.named()
    node_tests = [n for n in plan.run if n != CLUSTER]
    start = time.monotonic()
    if node_tests:
        budget = plan.budget
        if budget is not None and CLUSTER in plan.run:
            budget -= tests[CLUSTER].seconds  # what the planner kept for the cross-node run
        extravars: dict[str, Any] = {
            "tuner_diag_tests": [{"name": n, "deadline": tests[n].seconds * 2} for n in node_tests],
            "tuner_diag_gpus": {h.name: gpus[h.name] for h in hosts},
            "tuner_diag_budget": budget,
        }
        narrow = narrow_vars(policy, node_tests)
        if narrow:
            extravars["tuner_diag_narrow"] = narrow
        sub = inv.model_copy(update={"hosts": hosts})
        outcomes, _ = run_playbook(
            "diag.yml", sub, extravars, forks=forks, progress=progress, module="tuner_diag"
        )
        for h in hosts:
            o = outcomes.get(h.name)
            if o is None or o.status != "ok":
                rep.failed[h.name] = (o.message or o.status) if o else "no result"
                continue
            runs = [ToolRun.model_validate(r) for r in (o.facts.get("runs") or [])]
            rep.runtimes[h.name] = str(o.facts.get("python") or "")
            rep.nodes.append(judge(h.name, [g["bdf"] for g in gpus[h.name]], runs, policy))
    if CLUSTER in plan.run:
        left = None if plan.budget is None else plan.budget - (time.monotonic() - start)
        _cluster(inv, rep, policy, gpus, forks, progress, left)
    _fleet_relative(rep, policy)
    return rep


def narrow_vars(policy: DiagPolicy, run: list[str]) -> dict[str, Any] | None:
    """What the node needs to narrow a slow all-reduce itself (leave-one-out reruns)."""
    ar = policy.tests.all_reduce
    if ar is not None and ar.min_busbw_gbps is not None and "rccl.all_reduce" in run:
        return {"message_bytes": ar.message_bytes, "min_busbw": ar.min_busbw_gbps}
    return None


def cluster_set(rep: DiagReport, gpus: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """The usable set for the cross-node run: node -> its GPUs still usable after the
    node tests (every GPU level 1 passed when no node test ran)."""
    by_node = {d.node: d for d in rep.nodes}
    out: dict[str, int] = {}
    for node, gs in gpus.items():
        if node in rep.failed:
            continue
        d = by_node.get(node)
        n = (
            len(gs)
            if d is None
            else sum(1 for g in gs if RANK[d.verdict(g["bdf"])] <= RANK["warn"])
        )
        if n:
            out[node] = n
    return out


def _cluster(
    inv: Any,
    rep: DiagReport,
    policy: DiagPolicy,
    gpus: dict[str, list[dict[str, Any]]],
    forks: int | None,
    progress: Any,
    budget: float | None,
) -> None:
    """Level 3 across nodes: one task on the first node of the usable set launches the
    all-reduce under mpirun over the set and bisects it (agent/diag/cluster.py); the
    recorded runs are replayed here into verdicts per node."""
    from agent.runner import run_playbook

    ct = policy.tests.cluster
    assert ct is not None
    slots = cluster_set(rep, gpus)
    names = [h.name for h in inv.hosts if h.name in slots]
    if len(names) < 2:
        rep.cluster = {"skipped": f"{len(names)} node(s) with usable GPUs: needs 2 or more"}
        return
    launcher = next(h for h in inv.hosts if h.name == names[0])
    extravars = {
        "tuner_diag_cluster": {
            "hosts": names,
            "slots": slots,
            "message_bytes": ct.message_bytes,
            "relative": ct.relative,
            "floor": ct.min_busbw_gbps,
            "max_runs": ct.max_runs,
            "deadline": ct.seconds * 2,
            "budget": budget,
        },
        "tuner_diag_budget": (budget if budget is not None else ct.seconds * ct.max_runs),
    }
    sub = inv.model_copy(update={"hosts": [launcher]})
    outcomes, _ = run_playbook(
        "diag.yml", sub, extravars, forks=forks, progress=progress, module="tuner_diag"
    )
    o = outcomes.get(launcher.name)
    if o is None or o.status != "ok":
        why = (o.message or o.status) if o else "no result"
        judge_cluster(rep, gpus, names, [], policy, f"launching node {launcher.name}: {why}")
        return
    runs = [ToolRun.model_validate(r) for r in (o.facts.get("runs") or [])]
    judge_cluster(rep, gpus, names, runs, policy)


def judge_cluster(
    rep: DiagReport,
    gpus: dict[str, list[dict[str, Any]]],
    names: list[str],
    runs: list[ToolRun],
    policy: DiagPolicy,
    failed: str | None = None,
) -> None:
    """The cross-node runs -> a finding on each GPU of each node in the set: `fail` on the
    nodes the bisect found slow, `unknown` on those it could not clear (fail closed)."""
    from agent.diag.cluster import replay
    from agent.diag.evaluate import Finding, NodeDiag

    ct = policy.tests.cluster
    assert ct is not None
    missing = next((r.missing for r in runs if r.missing), None)
    if failed or missing or not runs:
        why = failed or (f"tool missing: {missing}" if missing else "no run: the budget ran out")
        res: dict[str, Any] = {"passed": False, "bad": [], "unresolved": names, "reason": why}
    else:
        res = replay(names, runs, ct.message_bytes, ct.relative, ct.min_busbw_gbps, ct.max_runs)
    rep.cluster = {"hosts": names, **res}
    kept = {r.test: r.output[-4000:] for r in runs if r.output and r.timed_out}
    if kept:
        rep.cluster["kept_output"] = kept
    by_node = {d.node: d for d in rep.nodes}
    for node in names:
        d = by_node.get(node)
        if d is None:
            d = NodeDiag(node=node)
            rep.nodes.append(d)
            by_node[node] = d
        if node in res["bad"]:
            f = Finding(
                test=CLUSTER,
                status="fail",
                detail=f"this node slows the all-reduce across nodes: {res['reason']}",
            )
        elif node in res["unresolved"]:
            f = Finding(
                test=CLUSTER,
                status="unknown",
                detail=f"not cleared by the all-reduce across nodes: {res['reason']}",
            )
        else:
            f = Finding(test=CLUSTER, status="pass", detail=str(res["reason"]))
        for g in gpus.get(node, []):
            d.add(g["bdf"], f)
    if res.get("passed") is not None:
        d0 = by_node[names[0]]
        d0.node_findings.append(
            Finding(
                test=CLUSTER,
                status="pass" if res["passed"] else "fail",
                detail=f"{len(names)} nodes from {names[0]}: {res['reason']}",
            )
        )


def judge(node: str, bdfs: list[str], runs: list[ToolRun], policy: DiagPolicy) -> NodeDiag:
    """One node's runs -> its findings (the leave-one-out reruns feed the narrowing)."""
    main = [r for r in runs if "/without/" not in r.test]
    without = {r.test.split("/without/", 1)[1]: r for r in runs if "/without/" in r.test}
    narrow = None
    if without:
        from agent.diag.parse import parse_rccl

        ar = policy.tests.all_reduce
        size = ar.message_bytes if ar else 8 * 2**30

        def narrow(subset: list[str]) -> float | None:
            out = set(bdfs) - set(subset)
            r = without.get(next(iter(out))) if len(out) == 1 else None
            return None if r is None or r.timed_out else parse_rccl(r.output).busbw_at(size)

    return evaluate(node, bdfs, main, policy, narrow)


def _fleet_relative(rep: DiagReport, policy: DiagPolicy) -> None:
    """Stragglers per metric across the fleet, then each node's excluded GPUs."""
    per_node: dict[str, float] = {}
    per_gpu: dict[str, dict[str, float]] = {}
    for d in rep.nodes:
        for test, vals in d.metrics.items():
            if test == "rccl.all_reduce" and "node" in vals:
                per_node[d.node] = vals["node"]
            elif test in ("rvs.gst", "rvs.babel", "rvs.pebb", "transferbench.p2p.h2d"):
                for bdf, v in vals.items():
                    per_gpu.setdefault(test, {})[f"{d.node}/{bdf}"] = v
    flagged = {"rccl.all_reduce": stragglers(per_node, policy.stragglers)}
    for test, vals in per_gpu.items():
        flagged[test] = stragglers(vals, policy.stragglers)
    rep.stragglers = {k: v for k, v in flagged.items() if v}
    from agent.diag.evaluate import Finding

    by_node = {d.node: d for d in rep.nodes}
    for test, items in rep.stragglers.items():
        for s in items:
            node, _, bdf = s.key.partition("/")
            d = by_node[node]
            detail = (
                f"fleet straggler: {s.value:g}, {s.drop:.0%} below the fleet median {s.median:g}"
            )
            for b in [bdf] if bdf else list(d.gpus):
                d.add(
                    b,
                    Finding(
                        test=f"{test}.fleet",
                        status=policy.stragglers.severity,
                        detail=detail,
                        value=s.value,
                    ),
                )
    for d in rep.nodes:
        for bdf in d.gpus:
            if RANK[d.verdict(bdf)] >= RANK["unknown"]:
                why = [
                    f"{f.test}: {f.detail}"
                    for f in d.gpus[bdf]
                    if RANK[f.status] >= RANK["unknown"]
                ]
                rep.excluded.setdefault(d.node, {})[bdf] = "; ".join(why)


def join(result: Any, rep: DiagReport, facts: list[Any], policy: Any, options: Any) -> Any:
    """The level-1 inventory with the diagnostics' verdicts: a GPU a test failed, or left
    unknown, moves from usable to excluded (checks `diag.<test>`), a node whose run gave no
    result loses its usable GPUs (fail closed); totals and the gate are computed again."""
    from agent.gpu.checks import CheckResult
    from agent.gpu.gate import evaluate_fleet

    by_node = {d.node: d for d in rep.nodes}
    for n in result.nodes:
        if not n.usable:
            continue
        out: dict[str, list[CheckResult]] = {}
        if n.name in rep.failed:
            for e in n.usable:
                out[e.bdf or ""] = [
                    CheckResult(
                        check="diag.run",
                        status="unknown",
                        message=f"diagnostics gave no result: {rep.failed[n.name]}",
                    )
                ]
        elif (d := by_node.get(n.name)) is not None:
            for e in n.usable:
                bdf = (e.bdf or "").lower()
                bad = [f for f in d.gpus.get(bdf, []) if RANK[f.status] >= RANK["unknown"]]
                if bad or bdf not in d.gpus:
                    out[e.bdf or ""] = [
                        CheckResult(
                            check=f"diag.{f.test}",
                            status=f.status,
                            message=f.detail,
                            evidence={"value": f.value, "unit": f.unit} if f.value else {},
                        )
                        for f in bad
                    ] or [CheckResult(check="diag", status="unknown", message="not tested")]
        if not out:
            continue
        keep = [e for e in n.usable if (e.bdf or "") not in out]
        for e in n.usable:
            if (e.bdf or "") in out:
                n.excluded.append(e.model_copy(update={"checks": out[e.bdf or ""]}))
        n.usable = keep
        for v in n.gpus:
            if (v.bdf or "") in out:
                v.verdict = "excluded"
                v.problems = [*v.problems, *(f"{c.check}: {c.message}" for c in out[v.bdf or ""])]
        n.status = "degraded" if keep else "excluded"
        why = "; ".join(f"{b}: {c[0].check}" for b, c in out.items())
        n.reason = (f"{n.reason}; " if n.reason else "") + f"diagnostics: {why}"
    new = evaluate_fleet(result.nodes, facts, policy, options)
    new.inventory, new.fleet = result.inventory, result.fleet
    new.diagnostics = summary(rep)
    return new


def summary(rep: DiagReport) -> dict[str, Any]:
    """What the inventory carries of the run (docs/json.md `diagnostics`)."""
    return {
        "level": rep.plan.level,
        "budget": rep.plan.budget,
        "ran": rep.plan.run,
        "seconds_per_node": rep.plan.seconds,
        "skipped": [s.model_dump() for s in rep.plan.skipped],
        "policy": rep.policy,
        "failed_nodes": rep.failed,
        "stragglers": {k: [s.model_dump() for s in v] for k, v in rep.stragglers.items()},
        "excluded": rep.excluded,
        "links": {
            d.node: [lf.model_dump() for lf in d.links if lf.status != "pass"]
            for d in rep.nodes
            if any(lf.status != "pass" for lf in d.links)
        },
        "node_findings": {
            d.node: [f.model_dump() for f in d.node_findings] for d in rep.nodes if d.node_findings
        },
        "kept_output": {d.node: d.kept for d in rep.nodes if d.kept},
        "cluster": rep.cluster,
        "runtimes": rep.runtimes,
    }
