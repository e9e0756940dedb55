"""`tuner check --level 2|3` and `tuner ready --level 2` on a lab fleet set up as a user's
is (bare `sim up`, then `tuner provision`: the diagnostics module runs under the
provisioned runtime, /opt/tuner/venv's python, as diag.yml says). RVS, rccl-tests,
TransferBench and mpirun stand-ins print the real formats (agent/sim/diagstandin.py). A GPU
that passes level 1 fails level 2 and is narrowed to; a node that slows the all-reduce
across nodes is found by bisecting; a hung tool is killed at its deadline and its GPUs are
unknown, not healthy; bad input exits 2 before any host is touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.sim.diagtools import STATE, set_faults
from tests.conftest import Fleet, make_fleet

pytestmark = pytest.mark.fleet

SLOW = "0000:75:00.0"  # GPU 3 of node 2 (index 1) in the diag-slow-gpu scenario


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Three bare nodes (node02's GPU 3 slow under load), provisioned as the docs say."""
    state = tmp_path_factory.mktemp("diag")
    for f in make_fleet(state, 3, 2, "--scenario", "diag-slow-gpu", runtime="bare"):
        r = f.tuner("provision", "--json", timeout=900)
        assert r.rc == 0, r.err[-3000:]
        assert all((root / "opt/tuner/venv/bin/python").exists() for root in f.roots.values())
        yield f


def _policy(tmp: Path, **seconds: float) -> str:
    """The shipped policy with some tests' costs changed (their deadline is twice that)."""
    text = (Path(__file__).parents[1] / "checks" / "diagnostics.yml").read_text()
    for test, s in seconds.items():
        head = f"  {test}:"
        i = text.index(head)
        j = text.index("seconds:", i)
        k = text.index("\n", j)
        text = text[:j] + f"seconds: {s}" + text[k:]
    p = tmp / "diag.yml"
    p.write_text(text)
    return str(p)


def test_level1_passes_level2_excludes_the_slow_gpu(fleet: Fleet, tmp_path: Path) -> None:
    r1 = fleet.tuner("check", "--json")
    assert r1.rc == 0, r1.err
    assert r1.json()["usable_gpus"] == 24

    out = tmp_path / "usable.json"
    r = fleet.tuner("check", "--level", "2", "--json", "-o", str(out), timeout=600)
    assert r.rc == 0, r.err  # 23 usable: the gate still passes
    doc = r.json()
    assert doc["usable_gpus"] == 23 and doc["excluded_gpus"] == 1
    node2 = next(n for n in doc["nodes"] if n["name"] == "node02")
    assert node2["status"] == "degraded"
    [ex] = node2["excluded"]
    assert ex["bdf"] == SLOW
    checks = {c["check"]: c for c in ex["checks"]}
    assert checks["diag.rvs.pbqt"]["status"] == "fail"
    assert "slow XGMI to 7 peers" in checks["diag.rvs.pbqt"]["message"]
    assert checks["diag.rvs.gst"]["status"] == "fail"
    assert "narrowed to this GPU" in checks["diag.rccl.all_reduce"]["message"]
    # TransferBench, run directly, finds the same GPU on all 7 of its copy paths
    assert checks["diag.transferbench.p2p"]["status"] == "fail"
    assert "slow GPU copies with 7 peers" in checks["diag.transferbench.p2p"]["message"]
    d = doc["diagnostics"]
    assert d["level"] == 2 and d["ran"][:2] == ["rvs.pbqt", "rccl.all_reduce"]
    # the module ran under each node's provisioned runtime, not the controller's python
    assert set(d["runtimes"]) == {"node01", "node02", "node03"}
    for node, py in d["runtimes"].items():
        assert py == str(fleet.roots[node] / "opt/tuner/venv/bin/python"), py
    assert [s["test"] for s in d["skipped"]] == ["rvs.iet", "rccl.all_reduce.cluster"]
    narrowed = d["node_findings"]["node02"]
    assert narrowed[0]["status"] == "fail" and narrowed[1]["detail"].startswith(f"without {SLOW}")
    assert d["excluded"] == {"node02": {SLOW: pytest.approx(d["excluded"]["node02"][SLOW])}}
    # node01 is healthy under load too: all 8 still usable
    node1 = next(n for n in doc["nodes"] if n["name"] == "node01")
    assert len(node1["usable"]) == 8 and node1["status"] == "ok"
    assert json.loads(out.read_text())["usable_gpus"] == 23


def test_hung_tool_is_killed_and_its_gpus_unknown(fleet: Fleet, tmp_path: Path) -> None:
    root = fleet.roots["node01"]
    set_faults(root, {"hang": ["rvs.babel"]})
    try:
        pol = _policy(tmp_path, **{"rvs.babel": 3})
        r = fleet.tuner("check", "--level", "2", "--diag-policy", pol, "--json", timeout=600)
    finally:
        set_faults(root, {})
    doc = r.json()
    node1 = next(n for n in doc["nodes"] if n["name"] == "node01")
    assert node1["usable"] == [] and node1["status"] == "excluded"
    msgs = {c["check"]: c["message"] for c in node1["excluded"][0]["checks"]}
    assert msgs["diag.rvs.babel"].startswith("killed at its deadline")
    # the stand-in's output before the hang is kept as evidence
    assert "ramping up" in doc["diagnostics"]["kept_output"]["node01"]["rvs.babel"]
    assert r.rc == 0  # the other nodes' GPUs still pass the gate


