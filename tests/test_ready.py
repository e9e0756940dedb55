"""`tuner ready` on a simulated fleet over sshd: not ready untuned or rolled back (where
`tuner check` alone passes), ready when tuned, a drifted node excluded with its reason (or
the answer failed with --strict); its report feeds `tuner export`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Fleet, make_fleet, run_tuner


@pytest.fixture
def fleet3(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path / "state", 3)


@pytest.mark.fleet
def test_ready_lifecycle(fleet3: Fleet, tmp_path: Path) -> None:
    f = fleet3
    r = f.tuner("ready", "--profile", "inference", "--json")
    assert r.rc == 1
    doc = r.json()
    assert doc["schema"] == "tuner.ready/1" and not doc["passed"]
    assert {h["verify"] for h in doc["hosts"]} == {"drift"}
    assert doc["gpus"]["usable_gpus"] == 0

    # --reboot if-needed: the kernel command line is booted too (pending would exclude)
    assert f.tuner("apply", "--profile", "inference", "--reboot", "if-needed").rc == 0
    out = tmp_path / "ready.json"
    r = f.tuner("ready", "--profile", "inference", "--output", str(out), "--json")
    assert r.rc == 0, r.out[-2000:]
    assert r.json()["passed"] and r.json()["gpus"]["usable_gpus"] == 24
    assert json.loads(out.read_text())["nodes"][0]["address"] == "127.0.0.1"

    # node03 drifts: excluded with its reason; --strict fails the answer
    (f.roots["node03"] / "proc/sys/kernel/numa_balancing").write_text("1\n")
    r = f.tuner("ready", "--profile", "inference", "--output", str(out), "--json")
    assert r.rc == 0, r.out[-2000:]
    doc = r.json()
    node03 = next(n for n in doc["gpus"]["nodes"] if n["name"] == "node03")
    assert node03["status"] == "excluded" and node03["usable"] == []
    assert "sysctl.kernel.numa_balancing is '1', profile wants '0'" in node03["reason"]
    assert doc["gpus"]["usable_gpus"] == 16
    hf = tmp_path / "hosts"
    assert f.tuner("export", "--from", str(out), "--format", "hostfile", "-o", str(hf)).rc == 0
    assert "node03" not in hf.read_text()
    r = f.tuner("ready", "--profile", "inference", "--strict", "--json")
    assert r.rc == 1 and "--strict" in r.json()["reasons"][0]
    r = f.tuner("ready", "--profile", "inference", "--max-excluded-nodes", "0", "--json")
    assert r.rc == 1 and "max-excluded-nodes" in " ".join(r.json()["reasons"])

    # rolled back: check still passes (GPUs are healthy), ready does not
    assert f.tuner("rollback").rc == 0
    assert f.tuner("check").rc == 0
    r = f.tuner("ready", "--profile", "inference", "--json")
    assert r.rc == 1 and r.json()["gpus"]["usable_gpus"] == 0


def test_ready_bad_input(tmp_path: Path) -> None:
    r = run_tuner("ready", "--profile", "no-such-profile", state=tmp_path / "state")
    assert r.rc == 2 and "Traceback" not in r.err
