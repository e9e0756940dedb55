"""From the tools' output to verdicts per GPU and per XGMI link (pure).

Each test judges what it measures: a GPU the output says nothing about is `unknown`, never
`pass` (fail closed); a tool that hung, crashed or printed what no parser reads makes every
GPU it should have judged `unknown`, with the text kept. Thresholds are the policy's
(checks/diagnostics.yml, with their sources); where AMD publishes none, a GPU or link far
below its node's own median fails (node-relative), and the fleet-relative pass
(`stragglers.py`) runs over the results of all nodes."""

from __future__ import annotations

from collections.abc import Callable
from statistics import median
from typing import Literal

from pydantic import BaseModel, Field

from agent.diag import parse
from agent.diag.narrow import leave_one_out
from agent.diag.policy import (
    ClusterTest,
    CollectiveTest,
    ComputeTest,
    DiagPolicy,
    HbmTest,
    LinkTest,
    PcieTest,
    PowerTest,
    TransferTest,
)

Status = Literal["pass", "warn", "fail", "unknown"]
RANK: dict[str, int] = {"pass": 0, "warn": 1, "unknown": 2, "fail": 3}
MAX_KEPT = 4000  # characters of unreadable output kept as evidence


class Finding(BaseModel):
    test: str
    status: Status
    detail: str
    value: float | None = None
    unit: str | None = None


class LinkFinding(BaseModel):
    test: str
    src: str
    dst: str
    status: Status
    gbps: float
    detail: str = ""


class ToolRun(BaseModel):
    """One run of a tool on a node, as the node reported it (agent/diag/node.py)."""

    test: str
    rc: int | None
    seconds: float
    timed_out: bool = False
    missing: str | None = None  # why the tool could not be found
    output: str = ""


class NodeDiag(BaseModel):
    node: str
    gpus: dict[str, list[Finding]] = Field(default_factory=dict)  # BDF -> findings
    links: list[LinkFinding] = Field(default_factory=list)
    node_findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)  # test -> key -> value
    kept: dict[str, str] = Field(default_factory=dict)  # test -> output no parser read

    def add(self, bdf: str, f: Finding) -> None:
        self.gpus.setdefault(bdf, []).append(f)

    def verdict(self, bdf: str) -> Status:
        fs = self.gpus.get(bdf, [])
        return max((f.status for f in fs), key=lambda s: RANK[s], default="unknown")


def _unknown_all(d: NodeDiag, test: str, gpus: list[str], why: str) -> None:
    for b in gpus:
        d.add(b, Finding(test=test, status="unknown", detail=why))


def _tool_failed(d: NodeDiag, run: ToolRun, gpus: list[str]) -> bool:
    if run.missing:
        _unknown_all(d, run.test, gpus, f"tool missing: {run.missing}")
        return True
    if run.timed_out:
        _unknown_all(d, run.test, gpus, f"killed at its deadline after {run.seconds:.0f} s")
        if run.output:
            d.kept[run.test] = run.output[-MAX_KEPT:]
        return True
    return False


def _relative(values: dict[str, float], frac: float) -> tuple[float, dict[str, float]]:
    """The median and the values more than `frac` below it."""
    if not values:
        return 0.0, {}
    med = median(values.values())
    return med, {k: v for k, v in values.items() if v < med * (1 - frac)}


def _bdf_of(log: parse.RvsLog) -> dict[int, str]:
    return {gid: g.bdf for gid, g in log.gpus.items() if g.bdf}


def _norm(bdf: str) -> str:
    b = bdf.lower()
    return b if b.count(":") == 2 else f"0000:{b}"


