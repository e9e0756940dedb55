"""The gate's node-side checks (issue 16 parts 3 and 4), pure, on data files: PCIe AER
counters (gpu.pcie.aer) and amdgpu events in the kernel log since boot (gpu.kernel_log), the
collector's readers on a node tree, and the simulated node's /proc files."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, TUNER, Fleet, make_fleet

from agent.capture import bundle
from agent.gpu import collect
from agent.gpu.checks import aer, kernellog
from agent.gpu.gate import evaluate_node
from agent.gpu.model import GpuFacts, KernelLog, NodeFacts
from agent.gpu.policy import AerCheck, KernelLogCheck, load_policy
from agent.sim import fromcapture, nodetree
from agent.sim.gpu.build import build_library

DATA = Path(__file__).parent / "data"


def _aer_dir(name: str) -> dict[str, dict[str, int]]:
    d = DATA / "aer" / name
    return {
        kind: collect.parse_aer((d / f"aer_dev_{kind}").read_text())
        for kind in ("correctable", "nonfatal", "fatal")
    }


def test_aer_files_of_both_kernel_generations_parse() -> None:
    old = _aer_dir("linux-4.19-doc")
    assert old["correctable"]["Receiver Error"] == 2
    assert old["correctable"]["RELAY_NUM Rollover"] == 0
    assert aer.total(old["correctable"], "correctable") == 2
    assert aer.total(old["fatal"], "fatal") == 0
    new = _aer_dir("linux-6")
    assert new["fatal"]["SDES"] == 1 and new["fatal"]["TOTAL_ERR_FATAL"] == 1
    assert aer.total(new["nonfatal"], "nonfatal") == 2
    assert aer.total({"RxErr": 3, "BadTLP": 1}, "correctable") == 4  # no TOTAL line: the sum


def test_aer_severities() -> None:
    p = AerCheck()
    fatal = aer.pcie_aer(GpuFacts(index=0, aer=_aer_dir("linux-6")), p)
    assert fatal.status == "fail" and fatal.blocks
    assert fatal.evidence["totals"] == {"fatal": 1, "nonfatal": 2, "correctable": 8}
    assert "SDES 1" in fatal.message and "CmpltTO 2" in fatal.message
    nonfatal = _aer_dir("linux-6")
    nonfatal["fatal"] = {"TOTAL_ERR_FATAL": 0}
    r = aer.pcie_aer(GpuFacts(index=0, aer=nonfatal), p)
    assert r.status == "warn" and not r.blocks
    assert aer.pcie_aer(GpuFacts(index=0, aer=_aer_dir("linux-4.19-doc")), p).status == "pass"
    strict = AerCheck(correctable_max=0, correctable_severity="fail")
    assert aer.pcie_aer(GpuFacts(index=0, aer=_aer_dir("linux-4.19-doc")), strict).status == "fail"
    none = aer.pcie_aer(GpuFacts(index=0, aer=None, unsupported=["aer"]), p)
    assert none.status == "unknown" and not none.blocks  # optional: no AER files
    assert not aer.pcie_aer(GpuFacts(index=0, aer=None), AerCheck(required=True)).status == "pass"


def _log(name: str) -> list[str]:
    return (DATA / "kernel-log" / name).read_text().splitlines()


def test_kernel_log_events_are_parsed_with_their_pci_address() -> None:
    events = kernellog.parse(_log("amdgpu-events.txt"))
    got = [(e.kind, e.bdf, e.ring) for e in events]
    assert got == [
        ("ring_timeout", "0000:0b:00.0", "gfx_0.0.0"),
        ("gpu_reset", "0000:0b:00.0", None),
        ("soft_recovered", "0000:1b:00.0", "sdma0"),
        ("ras_uncorrectable", "0000:2b:00.0", None),
        ("ras_uncorrectable", "0000:4b:00.0", None),  # journalctl's prefix
        ("ring_timeout", "0000:5b:00.1", "comp_1.0.0"),
        ("gpu_reset", "0000:99:00.0", None),
    ]  # not events: boot lines, "GPU reset(2) succeeded!", 0 uncorrectable, correctable counts
    old = kernellog.parse(_log("drm-error-old.txt"))
    assert [(e.kind, e.bdf, e.ring) for e in old] == [
        ("ring_timeout", None, "gfx"),
        ("gpu_reset", "0000:0b:00.0", None),
    ]


def _node(lines: list[str] | None, error: str | None = None) -> NodeFacts:
    facts = NodeFacts.model_validate(json.loads((DATA / "facts" / "healthy.json").read_text()))
    buses = ("0b", "1b", "2b", "3b", "4b", "5b", "6b", "7b")
    for g, bus in zip(facts.gpus, buses, strict=True):
        g.bdf = f"0000:{bus}:00.0"
    facts.pci_gpus = [
        p.model_copy(update={"bdf": g.bdf}) for p, g in zip(facts.pci_gpus, facts.gpus, strict=True)
    ]
    facts.kernel_log = KernelLog(
        source=None if error else "dmesg --kernel", error=error, lines=lines or []
    )
    return facts


def test_gate_excludes_the_gpu_the_log_line_names() -> None:
    policy = load_policy()  # checks/default.yml, with gpu.pcie.aer and gpu.kernel_log
    node = evaluate_node(_node(_log("amdgpu-events.txt")), policy)
    excluded = {e.bdf: e for e in node.excluded}
    # ring timeout + reset, RAS uncorrectable (interrupt; journalctl count), partition's line
    assert set(excluded) == {"0000:0b:00.0", "0000:2b:00.0", "0000:4b:00.0", "0000:5b:00.0"}
    msg = excluded["0000:0b:00.0"].checks[0].message
    assert "ring timeout" in msg and "gfx_0.0.0" in msg and "GPU reset" in msg
    soft = next(e for e in node.usable if e.bdf == "0000:1b:00.0")
    log = [c for c in soft.checks if c.check == "gpu.kernel_log"]
    assert [c.status for c in log] == ["warn"]  # soft recovered: warned, usable
    assert any("0000:99:00.0, which is no GPU" in w for w in node.warnings)
    assert node.status == "degraded" and len(node.usable) == 4


def test_a_line_without_pci_address_fails_every_gpu_of_the_node() -> None:
    node = evaluate_node(_node(_log("drm-error-old.txt")), load_policy())
    assert node.status == "failed" and not node.usable and len(node.excluded) == 8
    lenient = load_policy()
    lenient.checks.kernel_log = KernelLogCheck(unattributed="warn")
    node = evaluate_node(_node(_log("drm-error-old.txt")), lenient)
    assert len(node.usable) == 7  # only the GPU the reset line names is excluded


def test_unreadable_log_is_unknown_and_said() -> None:
    why = "dmesg --kernel: exit 1: dmesg: read kernel buffer failed: Operation not permitted"
    node = evaluate_node(_node(None, error=why), load_policy())
    assert len(node.usable) == 8  # optional by default: named, not excluded
    assert any(why in w for w in node.warnings)
    strict = load_policy()
    strict.checks.kernel_log = KernelLogCheck(required=True)
    assert evaluate_node(_node(None, error=why), strict).status == "failed"


def test_collector_reads_aer_and_the_kernel_log_of_a_node_tree(tmp_path: Path) -> None:
    dev = tmp_path / "sys/bus/pci/devices/0000:0b:00.0"
    dev.mkdir(parents=True)
    for f in (DATA / "aer/linux-6").iterdir():
        (dev / f.name).write_text(f.read_text())
    assert collect.pci_aer(str(tmp_path), "0000:0b:00.0") == _aer_dir("linux-6")
    assert collect.pci_aer(str(tmp_path), "0000:1b:00.0") is None
    assert collect.kernel_events(str(tmp_path))["error"]  # no var/log/dmesg: why, not a crash
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / "var/log/dmesg").write_text((DATA / "kernel-log/amdgpu-events.txt").read_text())
    k = collect.kernel_events(str(tmp_path))
    assert k["error"] is None and k["amdgpu_lines"] == 13
    assert len(kernellog.parse(k["lines"])) == 7  # every event survives the node's narrowing
    assert not any("enabling device" in ln for ln in k["lines"])


def test_simulated_proc_files_are_an_epyc_9575f_node() -> None:
    t = nodetree.Topology(smt=False)
    info = nodetree.cpuinfo(t)
    blocks = info.split("\n\n")
    assert len(blocks) == 128  # SMT off: one logical CPU per core
    assert "model name\t: AMD EPYC 9575F 64-Core Processor" in blocks[0]
    assert "cpu family\t: 26" in blocks[0] and "siblings\t: 64" in blocks[0]
    assert "physical id\t: 1" in blocks[64] and "core id\t\t: 0" in blocks[64]
    assert len(nodetree.cpuinfo(nodetree.Topology()).split("\n\n")) == 256
    mem = nodetree.meminfo(t)
    total_kb = int(mem.splitlines()[0].split()[1])
    assert 1.45 * 2**30 < total_kb < 1.5 * 2**30  # 2 x 768 GiB installed, less what is kept


# ------------------------------------------------------ one small fleet, through Ansible


@pytest.fixture(scope="module")
def ring_timeout_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two bare nodes, provisioned as the docs say: the collector and capture run under each
    node's /opt/tuner/venv, as on a user's fleet."""
    tmp = tmp_path_factory.mktemp("kl")
    for f in make_fleet(tmp / "state", 2, 2, "--scenario", "kernel-ring-timeout", runtime="bare"):
        r = f.tuner("provision", "--json", timeout=900)
        assert r.rc == 0, r.err
        yield f