def test_budget_skips_and_says_why(fleet: Fleet) -> None:
    r = fleet.tuner("check", "--level", "2", "--budget", "100", "--json", timeout=600)
    d = r.json()["diagnostics"]
    assert d["ran"] == ["rvs.pbqt", "rvs.pebb"]  # 45 + 40 s: rccl (60 s) does not fit
    reasons = {s["test"]: s["reason"] for s in d["skipped"]}
    assert reasons["rccl.all_reduce"] == "budget: needs 60 s, 55 s left"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--budget", "60"], "--budget/--diag-policy"),
        (["--level", "2", "--facts", "/nonexistent.json"], "--level"),
        (["--level", "2", "--diag-policy", "/nonexistent.yml"], "--diag-policy"),
    ],
)
def test_bad_input_exits_2_before_any_host(fleet: Fleet, args: list[str], field: str) -> None:
    before = fleet.hashes()
    r = fleet.tuner("check", *args, "--json")
    assert r.rc == 2, r.err
    assert r.json()["field"] == field
    assert fleet.hashes() == before


def test_level3_across_nodes_bisects_to_the_slow_node(fleet: Fleet, tmp_path: Path) -> None:
    """node03's network at half speed: every node passes alone, the all-reduce over the
    three is slow, the bisect (all, then pairs) names node03; its GPUs leave the inventory
    with the runs as evidence, the others are cleared."""
    root = fleet.roots["node03"]
    set_faults(root, {"net": 0.5})
    pol = tmp_path / "cluster.yml"
    pol.write_text(
        "name: cluster-only\ntests:\n  rccl.all_reduce.cluster:\n    level: 3\n    seconds: 60\n"
    )
    try:
        r = fleet.tuner("check", "--level", "3", "--diag-policy", str(pol), "--json", timeout=600)
    finally:
        set_faults(root, {})
    assert r.rc == 0, r.err
    doc = r.json()
    c = doc["diagnostics"]["cluster"]
    assert c["hosts"] == ["node01", "node02", "node03"]
    assert c["bad"] == ["node03"] and c["passed"] is False and c["unresolved"] == []
    assert len(c["runs"]) == 4  # all three, then each pair
    node3 = next(n for n in doc["nodes"] if n["name"] == "node03")
    assert node3["status"] == "excluded"
    check = node3["excluded"][0]["checks"][0]
    assert check["check"] == "diag.rccl.all_reduce.cluster" and check["status"] == "fail"
    assert doc["usable_gpus"] == 16


def test_check_local_level2_on_a_node(fleet: Fleet) -> None:
    """`tuner check --local --level 2` on one node's tree, no Ansible: the same verdict."""
    r = fleet.tuner(
        "check", "--local", "--root", str(fleet.roots["node02"]), "--level", "2", "--json"
    )
    assert r.rc == 0, r.err
    doc = r.json()
    [node] = doc["nodes"]
    assert [e["bdf"] for e in node["excluded"]] == [SLOW] and len(node["usable"]) == 7


def test_ready_level2_after_apply(fleet: Fleet) -> None:
    """`tuner ready --level 2`: verify, the level-1 gate, then the tools on what is left."""
    assert fleet.tuner("apply", "--profile", "inference", "--reboot", "if-needed").rc == 0
    r = fleet.tuner(
        "ready",
        "--profile",
        "inference",
        "--level",
        "2",
        "--budget",
        "200",
        "--json",
        timeout=600,
    )
    assert r.rc == 0, r.out[-2000:]
    doc = r.json()
    g = doc["gpus"]
    assert g["usable_gpus"] == 23 and g["diagnostics"]["ran"][:2] == ["rvs.pbqt", "rccl.all_reduce"]
    node2 = next(h for h in doc["hosts"] if h["name"] == "node02")
    assert node2["verify"] == "ok" and node2["usable_gpus"] == 7
    r = fleet.tuner("ready", "--profile", "inference", "--budget", "100")
    assert r.rc == 2  # a budget without --level


def test_straggler_node_flagged_on_16(tmp_path: Path) -> None:
    """A node whose all-reduce passes AMD's 304 GB/s line but trails the fleet."""
    with contextmanager(make_fleet)(tmp_path, 16, 2) as fl:
        root = fl.roots["node11"]
        gpus = json.loads((root / STATE).read_text())["gpus"]
        set_faults(root, {"collective": {gpus[0]["bdf"]: 0.92}})  # 341 -> about 314 GB/s
        text = (
            "name: rccl-only\ntests:\n  rccl.all_reduce:\n    level: 2\n    seconds: 60\n"
            "    min_busbw_gbps: 304\n"
        )
        pol = tmp_path / "rccl-only.yml"
        pol.write_text(text)
        r = fl.tuner("check", "--level", "2", "--diag-policy", str(pol), "--json", timeout=900)
        assert r.rc == 0, r.err
        doc = r.json()
        d = doc["diagnostics"]
        assert d["ran"] == ["rccl.all_reduce"]
        [s] = d["stragglers"]["rccl.all_reduce"]
        assert s["key"] == "node11" and 0.05 < s["drop"] < 0.1
        assert s["value"] > 304  # AMD's fixed line alone would keep it
        assert doc["usable_gpus"] == 15 * 8
        node11 = next(n for n in doc["nodes"] if n["name"] == "node11")
        assert node11["status"] == "excluded"
        assert node11["excluded"][0]["checks"][0]["check"] == "diag.rccl.all_reduce.fleet"
