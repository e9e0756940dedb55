"""Diagnostics, pure and node-local parts: TransferBench p2p's real output (an MI350X
acceptance log), the cross-node all-reduce's bisect over nodes and its replay, the
stand-ins' TransferBench and mpirun formats, and `check --local --level 2` on one lab node
tree (no Ansible). Data: tests/data/diag/ (SOURCES.md there)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.diag import parse
from agent.diag.cluster import bisect_nodes, mpi_argv, replay
from agent.diag.evaluate import ToolRun, evaluate
from agent.diag.local import run_local
from agent.diag.plan import plan
from agent.diag.policy import DiagPolicy, load_diag_policy

DATA = Path(__file__).parent / "data" / "diag"
BDFS = [f"0000:{b}:00.0" for b in ("05", "15", "65", "75", "85", "95", "e5", "f5")]


@pytest.fixture(scope="module")
def policy() -> DiagPolicy:
    return load_diag_policy()


def _tb(output: str) -> ToolRun:
    return ToolRun(test="transferbench.p2p", rc=0, seconds=1.0, output=output)


# ----------------------------------------------------------------------------- TransferBench


def test_transferbench_real_log_parses_whole() -> None:
    tb = parse.parse_transferbench((DATA / "transferbench-p2p-mi350x.log").read_text())
    assert tb.unparsed == 0 and tb.gpus() == list(range(8))
    assert tb.uni[(("CPU", 0), ("GPU", 0))] == 45.11
    assert tb.uni[(("GPU", 7), ("GPU", 1))] == 46.66
    assert tb.bi[(("GPU", 3), ("GPU", 6))] == 79.33
    assert tb.averages["UniDir"] == [103.69, 44.91, 55.25, 57.32]
    # `N/A` cells (no transfer) are absent, not zero
    assert (("CPU", 0), ("CPU", 0)) not in tb.bi


def test_transferbench_real_log_verdicts(policy: DiagPolicy) -> None:
    """The published MI350X run: every GPU clears AMD's floors (uni 33.9, bi 43.9 GB/s);
    the one weak path in it, GPU 3 <-> GPU 6 at 79.33 GB/s both ways (27 % below the
    median), warns on the two GPUs and names the link; nobody is excluded."""
    text = (DATA / "transferbench-p2p-mi350x.log").read_text()
    d = evaluate("n1", BDFS, [_tb(text)], policy)
    verdicts = {b: d.verdict(b) for b in BDFS}
    assert verdicts.pop(BDFS[3]) == verdicts.pop(BDFS[6]) == "warn"
    assert set(verdicts.values()) == {"pass"}
    bad = [lf for lf in d.links if lf.status == "fail"]
    # the log measured the pair twice: 3 <-> 6 at 79.33, 6 <-> 3 at 109.03 GB/s
    assert [(lf.src, lf.dst) for lf in bad] == [(BDFS[3], BDFS[6])]
    assert "both ways 79.33 GB/s" in bad[0].detail
    assert d.metrics["transferbench.p2p.h2d"][BDFS[0]] == 45.11


def test_transferbench_slow_host_path_fails_the_gpu(policy: DiagPolicy) -> None:
    lines = (DATA / "transferbench-p2p-mi350x.log").read_text().splitlines()
    # GPU 2's column in the two CPU rows of the unidirectional matrix: 45 -> 20 GB/s
    for i in (3, 4):
        cells = lines[i].split()
        cells[3 + 2 + 2] = "20.00"  # "CPU", "00", "->", 2 CPU columns, then GPU 00..
        lines[i] = "  " + "  ".join(cells)
    d = evaluate("n1", BDFS, [_tb("\n".join(lines))], policy)
    [f] = d.gpus[BDFS[2]]
    assert f.status == "fail" and "host->GPU 20 GB/s below 33.9" in f.detail


def test_transferbench_unreadable_is_unknown_with_text_kept(policy: DiagPolicy) -> None:
    d = evaluate("n1", BDFS, [_tb("hipErrorNoDevice\n")], policy)
    assert {d.verdict(b) for b in BDFS} == {"unknown"}
    assert d.kept["transferbench.p2p"] == "hipErrorNoDevice\n"


# ------------------------------------------------------------------- across nodes: bisect


def _net(bad: set[str], calls: list[list[str]]):  # type: ignore[no-untyped-def]
    def measure(s: list[str]) -> float:
        calls.append(s)
        return 300.0 * (0.5 if set(s) & bad else 1.0)

    return measure


@pytest.mark.parametrize("n", [3, 4, 5, 16])
def test_bisect_finds_the_slow_node(n: int) -> None:
    nodes = [f"node{i:02d}" for i in range(1, n + 1)]
    calls: list[list[str]] = []
    r = bisect_nodes(nodes, _net({nodes[n // 2]}, calls))
    assert r["passed"] is False and r["bad"] == [nodes[n // 2]] and r["unresolved"] == []
    assert len(calls) <= 9  # 16 nodes: all, halves, quarters' way down, one pair


def test_bisect_healthy_and_two_faults() -> None:
    nodes = [f"node{i:02d}" for i in range(1, 9)]
    calls: list[list[str]] = []
    assert bisect_nodes(nodes, _net(set(), calls))["passed"] is True
    assert len(calls) == 7  # all, 2 halves, 4 quarters (faults on both sides look alike)
    r = bisect_nodes(nodes, _net({"node02", "node07"}, []))
    assert r["bad"] == ["node02", "node07"]
    # a floor decides at once; two nodes below it cannot be told apart: both unresolved
    calls = []
    assert bisect_nodes(nodes, _net(set(), calls), floor=250)["passed"] and len(calls) == 1
    r = bisect_nodes(["a", "b"], _net({"b"}, []), floor=250)
    assert r["unresolved"] == ["a", "b"]


def test_bisect_with_amds_line() -> None:
    """With the 350 GB/s two-node line (system-acceptance-docs): a healthy fleet at 370
    costs one run; one slow node among 16 is found; a fleet all below it is not cleared."""
    nodes = [f"node{i:02d}" for i in range(1, 17)]

    def net(bad: set[str], calls: list[list[str]], base: float = 370.0):  # type: ignore[no-untyped-def]
        def measure(s: list[str]) -> float:
            calls.append(s)
            return base * (0.5 if set(s) & bad else 1.0)

        return measure

    calls: list[list[str]] = []
    assert bisect_nodes(nodes, net(set(), calls), floor=350)["passed"] and len(calls) == 1
    calls = []
    r = bisect_nodes(nodes, net({"node09"}, calls), floor=350)
    assert r["bad"] == ["node09"] and r["unresolved"] == [] and len(calls) <= 9
    r = bisect_nodes(nodes, net(set(), [], base=200.0), floor=350)
    assert r["passed"] is False and r["bad"] == [] and len(r["unresolved"]) == 16  # type: ignore[arg-type]


def test_bisect_run_cap_leaves_nodes_unresolved() -> None:
    nodes = [f"node{i:02d}" for i in range(1, 17)]
    r = bisect_nodes(nodes, _net({"node05"}, []), max_runs=3)
    assert r["passed"] is False and "node05" in r["unresolved"]
    assert "stopped after 3 runs" in str(r["reason"])


def test_mpi_argv_is_an_argument_list() -> None:
    argv = mpi_argv("/opt/ompi/bin/mpirun", "/x/all_reduce_perf", ["a", "b"], {"a": 8, "b": 7})
    assert argv[:5] == ["/opt/ompi/bin/mpirun", "-np", "15", "--host", "a:8,b:7"]
    assert argv[-9:] == ["/x/all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "1"]


# --------------------------------------------------------- stand-ins and the local mode


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three node trees with the diagnostics stand-ins (no sshd, no Ansible): node02's
    GPU 3 on slow XGMI links, node03's network at half speed."""
    from agent.sim.diagtools import install_diag, install_fleet_map
    from agent.sim.gpu.state import NodeGpuState

    base = tmp_path_factory.mktemp("difflab")
    roots = {}
    faults = [None, {"gpu_links": {"@3": 0.4}, "gflops": {"@3": 0.6}}, {"net": 0.5}]
    for i, f in enumerate(faults):
        root = base / f"node0{i + 1}"
        install_diag(root, NodeGpuState.healthy(gpu_count=8, node_index=i), f)
        roots[f"node0{i + 1}"] = root
    install_fleet_map(roots)
    return roots