@pytest.mark.fleet
def test_fleet_gate_capture_and_replay_of_a_ring_timeout(
    ring_timeout_fleet: Fleet, tmp_path: Path
) -> None:
    """The node-side collector under Ansible reads the kernel log and AER files; capture
    records them; a node built from the bundle gives the gate the same verdict."""
    fleet = ring_timeout_fleet
    r = fleet.tuner("check", "--json", "-i", fleet.inventory)
    assert r.rc == 0, r.err
    inv = r.json()
    nodes = {n["name"]: n for n in inv["nodes"]}
    assert len(nodes["node01"]["usable"]) == 8 and nodes["node01"]["warnings"] == []
    bad = nodes["node02"]["excluded"]
    assert [e["index"] for e in bad] == [3]
    assert bad[0]["checks"][0]["check"] == "gpu.kernel_log"
    assert "gfx_0.0.0" in bad[0]["checks"][0]["message"]

    r = fleet.tuner("capture", "-o", str(tmp_path / "b"), "--json", "-i", fleet.inventory)
    assert r.rc == 0, r.err
    path = next(w["bundle"] for w in r.json()["bundles"] if w["host"] == "node02")
    b = bundle.read_bundle(path)
    assert "ring gfx_0.0.0 timeout" in (b.text("kernel-log.txt") or "")
    aer_files = [p for p in b.files if p.endswith("/aer_dev_fatal")]
    assert len(aer_files) >= 8  # every GPU's (and NIC's) PCI device
    assert "model name\t: AMD EPYC 9575F" in (b.text("node/proc/cpuinfo") or "")

    root = tmp_path / "replay"
    used = fromcapture.build(root, b, build_library(tmp_path / "lib"))
    assert not any(d.startswith("kernel log") for d in used), used
    env = {k: v for k, v in os.environ.items() if k != "ROCM_PATH"}
    p = subprocess.run(
        [*TUNER, "check", "--local", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    again = json.loads(p.stdout)["nodes"][0]
    assert [e["index"] for e in again["excluded"]] == [3], p.stderr
    assert again["excluded"][0]["checks"][0]["check"] == "gpu.kernel_log"