def evaluate_rvs(d: NodeDiag, run: ToolRun, gpus: list[str], settings: object) -> None:
    """One RVS module's run: gst, iet, babel, pebb or pbqt."""
    test = run.test
    if _tool_failed(d, run, gpus):
        return
    log = parse.parse_rvs(run.output)
    ids = _bdf_of(log)
    seen: set[str] = set()
    if not log.gpus:
        d.kept[test] = run.output[-MAX_KEPT:]
        _unknown_all(d, test, gpus, f"no result in the output (exit {run.rc})")
        return
    for gid, g in log.gpus.items():
        bdf = ids.get(gid)
        if bdf is None or bdf not in gpus:
            continue
        for e in g.errors:
            d.add(bdf, Finding(test=test, status="fail", detail=f"rvs error: {e}"))
            seen.add(bdf)
    if isinstance(settings, ComputeTest):
        least = settings.target_gflops * (1 - settings.tolerance)
        for gid, g in log.gpus.items():
            bdf = ids.get(gid)
            if bdf is None or bdf not in gpus or g.gflops is None:
                continue
            seen.add(bdf)
            ok = bool(g.met) and g.gflops >= least
            d.metrics.setdefault(test, {})[bdf] = g.gflops
            d.add(
                bdf,
                Finding(
                    test=test,
                    status="pass" if ok else "fail",
                    detail=f"{g.gflops / 1000:.0f} TFLOPS, target "
                    f"{settings.target_gflops / 1000:.0f} -{settings.tolerance:.0%}"
                    + ("" if g.met else " (rvs: met FALSE)"),
                    value=g.gflops,
                    unit="GFLOPS",
                ),
            )
    elif isinstance(settings, PowerTest):
        for gid, g in log.gpus.items():
            bdf = ids.get(gid)
            if bdf is None or bdf not in gpus or g.passed is None:
                continue
            seen.add(bdf)
            d.add(
                bdf,
                Finding(
                    test=test,
                    status="pass" if g.passed else "fail",
                    detail=f"peak {g.max_power_w or 0:.0f} W, "
                    f"target {settings.target_power_w:.0f} W"
                    + ("" if g.passed else " (rvs: pass FALSE)"),
                    value=g.max_power_w,
                    unit="W",
                ),
            )
    elif isinstance(settings, HbmTest | PcieTest):
        vals: dict[str, float] = {}
        for gid, g in log.gpus.items():
            bdf = ids.get(gid)
            if bdf is None or bdf not in gpus:
                continue
            if isinstance(settings, HbmTest) and "Triad" in g.babel_mbps:
                vals[bdf] = g.babel_mbps["Triad"]
            elif isinstance(settings, PcieTest) and g.h2d_gbps:
                vals[bdf] = max(g.h2d_gbps)  # the GPU's own socket is the fast one
        unit = "MB/s" if isinstance(settings, HbmTest) else "GB/s"
        floor = settings.min_triad_mbps if isinstance(settings, HbmTest) else settings.min_h2d_gbps
        med, low = _relative(vals, settings.node_relative)
        d.metrics[test] = dict(vals)
        for bdf, v in vals.items():
            seen.add(bdf)
            why: list[str] = []
            if floor is not None and v < floor:
                why.append(f"below {floor:g} {unit}")
            if bdf in low:
                why.append(f"{(med - v) / med:.0%} below the node's median {med:g} {unit}")
            d.add(
                bdf,
                Finding(
                    test=test,
                    status="fail" if why else "pass",
                    detail=f"{v:g} {unit}" + (": " + "; ".join(why) if why else ""),
                    value=v,
                    unit=unit,
                ),
            )
    elif isinstance(settings, LinkTest):
        links = {(ids[s], ids[t]): bw for (s, t), bw in log.links.items() if s in ids and t in ids}
        keyed = {f"{s}>{t}": bw for (s, t), bw in links.items()}
        med, low = _relative(keyed, settings.node_relative)
        d.metrics[test] = keyed
        bad_per_gpu: dict[str, int] = {}
        for (s, t), bw in links.items():
            why = []
            if settings.min_link_gbps is not None and bw < settings.min_link_gbps:
                why.append(f"below {settings.min_link_gbps:g} GB/s")
            if f"{s}>{t}" in low:
                why.append(f"{(med - bw) / med:.0%} below the node's median link {med:g} GB/s")
            status: Status = "fail" if why else "pass"
            d.links.append(
                LinkFinding(test=test, src=s, dst=t, status=status, gbps=bw, detail="; ".join(why))
            )
            if why:
                for b in (s, t):
                    bad_per_gpu[b] = bad_per_gpu.get(b, 0) + 1
        ends = {b for pair in links for b in pair}
        for bdf in ends & set(gpus):
            seen.add(bdf)
            n = bad_per_gpu.get(bdf, 0)
            # one slow link is the link's fault (launch pairs around it); a GPU on several
            # slow links is the common factor
            partners = {t if s == bdf else s for (s, t) in links if bdf in (s, t)}
            slow = sorted(
                {
                    lf.dst if lf.src == bdf else lf.src
                    for lf in d.links
                    if lf.test == test and lf.status == "fail" and bdf in (lf.src, lf.dst)
                }
            )
            if n == 0:
                d.add(bdf, Finding(test=test, status="pass", detail=f"{len(partners)} peers"))
            elif len(slow) >= 2:
                d.add(
                    bdf,
                    Finding(
                        test=test,
                        status="fail",
                        detail=f"slow XGMI to {len(slow)} peers: {', '.join(slow)}",
                    ),
                )
            else:
                d.add(
                    bdf,
                    Finding(
                        test=test,
                        status="warn",
                        detail=f"slow XGMI link to {slow[0]} (not paired with it)",
                    ),
                )
    for bdf in gpus:
        if bdf not in seen:
            d.add(bdf, Finding(test=test, status="unknown", detail="no result for this GPU"))


