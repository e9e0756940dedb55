"""Active diagnostics, pure parts: the tools' real output formats (RVS's published MI355X
samples, rccl-tests' print format), verdicts per GPU and link, the budget planner,
leave-one-out narrowing, fleet stragglers; and the node runner's deadline on a real
process group. Data: tests/data/diag/ (SOURCES.md there)."""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent.diag import parse
from agent.diag.evaluate import ToolRun, evaluate
from agent.diag.narrow import leave_one_out
from agent.diag.node import find_tool, run_tool
from agent.diag.plan import plan
from agent.diag.policy import DiagPolicy, Stragglers, load_diag_policy
from agent.diag.stragglers import stragglers
from agent.errors import BadInput

DATA = Path(__file__).parent / "data" / "diag"
# the 8 MI355X GPUs of RVS's published samples (docs/ug1main.md's summary box)
BDFS = [f"0000:{b}:00.0" for b in ("05", "15", "65", "75", "85", "95", "e5", "f5")]


def text(name: str) -> str:
    return (DATA / name).read_text()


def run(test: str, name: str | None = None, output: str | None = None, **kw: object) -> ToolRun:
    out = output if output is not None else text(name or "")
    return ToolRun(test=test, rc=0, seconds=1.0, output=out, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def policy() -> DiagPolicy:
    return load_diag_policy()


# ------------------------------------------------------------------------------ parsers


def test_rvs_samples_parse_whole() -> None:
    for name, module, n_gpus in (
        ("rvs-gst-mi355x.log", "gst", 8),
        ("rvs-iet-mi355x.log", "iet", 8),
        ("rvs-babel-mi355x.log", "babel", 8),
        ("rvs-pebb-mi355x.log", "pebb", 8),
        ("rvs-pbqt-mi355x.log", "pbqt", 8),
    ):
        log = parse.parse_rvs(text(name))
        assert log.module == module, name
        assert len(log.gpus) == n_gpus, name
        assert log.unparsed == 0, name
        assert list(log.actions.values()) == ["PASS"], name
        # the summary box maps every RVS gpu id to its BDF
        assert sorted(g.bdf for g in log.gpus.values() if g.bdf) == BDFS, name
    gst = parse.parse_rvs(text("rvs-gst-mi355x.log"))
    assert gst.gpus[42583].gflops == 1063560 and gst.gpus[42583].met is True
    iet = parse.parse_rvs(text("rvs-iet-mi355x.log"))
    assert iet.gpus[1590].max_power_w == 1401.0 and iet.gpus[1590].passed is True
    babel = parse.parse_rvs(text("rvs-babel-mi355x.log"))
    assert babel.gpus[42583].babel_mbps["Triad"] == 6031416.066


def test_rccl_format() -> None:
    r = parse.parse_rccl(text("rccl-allreduce-8gpu-ok.log"))
    assert len(r.ranks) == 8 and r.ranks[7][2] == "0000:f5:00"
    assert r.rows[-1].size == 8 * 2**30 and r.wrong == 0 and r.out_of_bounds == 0
    assert r.busbw_at(8 * 2**30) == r.rows[-1].ip_busbw
    assert r.unparsed == 0
    # validation off: `N/A` in the #wrong columns; in-place only (-O 0)
    row = "        1024           256     float     sum      -1    20.1    0.05    0.09"
    na = f"{row}    N/A    20.2    0.05    0.09    N/A\n"
    ip = f"{row}      0\n"
    assert parse.parse_rccl(na).rows[0].ip_wrong is None
    assert parse.parse_rccl(ip).rows[0].oop_busbw is None


def test_parsers_never_raise_on_garbage() -> None:
    junk = "\x00\xff[RESULT] [nan] [x] [GPU:: ] GFLOPS\n| | |\n#  Rank x\n" + "9" * 5000
    assert parse.parse_rvs(junk).gpus == {}
    assert parse.parse_rccl(junk).rows == []


# ------------------------------------------------------------------------------ verdicts


def test_published_samples_pass(policy: DiagPolicy) -> None:
    # each sample is abridged ("..."): a GPU it shows is judged, the others stay unknown
    shown = {
        "rvs.gst": ("rvs-gst-mi355x.log", {"05", "15", "e5", "f5"}),
        "rvs.pebb": ("rvs-pebb-mi355x.log", {"05", "85", "95", "e5", "f5"}),
        "rvs.iet": ("rvs-iet-mi355x.log", {b[5:7] for b in BDFS}),
        "rccl.all_reduce": ("rccl-allreduce-8gpu-ok.log", {b[5:7] for b in BDFS}),
    }
    for test, (name, gpus) in shown.items():
        d = evaluate("node01", BDFS, [run(test, name)], policy)
        got = {b[5:7]: d.verdict(b) for b in BDFS}
        assert got == {b: "pass" if b in gpus else "unknown" for b in got}, test
    # the pbqt sample measures GPUs 8 and 9's links, to every peer: all 8 GPUs are ends
    d = evaluate("node01", BDFS, [run("rvs.pbqt", "rvs-pbqt-mi355x.log")], policy)
    assert {d.verdict(b) for b in BDFS} == {"pass"}
    assert len(d.links) == 9 and all(lf.status == "pass" for lf in d.links)


def test_abridged_sample_judges_only_what_it_shows(policy: DiagPolicy) -> None:
    # RVS's published babel sample prints GPU 42583's table only ("..."): the other seven
    # are named in the summary but have no result, so they are unknown, never pass
    d = evaluate("node01", BDFS, [run("rvs.babel", "rvs-babel-mi355x.log")], policy)
    assert d.verdict("0000:05:00.0") == "pass"
    assert {d.verdict(b) for b in BDFS[1:]} == {"unknown"}


def _slow_link(src_gid: str, dst_gid: str, gbps: float) -> str:
    """The published pbqt sample with one link's measured bandwidth lowered."""
    out = []
    for line in text("rvs-pbqt-mi355x.log").splitlines():
        if "p2p-bandwidth" in line and re.search(
            rf"\[GPU::\s*\d+ -\s*{src_gid} - [^\]]+\] \[GPU::\s*\d+ -\s*{dst_gid} -", line
        ):
            line = re.sub(r"false [\d.]+ GBps", f"false {gbps:.3f} GBps", line)
        out.append(line)
    return "\n".join(out) + "\n"


def test_one_slow_link_is_the_links_fault(policy: DiagPolicy) -> None:
    d = evaluate("n", BDFS, [run("rvs.pbqt", output=_slow_link("11806", "51771", 20.0))], policy)
    bad = [lf for lf in d.links if lf.status == "fail"]
    assert [(lf.src, lf.dst) for lf in bad] == [("0000:e5:00.0", "0000:95:00.0")]
    assert "below the node's median link" in bad[0].detail
    assert d.verdict("0000:e5:00.0") == "warn" and d.verdict("0000:95:00.0") == "warn"
    assert "not paired" in d.gpus["0000:e5:00.0"][0].detail


def test_gpu_on_several_slow_links_fails(policy: DiagPolicy) -> None:
    t = _slow_link("11806", "51771", 20.0)
    t = t.replace(
        text("rvs-pbqt-mi355x.log").splitlines()[-1], text("rvs-pbqt-mi355x.log").splitlines()[-1]
    )
    lines = t.splitlines()
    lines = [
        re.sub(r"false [\d.]+ GBps", "false 21.000 GBps", ln)
        if "p2p-bandwidth[49/56] [GPU:: 8 - 11806" in ln
        else ln
        for ln in lines
    ]
    d = evaluate("n", BDFS, [run("rvs.pbqt", output="\n".join(lines))], policy)
    assert d.verdict("0000:e5:00.0") == "fail"
    assert "slow XGMI to 2 peers" in d.gpus["0000:e5:00.0"][0].detail


def test_gst_below_target_fails_and_missing_gpu_is_unknown(policy: DiagPolicy) -> None:
    t = text("rvs-gst-mi355x.log").replace(
        "[GPU:: 27226] GFLOPS 1068301 Target GFLOPS: 0 met: TRUE",
        "[GPU:: 27226] GFLOPS 701234 Target GFLOPS: 0 met: TRUE",
    )
    extra = "0000:aa:00.0"  # a GPU amdsmi sees that the output never mentions
    d = evaluate("n", [*BDFS, extra], [run("rvs.gst", output=t)], policy)
    assert d.verdict("0000:15:00.0") == "fail"
    assert "701 TFLOPS, target 946" in d.gpus["0000:15:00.0"][0].detail
    assert d.verdict("0000:05:00.0") == "pass"
    assert d.verdict(extra) == "unknown"
    assert d.gpus[extra][0].detail == "no result for this GPU"


def test_rvs_error_line_fails_that_gpu(policy: DiagPolicy) -> None:
    t = text("rvs-gst-mi355x.log") + "[ERROR ] [302170.000001] [gst-x] gst 57875 blas error !!!\n"
    d = evaluate("n", BDFS, [run("rvs.gst", output=t)], policy)
    assert d.verdict("0000:f5:00.0") == "fail"
    assert any("blas error" in f.detail for f in d.gpus["0000:f5:00.0"])


def test_hung_or_unreadable_tool_is_unknown_with_text_kept(policy: DiagPolicy) -> None:
    hung = ToolRun(test="rvs.gst", rc=-9, seconds=90, timed_out=True, output="ramping...\n")
    junk = run("rvs.babel", output="Segmentation fault (core dumped)\n")
    gone = ToolRun(test="rccl.all_reduce", rc=None, seconds=0, missing="all_reduce_perf not found")
    d = evaluate("n", BDFS, [hung, junk, gone], policy)
    for b in BDFS:
        assert d.verdict(b) == "unknown"
        tests = {f.test: f.detail for f in d.gpus[b]}
        assert tests["rvs.gst"].startswith("killed at its deadline")
        assert tests["rvs.babel"] == "no result in the output (exit 0)"
        assert tests["rccl.all_reduce"] == "tool missing: all_reduce_perf not found"
    assert d.kept["rvs.babel"] == "Segmentation fault (core dumped)\n"
    assert d.kept["rvs.gst"] == "ramping...\n"


def test_collective_narrowed_keeps_7_of_8(policy: DiagPolicy) -> None:
    culprit = BDFS[5]

    def measure(subset: list[str]) -> float:  # the slow GPU drags any set it is in
        return 120.0 if culprit in subset else 330.0

    d = evaluate(
        "n", BDFS, [run("rccl.all_reduce", "rccl-allreduce-8gpu-slow.log")], policy, measure
    )
    assert d.verdict(culprit) == "fail"
    assert [b for b in BDFS if d.verdict(b) == "pass"] == [b for b in BDFS if b != culprit]
    assert d.node_findings[0].status == "fail" and "below 304" in d.node_findings[0].detail
    assert d.node_findings[1].detail.startswith(f"without {culprit}: 330")


def test_collective_not_one_gpu_fails_all(policy: DiagPolicy) -> None:
    d = evaluate(
        "n", BDFS, [run("rccl.all_reduce", "rccl-allreduce-8gpu-slow.log")], policy, lambda s: 170.0
    )
    assert {d.verdict(b) for b in BDFS} == {"fail"}
    assert "not one GPU" in d.node_findings[1].detail


def test_leave_one_out_needs_results() -> None:
    n = leave_one_out(BDFS, lambda s: None, 0.15)
    assert n.culprit is None and n.reason == "too few runs gave a result"


# ------------------------------------------------------------------------------ planner


def test_plan_fits_budget_most_telling_first(policy: DiagPolicy) -> None:
    p = plan(policy, 2, None)
    # value per second: rccl 10/60, pbqt 9/45, pebb 6/40, transferbench 7/50, babel 5/60,
    # gst 7/160
    assert p.run == [
        "rvs.pbqt",
        "rccl.all_reduce",
        "rvs.pebb",
        "transferbench.p2p",
        "rvs.babel",
        "rvs.gst",
    ]
    assert [s.test for s in p.skipped] == ["rvs.iet", "rccl.all_reduce.cluster"]
    assert "level 3" in p.skipped[0].reason
    p = plan(policy, 2, 150)
    assert p.run == ["rvs.pbqt", "rccl.all_reduce", "rvs.pebb"] and p.seconds == 145
    assert {s.test: s.reason for s in p.skipped}["rvs.gst"] == "budget: needs 160 s, 5 s left"
    p = plan(policy, 3, None, missing={"rccl.all_reduce": "all_reduce_perf not found"})
    assert "rvs.iet" in p.run and "rccl.all_reduce" not in p.run
    assert p.skipped[0].reason == "tool missing: all_reduce_perf not found"


def test_bad_policy_is_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "d.yml"
    f.write_text("name: x\ntests:\n  rvs.gst: {level: 2, seconds: 10, target_gflops: -1}\n")
    with pytest.raises(BadInput) as e:
        load_diag_policy(f)
    assert e.value.file == str(f) and "target_gflops" in str(e.value)
    f.write_text("name: x\ntests:\n  rvs.nope: {seconds: 1}\n")
    with pytest.raises(BadInput):
        load_diag_policy(f)


# ------------------------------------------------------------------------------ stragglers


def test_straggler_node_flagged_on_16() -> None:
    vals = {f"node{i:02d}": 340.0 + (i % 5) for i in range(1, 17)}
    vals["node11"] = 280.0
    got = stragglers(vals, Stragglers())
    assert [s.key for s in got] == ["node11"]
    assert got[0].score is not None and got[0].score < -3.5
    # a fleet whose values barely differ flags nothing below min_drop, even with MAD 0
    same = dict.fromkeys((f"n{i}" for i in range(8)), 100.0)
    same["n3"] = 97.0
    assert stragglers(same, Stragglers()) == []
    same["n3"] = 80.0
    s = stragglers(same, Stragglers())
    assert [x.key for x in s] == ["n3"] and s[0].score is None
    assert stragglers({"a": 1.0, "b": 0.1}, Stragglers()) == []  # too few to judge


# ------------------------------------------------------------------------------ node runner


def test_tool_killed_at_deadline_with_its_children(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    pidfile = tmp_path / "child.pid"
    script.write_text(
        textwrap.dedent(f"""
        import subprocess, sys, time
        c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(c.pid))
        print("ramping", flush=True)
        time.sleep(60)
        """)
    )
    t = time.monotonic()
    r = run_tool([sys.executable, str(script)], deadline=1.5)
    assert r["timed_out"] is True and time.monotonic() - t < 10
    assert "ramping" in str(r["output"])
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the tool's child outlived its deadline")


def test_find_tool_under_root(tmp_path: Path) -> None:
    assert find_tool(str(tmp_path), ("opt/rocm/bin/rvs",)) is None
    rvs = tmp_path / "opt/rocm/bin/rvs"
    rvs.parent.mkdir(parents=True)
    rvs.write_text("#!/bin/sh\n")
    assert find_tool(str(tmp_path), ("opt/rocm/bin/rvs",)) is None  # not executable
    rvs.chmod(0o755)
    assert find_tool(str(tmp_path), ("opt/rocm/bin/rvs",)) == str(rvs)
    r = run_tool([str(tmp_path / "nope")], deadline=5)
    assert r["missing"] and r["rc"] is None
