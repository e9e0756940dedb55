"""The GPU health gate: the real amdsmi package over the simulated libamd_smi.so.

Per failure condition: exactly the affected GPU is excluded, with the right check and
evidence, and its neighbours stay usable. Then the fleet: the MLPerf scenarios, fail-closed
cases (library error, a node past its deadline, an unreachable node), the blast-radius cap
and the minimums.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, TUNER, Fleet, make_fleet, run_tuner

from agent.sim.gpu.build import BuildError, build_library
from agent.sim.gpu.state import install_node
from agent.sim.scenarios import ONE, SCENARIOS, node_state

FAULTY = 3  # the GPU the single-failure scenarios break (node index 1)

# scenario -> (check id, evidence key: expected value, excluded?)
EXPECT: dict[str, tuple[str, dict[str, Any], bool]] = {
    "ecc-uncorrectable": ("gpu.ecc.uncorrectable", {"uncorrectable": 4}, True),
    "ecc-deferred": ("gpu.ecc.deferred", {"deferred": 2}, False),
    "bad-pages-threshold": ("gpu.bad_pages.count", {"bad_pages": 128, "threshold": 128}, True),
    "bad-pages-near-threshold": ("gpu.bad_pages.count", {"bad_pages": 116}, False),
    "bad-pages-unreservable": ("gpu.bad_pages.unreservable", {"unreservable": 1}, True),
    "bad-pages-pending": ("gpu.bad_pages.pending", {"pending": 1}, False),
    "cper-fatal": ("gpu.cper.fatal", {"fatal_records": 1}, True),
    "xgmi-errors": ("gpu.xgmi.errors", {"xgmi_wafl_uncorrectable": 3}, True),
    "ecc-correctable-storm": ("gpu.ecc.correctable", {"blocks": {"UMC": 50_000}}, True),
    "ras-umc-off": ("gpu.ras.enabled", {}, True),
    "pcie-replay-storm": ("gpu.pcie.replay", {"replay_count": 5000, "per_minute": 3.472}, False),
    "pcie-gen4": ("gpu.pcie.speed", {"speed": 16000, "max_speed": 16000, "expected": 32000}, False),
    "vram-used-idle": ("gpu.vram", {"used_gb": 20.0}, True),
    "power-cap-low": ("gpu.power", {"power_cap_w": 1000.0}, True),
    "render-node-missing": ("gpu.device_access", {"render_node_access": False}, True),
    "pcie-downtrained": ("gpu.pcie.width", {"width": 8, "max_width": 16}, True),
    "pcie-slow": ("gpu.pcie.speed", {"speed": 16000, "max_speed": 32000}, False),
    "pcie-errors": ("gpu.pcie.errors", {"l0_to_recovery_count": 250}, True),
    "temperature-critical": ("gpu.temperature", {}, True),
    "temperature-high": ("gpu.idle", {"hotspot_c": 101}, True),
    "gpu-busy-idle": ("gpu.idle", {"gfx_activity_pct": 100, "gfx_clock_mhz": 2400}, True),
    "foreign-process": ("gpu.processes", {}, True),
    "partition-mode": ("gpu.partition", {"actual": {"compute": "CPX", "memory": "NPS1"}}, True),
    "gpu-missing": ("gpu.missing", {"on_pci_bus": True, "in_amdsmi": False}, True),
    "amdsmi-error": ("gpu.ecc.uncorrectable", {}, True),
    "firmware-mixed-hive": ("gpu.firmware", {}, True),
    "aer-fatal": ("gpu.pcie.aer", {"totals": {"correctable": 0, "nonfatal": 0, "fatal": 1}}, True),
    "aer-nonfatal": (
        "gpu.pcie.aer",
        {"totals": {"correctable": 7, "nonfatal": 2, "fatal": 0}},
        False,
    ),
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_library(tmp_path_factory.mktemp("lib"))
    except BuildError as e:
        pytest.skip(f"no C compiler: {e}")


def local_check(root: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    env = dict(os.environ)
    env.pop("ROCM_PATH", None)
    p = subprocess.run(
        [*TUNER, "check", "--local", "--root", str(root), "--json", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {}, p.stderr


def distinct(doc: dict[str, Any], name: str, n: int) -> dict[str, Any]:
    """A copy of a node's facts under another name with its own GPU identities (serials,
    UUIDs and hive ids must be unique across a fleet: fleet.identity)."""
    gpus = []
    for g in doc["gpus"]:
        g = dict(g)
        if g.get("serial"):
            g["serial"] = f"{g['serial']}{n:03d}"
        if g.get("uuid"):
            g["uuid"] = f"{n:04x}{g['uuid'][4:]}"
        if g.get("hip_uuid"):
            g["hip_uuid"] = f"GPU-{n:04x}{g['hip_uuid'][8:]}"
        if g.get("xgmi_hive_id"):
            g["xgmi_hive_id"] = g["xgmi_hive_id"] + (n << 16)
        gpus.append(g)
    return {**doc, "name": name, "gpus": gpus}


def test_every_failure_condition_has_a_scenario_and_an_expectation() -> None:
    assert set(EXPECT) == set(ONE)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_failure_condition_excludes_exactly_the_affected_gpu(
    lib: Path, tmp_path: Path, name: str
) -> None:
    check, evidence, excluded = EXPECT[name]
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS[name], 1), lib)
    rc, inv, err = local_check(root)
    assert "Traceback" not in err, err
    node = inv["nodes"][0]
    if name == "firmware-mixed-hive":  # mixed firmware in the hive fails the whole node
        assert rc == 1 and node["status"] == "failed" and node["usable"] == []
        bad = next(e for e in node["excluded"] if e["index"] == FAULTY)
        assert bad["checks"][0]["check"] == check
        assert "PM" in bad["checks"][0]["evidence"]["differs_from_node_majority"]
        return
    assert rc == 0, inv["gate"]
    usable = {e["index"] for e in node["usable"]}
    if excluded:
        assert inv["usable_gpus"] == 7
        assert usable == set(range(8)) - {FAULTY}
        assert len(node["excluded"]) == 1
        bad = node["excluded"][0]
        if name == "gpu-missing":
            assert bad["index"] is None and bad["bdf"] == "0000:75:00.0"
        else:
            assert bad["index"] == FAULTY and bad["uuid"] and bad["serial"]
    else:  # a warning: the GPU stays usable, the warning is on it
        assert inv["usable_gpus"] == 8 and node["excluded"] == []
        bad = next(e for e in node["usable"] if e["index"] == FAULTY)
        assert {c["status"] for c in bad["checks"]} == {"warn"}
        assert all(not e["checks"] for e in node["usable"] if e["index"] != FAULTY)
    result = next(c for c in bad["checks"] if c["check"] == check)
    for k, v in evidence.items():
        assert result["evidence"][k] == v, (k, result["evidence"])
    assert result["message"]


def test_amdsmi_error_is_fail_closed_with_the_status(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["amdsmi-error"], 1), lib)
    rc, inv, _ = local_check(root)
    bad = inv["nodes"][0]["excluded"][0]
    # The ECC query's error is the ECC checks' result: required and unknown, so it blocks,
    # with the amdsmi status named.
    ecc = next(c for c in bad["checks"] if c["check"] == "gpu.ecc.uncorrectable")
    assert ecc["status"] == "unknown" and "DRIVER_NOT_LOADED" in ecc["message"]


@pytest.mark.slow
def test_saved_facts_evaluate_like_live(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["xgmi-link-down"], 1), lib)
    env = dict(os.environ)
    p = subprocess.run(
        [*TUNER, "facts", "--local", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert p.returncode == 0, p.stderr
    facts = json.loads(p.stdout)
    assert len(facts["gpus"]) == 8 and len(facts["pci_gpus"]) == 8
    assert facts["gpus"][FAULTY]["xgmi_links"] == ["U", "U", "U", "X", "U", "D", "U", "U"]
    saved = tmp_path / "facts.json"
    saved.write_text(p.stdout)
    offline = run_tuner("check", "--facts", str(saved), "--json", state=tmp_path)
    live = local_check(root)[1]
    saved_doc = offline.json()
    for doc in (saved_doc, live):
        doc.pop("generated_at")
        for n in doc["nodes"]:
            n.pop("seconds")
    assert saved_doc == live


@pytest.mark.slow
def test_gate_options_on_saved_facts() -> None:
    data = Path(__file__).parent / "data" / "facts"
    files = [str(p) for p in sorted(data.glob("*.json"))]
    assert len(files) == 3  # healthy, one ECC failure, amdsmi_init failed

    def gate(*opts: str) -> tuple[int, dict[str, Any]]:
        r = run_tuner(
            "check",
            *sum((["--facts", f] for f in files), []),
            "--json",
            *opts,
            state=Path("/nonexistent-state"),
        )
        return r.rc, r.json()

    rc, inv = gate()
    assert rc == 0 and inv["usable_gpus"] == 15 and inv["nodes_excluded"] == 1
    assert {n["name"]: n["status"] for n in inv["nodes"]} == {
        "healthy": "ok",
        "one-ecc": "degraded",
        "init-error": "failed",
    }
    failed = next(n for n in inv["nodes"] if n["name"] == "init-error")
    assert "DRIVER_NOT_LOADED" in failed["reason"] and failed["usable"] == []
    assert len(failed["excluded"]) == 8  # its GPUs on the bus, none proven healthy

    rc, inv = gate("--min-gpus", "16")
    assert rc == 1 and "fewer than --min-gpus 16" in inv["gate"]["reasons"][0]
    rc, inv = gate("--max-excluded-nodes", "0")
    assert rc == 1 and "infrastructure" in inv["gate"]["reasons"][0]
    rc, inv = gate("--max-excluded-nodes", "1")
    assert rc == 0
    rc, inv = gate("--min-gpus-per-node", "8")
    assert inv["usable_gpus"] == 8 and inv["nodes_excluded"] == 2
    one = next(n for n in inv["nodes"] if n["name"] == "one-ecc")
    assert one["status"] == "excluded" and len(one["excluded"]) == 8
    rc, inv = gate("--min-gpus-per-node", "8", "--max-excluded-nodes", "1")
    assert rc == 1


def test_no_rocm_library(tmp_path: Path) -> None:
    env = dict(os.environ, ROCM_PATH=str(tmp_path / "no-rocm"))
    p = subprocess.run(
        [*TUNER, "check", "--local"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "libamd_smi.so was not found" in p.stderr and "ROCM_PATH" in p.stderr


def test_bad_policy(tmp_path: Path) -> None:
    pol = tmp_path / "p.yml"
    pol.write_text("checks:\n  gpu.ecc.uncorrectable: {max: -1}\n")
    r = run_tuner("check", "--local", "--policy", str(pol), state=tmp_path)
    assert r.rc == 2 and "p.yml" in r.err and "checks.gpu.ecc.uncorrectable.max" in r.err


# ------------------------------------------------------------------ the fleet, over SSH


@pytest.mark.fleet
@pytest.mark.parametrize(
    ("scenario", "usable", "installed"),
    [("mlperf-llama2-70b", 87, 88), ("mlperf-gpt-oss-120b", 94, 96)],
)
def test_mlperf_scenarios(tmp_path: Path, scenario: str, usable: int, installed: int) -> None:
    with contextmanager(make_fleet)(tmp_path, None, 2, "--scenario", scenario) as fleet:
        c = fleet.tuner("check", "--json", "--output", str(tmp_path / "inv.json"))
        assert c.rc == 0, c.out[-2000:]
        inv = json.loads((tmp_path / "inv.json").read_text())
        assert inv == c.json()
        assert inv["usable_gpus"] == usable and inv["installed_gpus"] == installed
        assert inv["nodes_usable"] == inv["nodes_total"] == installed // 8
        excluded = [
            (n["name"], e["checks"][0]["check"]) for n in inv["nodes"] for e in n["excluded"]
        ]
        assert len(excluded) == installed - usable


@pytest.fixture
def hang_fleet(tmp_path: Path) -> Any:
    yield from make_fleet(tmp_path, 3, 2, "--scenario", "node-hang")


@pytest.mark.fleet
def test_node_past_deadline_and_unreachable_node_fail_closed(hang_fleet: Fleet) -> None:
    # node02 hangs in amdsmi_init; node03 is unreachable (its sshd is gone)
    info = json.loads((hang_fleet.state / "sim" / "fleet.json").read_text())
    if info["connection"] == "ssh":
        os.kill(info["nodes"][2]["sshd_pid"], signal.SIGTERM)
    else:
        pytest.skip("needs sshd nodes")
    # 10 s: node02 hangs for 120 s; node01 must finish even on a loaded 2-core runner
    r = hang_fleet.tuner("check", "--deadline", "10", "--json", timeout=180)
    inv = r.json()
    by = {n["name"]: n for n in inv["nodes"]}
    assert by["node01"]["status"] == "ok" and len(by["node01"]["usable"]) == 8
    assert by["node02"]["status"] == "failed" and "deadline" in by["node02"]["reason"]
    assert by["node03"]["status"] == "failed" and "unreachable" in by["node03"]["reason"]
    assert inv["usable_gpus"] == 8 and r.rc == 0
    # the failed nodes' GPUs count: installed, unknown, named in the summary
    assert inv["installed_gpus"] == 24 and inv["unknown_gpus"] == 16
    assert "node03 failed (unreachable), its 8 GPUs unknown" in inv["summary"]
    capped = hang_fleet.tuner("check", "--deadline", "10", "--max-excluded-nodes", "1", timeout=180)
    assert capped.rc == 1 and "max-excluded-nodes" in capped.out


# ------------------------------------------------------------------ MI355X as ROCm answers


def test_mi355x_xgmi_status_inval_on_a_healthy_node(lib: Path, tmp_path: Path) -> None:
    """amdsmi_gpu_xgmi_error_status answers INVAL on MI355X; the gate reads XGMI_WAFL."""
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["healthy"], 0), lib)
    rc, inv, _ = local_check(root, "--gpus")
    assert rc == 0 and inv["usable_gpus"] == 8, inv["nodes"][0]["excluded"]
    p = subprocess.run(
        [*TUNER, "facts", "--local", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    g0 = json.loads(p.stdout)["gpus"][0]
    assert "INVAL" in g0["errors"]["xgmi_errors"] and g0["xgmi_error_status"] is None
    assert len(g0["xgmi_links"]) == 8 and g0["xgmi_links"][0] == "X"
    off = run_tuner(
        "check", "--facts", str(_save(tmp_path, p.stdout)), "--json", state=tmp_path
    ).json()
    ev = off["nodes"][0]["gpus"][0]
    assert ev["verdict"] == "usable" and ev["xgmi"] == "XUUUUUUU"


def _save(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "facts.json"
    f.write_text(text)
    return f


def test_link_down_between_two_present_gpus_names_the_peer_on_both(
    lib: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["xgmi-link-down"], 1), lib)
    rc, inv, _ = local_check(root)
    node = inv["nodes"][0]
    assert rc == 0 and inv["usable_gpus"] == 6
    bad = {e["index"]: e["checks"][0] for e in node["excluded"]}
    assert set(bad) == {3, 5}
    assert "GPU 5" in bad[3]["message"] and "GPU 3" in bad[5]["message"]
    assert bad[3]["evidence"]["down_to"] == ["GPU 5 (0000:95:00.0)"]


def test_gpu_off_the_bus_excludes_itself_not_its_peers(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["gpu-missing"], 1), lib)
    rc, inv, _ = local_check(root)
    node = inv["nodes"][0]
    assert rc == 0 and inv["usable_gpus"] == 7 and len(node["excluded"]) == 1
    peer = next(g for g in node["gpus"] if g["index"] == 0)
    assert peer["verdict"] == "usable" and peer["xgmi"] == "XUUDUUU"  # 7 sockets -> 7 slots


def test_collector_without_root_names_what_needs_root(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["collector-not-root"], 1), lib)
    rc, inv, _ = local_check(root)
    node = inv["nodes"][0]
    assert rc == 1 and inv["usable_gpus"] == 0
    assert node["needs_root"] == ["CPER records", "bad-page threshold"]
    assert "needs root: CPER records, bad-page threshold" in inv["gate"]["reasons"][0]
    checks = {c["check"]: c for c in node["excluded"][0]["checks"]}
    assert checks["gpu.bad_pages.count"]["message"].startswith("needs root: bad-page threshold")
    assert "gpu.cper.fatal" not in checks and "gpu.query" not in checks  # optional: no exclusion


def test_firmware_outside_the_baseline_on_every_node(lib: Path, tmp_path: Path) -> None:
    """A bad rollout everywhere agrees with the fleet majority; only the baseline catches it."""
    pol = tmp_path / "baseline.yml"
    text = (REPO / "checks" / "default.yml").read_text()
    pol.write_text(text.replace("allowed: {}", 'allowed: {PM: ["00.85.14.00"]}'))
    facts = []
    for i in range(2):
        root = tmp_path / f"root{i}"
        install_node(root, node_state(SCENARIOS["firmware-bad-rollout"], i), lib)
        p = subprocess.run(
            [*TUNER, "facts", "--local", "--root", str(root), "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        doc = json.loads(p.stdout)
        doc["name"] = f"node{i + 1:02d}"
        facts.append(doc)
    f = tmp_path / "fleet.json"
    f.write_text(json.dumps({"nodes": facts}))
    plain = run_tuner("check", "--facts", str(f), "--json", state=tmp_path)
    assert plain.rc == 0 and plain.json()["usable_gpus"] == 16  # the majority agrees
    r = run_tuner("check", "--facts", str(f), "--json", "--policy", str(pol), state=tmp_path)
    inv = r.json()
    assert r.rc == 1 and inv["usable_gpus"] == 0 and inv["excluded_gpus"] == 16
    c = inv["nodes"][1]["excluded"][0]["checks"][0]
    assert c["check"] == "gpu.firmware.baseline"
    assert c["evidence"]["outside_baseline"] == {"PM": "00.85.14.01"}
    assert "PM 00.85.14.01 (allowed 00.85.14.00)" in c["message"]


def test_unreachable_node_counts_its_gpus_as_unknown() -> None:
    from agent.gpu.gate import GateOptions
    from agent.gpu.model import NodeFacts
    from agent.gpu.policy import load_policy
    from agent.gpu.run import gate

    facts = [
        NodeFacts.model_validate(
            json.loads((Path(__file__).parent / "data" / "facts" / "healthy.json").read_text())
        )
    ]
    name = facts[0].name
    pol = load_policy()
    inv = gate(
        facts, {"node05": "unreachable: ssh timed out"}, [name, "node05"], pol, GateOptions()
    )
    assert inv.usable_gpus == 8 and inv.installed_gpus == 16 and inv.unknown_gpus == 8
    assert inv.summary == "8 of 16 GPUs usable; node05 failed (unreachable), its 8 GPUs unknown"
    inv = gate(
        facts, {"node05": "unreachable: x"}, [name, "node05"], pol, GateOptions(), {"node05": 4}
    )
    assert inv.installed_gpus == 12 and inv.unknown_gpus == 4


def test_library_older_than_the_package_is_named(tmp_path: Path) -> None:
    try:
        old = build_library(tmp_path / "old", hidden=("amdsmi_get_gpu_cper_entries",))
    except BuildError as e:
        pytest.skip(f"no C compiler: {e}")
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["healthy"], 0), old)
    rc, _, err = local_check(root)
    assert rc == 2 and "Traceback" not in err
    assert "lacks amdsmi_get_gpu_cper_entries" in err and "older than the package" in err
    assert "was not found" not in err


def test_errors_of_optional_checks_exclude_nothing(lib: Path, tmp_path: Path) -> None:
    """CPER and firmware are not required: their query errors leave the GPU usable, named."""
    state = node_state(SCENARIOS["healthy"], 0)
    state.gpus[FAULTY].fail = {"amdsmi_get_gpu_cper_entries": "IO", "amdsmi_get_fw_info": "IO"}
    root = tmp_path / "root"
    install_node(root, state, lib)
    rc, inv, _ = local_check(root)
    assert rc == 0 and inv["usable_gpus"] == 8
    gpu = next(e for e in inv["nodes"][0]["usable"] if e["index"] == FAULTY)
    got = {c["check"]: c for c in gpu["checks"]}
    assert got["gpu.cper.fatal"]["status"] == "unknown" and "IO" in got["gpu.cper.fatal"]["message"]
    assert got["gpu.firmware"]["status"] == "unknown" and "gpu.query" not in got


def test_per_gpu_view_stays_short_at_64_nodes(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "facts"
    healthy = json.loads((data / "healthy.json").read_text())
    one = json.loads((data / "one-ecc.json").read_text())
    docs = [distinct(healthy, f"node{i:02d}", i) for i in range(1, 64)] + [
        distinct(one, "node64", 64)
    ]
    f = tmp_path / "fleet.json"
    f.write_text(json.dumps({"nodes": docs}))
    env = dict(os.environ, COLUMNS="200")
    p = subprocess.run(
        [*TUNER, "check", "--facts", str(f), "--gpus"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.count("node[01-63] (63)") == 2  # one group per table (ClusterShell range)
    assert out.count("node64") >= 2  # its 8 GPUs listed, and in the node table
    assert len(out.splitlines()) < 60
    assert "511 of 512 GPUs usable" in out and "64 of 64 nodes usable" in out


def test_expected_gpus_host_variable_is_validated(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_host: 127.0.0.1, tuner_expected_gpus: 0}\n")
    r = run_tuner("check", "--inventory", str(inv), state=tmp_path)
    assert r.rc == 2 and "tuner_expected_gpus" in r.err and "Traceback" not in r.err


def test_numa_placement_is_reported_per_gpu(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["healthy"], 0), lib)
    _, inv, _ = local_check(root)
    g5 = next(g for g in inv["nodes"][0]["gpus"] if g["index"] == 5)
    assert g5["numa_node"] == 1 and g5["nics_same_numa"] == ["rdma4", "rdma5", "rdma6", "rdma7"]
    assert g5["render_node"] == "/dev/dri/renderD133"


def test_gpu_whose_xgmi_died_takes_the_blame_not_its_peers(lib: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_node(root, node_state(SCENARIOS["mlperf-gpt-oss-120b"], 9), lib)
    rc, inv, _ = local_check(root)
    node = inv["nodes"][0]
    assert rc == 0 and inv["usable_gpus"] == 7
    assert [e["index"] for e in node["excluded"]] == [7]
    assert len(node["excluded"][0]["checks"][0]["evidence"]["down_to"]) == 7


def test_library_version_differing_from_the_fleet_is_named(lib: Path, tmp_path: Path) -> None:
    docs = []
    for i in range(2):
        root = tmp_path / f"root{i}"
        install_node(root, node_state(SCENARIOS["rocm-upgrade-halfway"], i), lib)
        p = subprocess.run(
            [*TUNER, "facts", "--local", "--root", str(root), "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        docs.append({**json.loads(p.stdout), "name": f"node{i + 1:02d}"})
    docs.append(distinct(docs[0], "node03", 3))
    f = tmp_path / "fleet.json"
    f.write_text(json.dumps({"nodes": docs}))
    r = run_tuner("check", "--facts", str(f), "--json", state=tmp_path)
    inv = r.json()
    assert r.rc == 0 and inv["usable_gpus"] == 24
    assert docs[1]["amdsmi_library"] == "6.4.0" and docs[0]["amdsmi_package"] == "7.0.2"
    assert any("node02: libamd_smi.so 6.4.0, the fleet runs" in w for w in inv["fleet"]["warnings"])


def test_fleet_collector_without_root_over_ssh(tmp_path: Path) -> None:
    """Through Ansible: become is a no-op when already root (the simulated fleet), and the
    node whose collector lacks root says what it could not read."""
    with contextmanager(make_fleet)(tmp_path, None, 2, "--scenario", "collector-not-root") as fl:
        r = fl.tuner("check", "--json", timeout=180)
        inv = r.json()
        by = {n["name"]: n for n in inv["nodes"]}
        assert inv["usable_gpus"] == 8 and r.rc == 0, inv["gate"]
        assert by["node01"]["needs_root"] == [] and len(by["node01"]["usable"]) == 8
        assert by["node02"]["needs_root"] == ["CPER records", "bad-page threshold"]
        assert any(w.startswith("needs root:") for w in by["node02"]["warnings"])
        human = fl.tuner("check", timeout=180)
        assert "needs root: CPER records, bad-page threshold" in human.out