Measure = Callable[[list[str]], float | None]


def evaluate_collective(
    d: NodeDiag,
    run: ToolRun,
    gpus: list[str],
    settings: CollectiveTest,
    narrow: Measure | None,
    stand_out: float,
) -> None:
    """A node's all-reduce over all its GPUs; a failure is narrowed to one GPU when
    `narrow` (run the test on a subset, return its bus bandwidth) is given."""
    test = run.test
    if _tool_failed(d, run, gpus):
        return
    r = parse.parse_rccl(run.output)
    bw = r.busbw_at(settings.message_bytes)
    if bw is None:
        d.kept[test] = run.output[-MAX_KEPT:]
        _unknown_all(d, test, gpus, f"no result in the output (exit {run.rc})")
        return
    d.metrics.setdefault(test, {})["node"] = bw
    why = []
    if r.wrong or r.out_of_bounds:
        why.append(f"{r.wrong} wrong values, {r.out_of_bounds or 0} out of bounds")
    if settings.min_busbw_gbps is not None and bw < settings.min_busbw_gbps:
        why.append(f"in-place busbw {bw:g} GB/s below {settings.min_busbw_gbps:g}")
    node = Finding(
        test=test,
        status="fail" if why else "pass",
        detail=f"{len(gpus)} GPUs: {bw:g} GB/s" + (": " + "; ".join(why) if why else ""),
        value=bw,
        unit="GB/s",
    )
    d.node_findings.append(node)
    if not why:
        for b in gpus:
            d.add(b, Finding(test=test, status="pass", detail=node.detail))
        return
    culprit = None
    if narrow is not None and len(gpus) > 2:
        n = leave_one_out(gpus, narrow, stand_out)
        d.node_findings.append(
            Finding(
                test=f"{test}.narrow", status="fail" if n.culprit else "unknown", detail=n.reason
            )
        )
        culprit = n.culprit
    for b in gpus:
        if culprit is None:
            d.add(b, Finding(test=test, status="fail", detail=node.detail))
        elif b == culprit:
            d.add(
                b, Finding(test=test, status="fail", detail=f"{node.detail}; narrowed to this GPU")
            )
        else:
            d.add(b, Finding(test=test, status="pass", detail=f"the test passes without {culprit}"))


