"""Convergence under faults (issue 23): kill -9 of apply or rollback at seeded random moments,
two runs at once (same or different profiles, same or different state folders); a re-run or a
rollback converges with exit 0, byte-exact node files, and no pending change of tuner's on any
BMC personality. Without a reboot anywhere: what was staged is taken back, not reset away.

Real CLI and Ansible; four local hosts (node trees under tmp, one per BMC personality) and
their BMCs in-process, so each run takes seconds, not a fleet's minute."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from conftest import REPO, TUNER, tree_hash
from test_bios_fleet import PASSWORD, run

from agent.sim import nodetree
from agent.sim.bmc import BmcHandle, start_bmcs
from agent.sim.bmc.personalities import VENDORS

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

PROFILES = {
    "tuned": {
        "name": "tuned",
        "description": "the inference profile's OS and BIOS parts",
        "os": {
            "thp": {"enabled": "always", "defrag": "always"},
            "sysctl": {"kernel.numa_balancing": 0, "kernel.nmi_watchdog": 0},
            "persist": True,
        },
        "bios": {"nps": 1, "smt": False, "apbdis": 1, "df_cstates": False, "determinism": "power"},
    },
    "other": {
        "name": "other",
        "description": "another mind: other OS values, SMT kept, NPS4",
        "os": {"thp": {"enabled": "madvise"}, "sysctl": {"vm.swappiness": 1}, "persist": True},
        "bios": {"nps": 4, "smt": True},
    },
}


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        pw = tmp / "pw"
        pw.write_text(PASSWORD + "\n")
        pw.chmod(0o600)
        self.names = [f"n{i}-{v}" for i, v in enumerate(VENDORS)]
        self.handle: BmcHandle = start_bmcs(
            {
                "nodes": [
                    {
                        "name": n,
                        "port": 0,
                        "vendor": v,
                        "username": "root",
                        "password_file": str(pw),
                        "reset_delay": 0.2,
                    }
                    for n, v in zip(self.names, VENDORS, strict=True)
                ]
            }
        )
        self.roots = {n: tmp / "roots" / n for n in self.names}
        hosts = {}
        for n, root in self.roots.items():
            # small nodes (2 x 8 cores, SMT), as make_fleet's: the byte-exact checks hash every
            # file of each tree after every run (a full-size tree is 10,000 files)
            nodetree.build_node(root, n, nodetree.Topology(cores_per_socket=8))
            hosts[n] = {
                "bmc_url": self.handle.url(n),
                "bmc_username": "root",
                "bmc_allow_http": True,  # the test BMCs: plain HTTP on loopback
                "tuner_root": str(root),
                "tuner_sim": True,
            }
        self.inv = tmp / "inventory.yml"
        self.inv.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "vars": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        },
                        "hosts": hosts,
                    }
                }
            )
        )
        self.profiles = {}
        for name, doc in PROFILES.items():
            p = tmp / f"{name}.yml"
            p.write_text(yaml.safe_dump(doc))
            self.profiles[name] = str(p)
        self.files = {n: tree_hash(r) for n, r in self.roots.items()}
        self.bios = {n: self.handle.state(n)["current"] for n in self.names}

    def tuner(self, state: Path, *args: str) -> Any:
        return run(state, *args, "-i", str(self.inv), "--json")

    def popen(self, state: Path, *args: str) -> subprocess.Popen[str]:
        env = dict(os.environ, TUNER_STATE_DIR=str(state), TUNER_BMC_PASSWORD=PASSWORD)
        env.pop("TUNER_INVENTORY", None)
        return subprocess.Popen(
            [*TUNER, *args, "-i", str(self.inv), "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def pending_of(self, n: str) -> dict[str, Any]:
        s = self.handle.state(n)
        return {k: v for k, v in s["pending"].items() if s["current"].get(k) != v}

    def jobs(self, n: str) -> list[str]:
        return [j for j, v in self.handle.node(n).jobs.items() if v["JobState"] == "Scheduled"]

    def assert_clean(self, why: str) -> None:
        for n in self.names:
            assert tree_hash(self.roots[n]) == self.files[n], (why, n, "files")
            assert self.handle.state(n)["current"] == self.bios[n], (why, n, "BIOS in effect")
            assert self.pending_of(n) == {}, (why, n, "pending")
            assert self.jobs(n) == [], (why, n, "jobs")
            assert self.handle.state(n)["boot_count"] == 0, (why, n, "no reset")


def kill_tree(p: subprocess.Popen[str]) -> None:
    """kill -9 tuner and everything it started (ansible-runner's pty session included)."""
    try:
        tree = psutil.Process(p.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    with_suppress = (ProcessLookupError, PermissionError)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except with_suppress:
        pass
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    p.communicate()
    psutil.wait_procs(tree, timeout=20)


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    lab = Lab(tmp_path)
    yield lab
    lab.handle.stop()


def rollback_ok(lab: Lab, state: Path, why: str) -> None:
    r = lab.tuner(state, "rollback")
    assert r.rc == 0, (why, r.out[-3000:], r.err[-3000:])
    lab.assert_clean(why)


def test_apply_then_rollback_without_reboot_then_kills(lab: Lab, tmp_path: Path) -> None:
    state = tmp_path / "state"
    t = time.monotonic()
    r = lab.tuner(state, "apply", "-p", lab.profiles["tuned"])
    took = time.monotonic() - t
    assert r.rc == 0, r.out + r.err
    assert all(lab.pending_of(n) for n in lab.names)
    assert lab.jobs(lab.names[0])  # the iDRAC made a job
    rollback_ok(lab, state, "apply then rollback")

    # kill -9 of apply or rollback at seeded random moments; a rollback (after a re-apply,
    # half the time) converges
    rng = random.Random(23)
    for i in range(10):
        what = rng.choice(["apply", "rollback"])
        if what == "rollback":
            assert lab.tuner(state, "apply", "-p", lab.profiles["tuned"]).rc == 0
        p = lab.popen(
            state, *(["apply", "-p", lab.profiles["tuned"]] if what == "apply" else ["rollback"])
        )
        at = rng.uniform(0.3, took)
        try:
            p.wait(timeout=at)
        except subprocess.TimeoutExpired:
            kill_tree(p)
        why = f"kill {i}: {what} at {at:.1f} s"
        if rng.random() < 0.5:
            r = lab.tuner(state, "apply", "-p", lab.profiles["tuned"])
            assert r.rc == 0, (why, r.out[-3000:], r.err[-3000:])
        rollback_ok(lab, state, why)


def test_two_runs_at_once_converge(lab: Lab, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    cases = [
        ("same profile, same state", [("apply", "tuned", one), ("apply", "tuned", one)]),
        ("other profiles, same state", [("apply", "tuned", one), ("apply", "other", one)]),
        ("other profiles, other states", [("apply", "tuned", one), ("apply", "other", two)]),
        ("apply and rollback", [("apply", "tuned", one), ("rollback", "", one)]),
    ]
    for why, runs in cases:
        procs = [
            lab.popen(state, *(["apply", "-p", lab.profiles[prof]] if cmd == "apply" else [cmd]))
            for cmd, prof, state in runs
        ]
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert "Traceback" not in err, (why, err[-3000:])
        # whatever each run ended with, rollbacks of every state folder converge: the first
        # state folder's record covers what tuner changed first (first value wins)
        for state in (two, one):
            if state.exists():
                r = lab.tuner(state, "rollback")
                assert r.rc == 0, (why, r.out[-3000:], r.err[-3000:])
        lab.assert_clean(why)


def bmc_clean(node: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What a node's BMC shows pending (differences) and its committed BIOS job."""
    from agent.bios.redfish import BmcClient

    b = node["bmc"]
    pw = Path(b["password_file"]).read_text().strip()
    c = BmcClient(b["url"], b["username"], pw, verify=False, timeout=10)
    try:
        c.connect()
        d = c.discover()
        return d["pending"], d["job"]
    finally:
        c.close()


def test_sshd_restarting_mid_run_then_rerun_and_rollback_converge(tmp_path: Path) -> None:
    from conftest import CONNECTION, make_fleet

    if CONNECTION != "ssh":
        pytest.skip("needs OpenSSH's sshd")
    fleets = make_fleet(tmp_path / "state", 2, 8, "--bmc-reset-delay", "0.3", bmc_vendor="mixed")
    fleet = next(fleets)
    try:
        before = fleet.hashes()
        node = fleet.info["nodes"][0]
        d = Path(node["root"]).parent
        env = dict(os.environ, TUNER_STATE_DIR=str(fleet.state))
        env.pop("TUNER_INVENTORY", None)
        p = subprocess.Popen(
            [*TUNER, "apply", "-p", "inference", "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # the run is under way (the BIOS layer, then the OS one)
        os.kill(int((d / "sshd.pid").read_text()), signal.SIGTERM)
        time.sleep(2)
        sshd = fleet_sshd()
        subprocess.run([sshd, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")], check=True)
        p.communicate(timeout=600)  # exit 0 or 1: the host may have lost its connection
        r = fleet.tuner("apply", "-p", "inference", "--json", timeout=600)
        assert r.rc == 0, r.out[-3000:] + r.err[-3000:]
        r = fleet.tuner("rollback", "--json", timeout=600)
        assert r.rc == 0, r.out[-3000:] + r.err[-3000:]
        assert fleet.hashes() == before
        for n in fleet.info["nodes"]:
            pending, job = bmc_clean(n)
            assert pending == {} and job is None, (n["name"], pending, job)
    finally:
        with contextlib.suppress(StopIteration):
            next(fleets)


def fleet_sshd() -> str:
    from agent.sim.fleet import find_sshd

    sshd = find_sshd()
    assert sshd
    return sshd
