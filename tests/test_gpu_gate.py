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
    "xgmi-link-down": ("gpu.xgmi.links", {"down": [2], "up": 6}, True),
    "xgmi-errors": ("gpu.xgmi.errors", {"xgmi_error_status": 2}, True),
    "pcie-downtrained": ("gpu.pcie.width", {"width": 8, "max_width": 16}, True),
    "pcie-slow": ("gpu.pcie.speed", {"speed": 16000, "max_speed": 32000}, False),
    "pcie-errors": ("gpu.pcie.errors", {"l0_to_recovery_count": 250}, True),
    "temperature-critical": ("gpu.temperature", {}, True),
    "temperature-high": ("gpu.temperature", {}, False),
    "foreign-process": ("gpu.processes", {}, True),
    "partition-mode": ("gpu.partition", {"actual": {"compute": "CPX", "memory": "NPS1"}}, True),
    "gpu-missing": ("gpu.missing", {"on_pci_bus": True, "in_amdsmi": False}, True),
    "amdsmi-error": ("gpu.query", {}, True),
    "firmware-mixed-hive": ("gpu.firmware", {}, True),
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
    query = next(c for c in bad["checks"] if c["check"] == "gpu.query")
    assert "DRIVER_NOT_LOADED" in query["message"]
    ecc = next(c for c in bad["checks"] if c["check"] == "gpu.ecc.uncorrectable")
    assert ecc["status"] == "unknown"  # required and unknown: it blocks too


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
    assert facts["gpus"][FAULTY]["xgmi_links"] == ["U", "U", "D", "U", "U", "U", "U"]
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


def test_node_past_deadline_and_unreachable_node_fail_closed(hang_fleet: Fleet) -> None:
    # node02 hangs in amdsmi_init; node03 is unreachable (its sshd is gone)
    info = json.loads((hang_fleet.state / "sim" / "fleet.json").read_text())
    if info["connection"] == "ssh":
        os.kill(info["nodes"][2]["sshd_pid"], signal.SIGTERM)
    else:
        pytest.skip("needs sshd nodes")
    r = hang_fleet.tuner("check", "--deadline", "4", "--json", timeout=120)
    inv = r.json()
    by = {n["name"]: n for n in inv["nodes"]}
    assert by["node01"]["status"] == "ok" and len(by["node01"]["usable"]) == 8
    assert by["node02"]["status"] == "failed" and "deadline" in by["node02"]["reason"]
    assert by["node03"]["status"] == "failed" and "unreachable" in by["node03"]["reason"]
    assert inv["usable_gpus"] == 8 and r.rc == 0
    capped = hang_fleet.tuner("check", "--deadline", "4", "--max-excluded-nodes", "1", timeout=120)
    assert capped.rc == 1 and "max-excluded-nodes" in capped.out