def evaluate_transfer(d: NodeDiag, run: ToolRun, gpus: list[str], settings: TransferTest) -> None:
    """`TransferBench p2p` on the node's GPUs (HIP_VISIBLE_DEVICES in `gpus`' order, so
    TransferBench's GPU k is gpus[k]): host<->GPU per GPU, GPU->GPU per link (a GPU on two
    or more slow links fails, one slow link warns, as pbqt); floors from the policy,
    node-relative where AMD publishes none for MI355X."""
    test = run.test
    if _tool_failed(d, run, gpus):
        return
    tb = parse.parse_transferbench(run.output)
    if not tb.uni:
        d.kept[test] = run.output[-MAX_KEPT:]
        _unknown_all(d, test, gpus, f"no result in the output (exit {run.rc})")
        return
    bdf = {k: b for k, b in enumerate(gpus)}
    floor = settings.min_uni_gbps
    # host <-> GPU: the best socket each way (the GPU's own)
    h2d: dict[str, float] = {}
    d2h: dict[str, float] = {}
    for (src, dst), bw in tb.uni.items():
        if src[0] == "CPU" and dst[0] == "GPU" and dst[1] in bdf:
            h2d[bdf[dst[1]]] = max(bw, h2d.get(bdf[dst[1]], 0.0))
        elif src[0] == "GPU" and dst[0] == "CPU" and src[1] in bdf:
            d2h[bdf[src[1]]] = max(bw, d2h.get(bdf[src[1]], 0.0))
    d.metrics[f"{test}.h2d"] = dict(h2d)
    d.metrics[f"{test}.d2h"] = dict(d2h)
    host_why: dict[str, list[str]] = {}
    for name, vals in (("host->GPU", h2d), ("GPU->host", d2h)):
        med, low = _relative(vals, settings.node_relative)
        for b, v in vals.items():
            if floor is not None and v < floor:
                host_why.setdefault(b, []).append(f"{name} {v:g} GB/s below {floor:g}")
            if b in low:
                host_why.setdefault(b, []).append(
                    f"{name} {v:g} GB/s, {(med - v) / med:.0%} below the node's median {med:g}"
                )
    # GPU -> GPU links (unidirectional), and both ways summed
    links: dict[tuple[str, str], float] = {}
    for (src, dst), bw in tb.uni.items():
        if src[0] == dst[0] == "GPU" and src[1] in bdf and dst[1] in bdf:
            links[(bdf[src[1]], bdf[dst[1]])] = bw
    bi: dict[tuple[str, str], float] = {}
    for (src, dst), bw in tb.bi.items():
        if src[0] == dst[0] == "GPU" and src[1] in bdf and dst[1] in bdf:
            bi[(bdf[src[1]], bdf[dst[1]])] = bw
    keyed = {f"{s}>{t}": bw for (s, t), bw in links.items()}
    d.metrics[test] = keyed
    med, low = _relative(keyed, settings.node_relative)
    bmed, blow = _relative({f"{s}>{t}": v for (s, t), v in bi.items()}, settings.node_relative)
    slow: dict[str, set[str]] = {}
    for (s, t), bw in links.items():
        why = []
        if floor is not None and bw < floor:
            why.append(f"below {floor:g} GB/s")
        if f"{s}>{t}" in low:
            why.append(f"{(med - bw) / med:.0%} below the node's median link {med:g} GB/s")
        b2 = bi.get((s, t))
        if b2 is not None and settings.min_bi_gbps is not None and b2 < settings.min_bi_gbps:
            why.append(f"both ways {b2:g} GB/s below {settings.min_bi_gbps:g}")
        if b2 is not None and f"{s}>{t}" in blow:
            why.append(f"both ways {b2:g} GB/s, {(bmed - b2) / bmed:.0%} below the median {bmed:g}")
        d.links.append(
            LinkFinding(
                test=test,
                src=s,
                dst=t,
                status="fail" if why else "pass",
                gbps=bw,
                detail="; ".join(why),
            )
        )
        if why:
            slow.setdefault(s, set()).add(t)
            slow.setdefault(t, set()).add(s)
    seen = set(h2d) | set(d2h) | {b for pair in links for b in pair}
    for b in gpus:
        if b not in seen:
            d.add(b, Finding(test=test, status="unknown", detail="no result for this GPU"))
            continue
        if b in host_why:
            d.add(b, Finding(test=test, status="fail", detail="; ".join(host_why[b])))
        peers = sorted(slow.get(b, set()))
        if len(peers) >= 2:
            d.add(
                b,
                Finding(
                    test=test,
                    status="fail",
                    detail=f"slow GPU copies with {len(peers)} peers: {', '.join(peers)}",
                ),
            )
        elif peers:
            d.add(
                b,
                Finding(
                    test=test,
                    status="warn",
                    detail=f"slow GPU copies with {peers[0]} (the link: not paired with it)",
                ),
            )
        elif b not in host_why:
            d.add(
                b,
                Finding(
                    test=test,
                    status="pass",
                    detail=f"host->GPU {h2d.get(b, 0):g} GB/s, GPU->host {d2h.get(b, 0):g} GB/s",
                ),
            )


def evaluate(
    node: str,
    gpus: list[str],
    runs: list[ToolRun],
    policy: DiagPolicy,
    narrow: Measure | None = None,
) -> NodeDiag:
    """Every planned test's run on one node -> the node's findings."""
    gpus = [_norm(b) for b in gpus]
    d = NodeDiag(node=node)
    tests = policy.tests.named()
    for run in runs:
        settings = tests.get(run.test)
        if settings is None or isinstance(settings, ClusterTest):
            continue  # the cross-node all-reduce is judged over the fleet (cluster.py)
        if isinstance(settings, CollectiveTest):
            evaluate_collective(d, run, gpus, settings, narrow, policy.bisect.stand_out)
        elif isinstance(settings, TransferTest):
            evaluate_transfer(d, run, gpus, settings)
        else:
            evaluate_rvs(d, run, gpus, settings)
    return d