def test_mpirun_standin_and_replay(lab: dict[str, Path]) -> None:
    """The mpirun stand-in prints rccl-tests' format with a rank per GPU over the hosts;
    the controller replays the recorded runs through the same bisect: node03 is slow."""
    from agent.diag.node import run_cluster

    runs = run_cluster(
        str(lab["node01"]),
        {"hosts": list(lab), "slots": dict.fromkeys(lab, 8), "deadline": 60},
    )
    first = parse.parse_rccl(str(runs[0]["output"]))
    assert runs[0]["test"] == "rccl.all_reduce.cluster/node01,node02,node03"
    assert len(first.ranks) == 24 and first.ranks[8][0] == "node02"
    assert first.busbw_at(8 * 2**30) == pytest.approx(185, rel=0.02)  # 370 x net 0.5
    res = replay(list(lab), [ToolRun.model_validate(r) for r in runs], 8 * 2**30, 0.25, 350, 12)
    assert res["bad"] == ["node03"] and res["passed"] is False


def test_check_local_level2_on_one_node(lab: dict[str, Path], policy: DiagPolicy) -> None:
    """`check --local --level 3` runs the node's tools in-process: the same verdicts as
    the fleet run, the cross-node test skipped with the reason."""
    state = json.loads((lab["node02"] / "opt/rocm/share/tuner-sim/diag-state.json").read_text())
    gpus = {"node02": [{"bdf": g["bdf"], "hip": g["hip"]} for g in state["gpus"]]}
    p = plan(policy, 3, None)
    quick = p.model_copy(update={"run": ["rvs.pbqt", "transferbench.p2p", "rccl.all_reduce"]})
    quick.run.append("rccl.all_reduce.cluster")
    rep = run_local(str(lab["node02"]), quick, policy, gpus)
    assert "rccl.all_reduce.cluster" not in rep.plan.run
    assert {s.test: s.reason for s in rep.plan.skipped}["rccl.all_reduce.cluster"] == (
        "across nodes: not with --local"
    )
    [d] = rep.nodes
    slow = state["gpus"][3]["bdf"]
    assert rep.excluded == {"node02": {slow: rep.excluded["node02"][slow]}}
    why = rep.excluded["node02"][slow]
    assert "rvs.pbqt" in why and "transferbench.p2p" in why and "narrowed" in why
    assert d.verdict(state["gpus"][0]["bdf"]) == "warn"  # one slow link: the link's fault


def test_transferbench_standin_round_trip(lab: dict[str, Path]) -> None:
    out = subprocess.run(
        [str(lab["node01"] / "opt/rocm/bin/TransferBench"), "p2p"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tb = parse.parse_transferbench(out)
    assert tb.unparsed == 0 and len(tb.uni) == 90 and len(tb.bi) == 90
