"""Compute partitions end to end (issue 16 parts 3 and 4, GPU side): a simulated fleet whose
MI355X are in CPX (scenario cpx-partitions: 2 nodes x 8 GPUs x 8 logical devices), read by
the real amdsmi package through Ansible. The gate counts physical GPUs and lists the logical
devices under each; facts print the same; a duplicated node fails the gate naming both.
One module-scoped fleet of 2 nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Fleet, make_fleet, run_tuner

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two bare CPX nodes, provisioned as the docs say: the gate runs under each node's
    /opt/tuner/venv, as on a user's fleet."""
    tmp = tmp_path_factory.mktemp("cpx")
    for f in make_fleet(tmp / "state", None, 2, "--scenario", "cpx-partitions", runtime="bare"):
        r = f.tuner("provision", "--json", timeout=900)
        assert r.rc == 0, r.err
        yield f


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> str:
    p = tmp_path_factory.mktemp("pol") / "cpx.yml"
    p.write_text("name: cpx\nchecks:\n  gpu.partition: {compute: CPX, memory: NPS1}\n")
    return str(p)


def test_gate_counts_physical_gpus_and_lists_partitions(fleet: Fleet, policy: str) -> None:
    r = fleet.tuner("check", "--policy", policy, "--json", "-i", fleet.inventory)
    assert r.rc == 0, r.err
    inv = r.json()
    assert inv["usable_physical_gpus"] == 16 and inv["installed_physical_gpus"] == 16
    assert inv["usable_gpus"] == 128  # logical devices: what masks and slots count
    assert inv["summary"] == "16 of 16 GPUs usable (128 logical devices usable, CPX)"
    node = inv["nodes"][0]
    assert len(node["physical_gpus"]) == 8
    first = node["physical_gpus"][0]
    assert first["bdf"] == "0000:05:00.0" and first["partitions"] == list(range(8))
    # every logical device has its own render node under the one PCI device
    renders = {e["render_node"] for e in node["usable"]}
    assert len(renders) == 64
    human = fleet.tuner("check", "--policy", policy, "-i", fleet.inventory)
    assert "8/8 usable (64 logical devices)" in human.out, human.out
    assert "16 of 16 GPUs usable" in human.out
    # the default policy (SPX) excludes every logical device: counted as physical GPUs
    r = fleet.tuner("check", "--json", "-i", fleet.inventory)
    assert r.rc == 1 and r.json()["summary"].startswith("0 of 16 GPUs usable")


def test_facts_print_physical_gpus_and_one_node_twice_fails(
    fleet: Fleet, tmp_path: Path, policy: str
) -> None:
    r = fleet.tuner("facts", "-i", fleet.inventory)
    assert r.rc == 0, r.err
    assert "8 x CPX (64 logical, PCI 8)" in r.out, r.out
    r = fleet.tuner("facts", "--json", "-i", fleet.inventory)
    docs = r.json()["nodes"]
    g = docs[0]["gpus"][9]
    assert (g["partition_id"], g["num_partitions"], g["bdf"]) == (1, 8, "0000:15:00.1")
    assert g["activity"]["gfx"] == 0 and g["clocks"]["gfx"]["current"] == 144
    assert g["xgmi_bit_rates"] == [32] * 8 and g["vram_vendor"] == "HYNIX"
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"nodes": [docs[0], {**docs[0], "name": "node99"}]}))
    r = run_tuner("check", "--facts", str(twice), "--policy", policy, "--json", state=tmp_path)
    assert r.rc == 1
    (reason,) = r.json()["gate"]["reasons"]
    assert reason.startswith(f"{docs[0]['name']} and node99 report the same identities")
