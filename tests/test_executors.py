"""Execution nodes (issue 20): one lab fleet (4 nodes) sharded over two executors on loopback,
each a user of its own with its own sshd (agent/sim/execlab.py), running ansible-runner's
worker; the controller transmits and processes the stream (agent/executors.py).

Sharded runs give the report an unsharded run gives; an executor killed mid-run fails
exactly its hosts (with the reason) and the rest finish; the audit trail holds every change
and no secret (the canary pattern of tests/test_hardening.py), on the controller and on the
executors' disks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import executors
from agent.errors import BadInput
from tests.conftest import CONNECTION, REPO, TUNER, Fleet, Result, make_fleet

# the OS section of profiles/inference.yml alone: one playbook per command, nothing pending
PROFILE = str(Path(__file__).parent / "data" / "profiles" / "executors-os.yml")
CANARY_PW = "CANARY-bmc-pw-e1x2c3"
CANARY_ENV = "CANARY-cloud-key-9d8e7f"
# the executors' users (made if missing); another pair where these are busy (a bench)
USERS = os.environ.get("TUNER_TEST_EXECUTOR_USERS", "tuner-exec1,tuner-exec2").split(",")


# ------------------------------------------------------------------ pure: names and shards


def test_executor_names_are_validated_like_inventory_hosts() -> None:
    assert executors.parse("exec1, exec2") == ("exec1", "exec2")
    assert executors.parse(None) == () and executors.parse(" ") == ()
    for bad in ("-oProxyCommand=x", "a b", "a;b", "x,,y", "a,a", "user@host", "$(id)"):
        with pytest.raises(BadInput):
            executors.parse(bad)


def test_shards_are_contiguous_and_even() -> None:
    hosts = [f"n{i}" for i in range(7)]
    got = executors.shards(hosts, ("a", "b", "c"))
    assert got == [("a", ["n0", "n1", "n2"]), ("b", ["n3", "n4"]), ("c", ["n5", "n6"])]
    assert executors.shards(["n0"], ("a", "b")) == [("a", ["n0"])]


def test_the_ssh_command_is_an_argument_list() -> None:
    cmd = executors.ssh_command("exec1")
    assert cmd[0] == "ssh" and "StrictHostKeyChecking=yes" in cmd and "BatchMode=yes" in cmd
    assert cmd[cmd.index("--") + 1] == "exec1"


def test_the_inventory_group_names_executors_that_are_not_fleet_hosts(tmp_path: Path) -> None:
    from agent.inventory import load_inventory

    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  children:\n    workers:\n      hosts: {n1: {}, n2: {}}\n"
        "    tuner_executors:\n      vars: {ansible_user: runner}\n"
        "      hosts: {ex1: {ansible_host: 10.0.0.5, ansible_port: 2222}}\n"
    )
    got = load_inventory(inv)
    assert [h.name for h in got.hosts] == ["n1", "n2"] and got.total == 2
    assert executors.from_inventory(got) == ("ex1",)
    cmd = executors.ssh_command("ex1")
    assert cmd[-2] == "10.0.0.5" and ["-p", "2222"] == cmd[cmd.index("-p") : cmd.index("-p") + 2]
    assert "runner" == cmd[cmd.index("-l") + 1]
    only = tmp_path / "only.yml"
    only.write_text("all:\n  children:\n    tuner_executors:\n      hosts: {ex1: {}}\n")
    with pytest.raises(BadInput):
        load_inventory(only)


def test_the_shard_inventory_carries_no_secret_and_no_private_key(tmp_path: Path) -> None:
    from agent.inventory import load_inventory

    key = tmp_path / "id"
    key.write_text("PRIVATE-KEY-BODY")
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAA public")
    kh = tmp_path / "known_hosts"
    kh.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAA\n")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  vars:\n"
        f"    ansible_ssh_private_key_file: {key}\n"
        f"    ansible_ssh_common_args: -o UserKnownHostsFile={kh} -o IdentitiesOnly=yes\n"
        "    bmc_password: CANARY\n    api_token: CANARY\n"
        "    bmc_url: https://10.0.0.9\n    tuner_root: /\n"
        "  hosts: {n1: {}}\n"
    )
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    doc = executors.shard_inventory(load_inventory(inv).hosts, pdd)
    hv = doc["all"]["hosts"]["n1"]
    assert "CANARY" not in json.dumps(doc) and not any(k.startswith("bmc_") for k in hv)
    assert hv["ansible_ssh_private_key_file"].endswith("/public/key-2")
    assert (
        str(kh) not in hv["ansible_ssh_common_args"]
        and "IdentitiesOnly=no" in hv["ansible_ssh_common_args"]
    )
    shipped = {p.read_text() for p in (pdd / "public").iterdir()}
    assert shipped == {kh.read_text(), "ssh-ed25519 AAAA public"}


def test_bad_executors_exit_2_before_anything_runs(tmp_path: Path) -> None:
    env = dict(os.environ, TUNER_STATE_DIR=str(tmp_path / "s"))
    p = subprocess.run(
        [*TUNER, "verify", "-p", PROFILE, "--executors", "-oProxyCommand=touch x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert p.returncode == 2 and "not a valid host name" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------ the lab


class Lab:
    def __init__(self, fleet: Fleet, env: dict[str, str], execlab: Any) -> None:
        self.fleet, self.env, self.execlab = fleet, env, execlab
        self.outputs: list[str] = []

    def tuner(self, *args: str, sharded: bool = True, timeout: float = 300) -> Result:
        env = dict(self.env, TUNER_STATE_DIR=str(self.fleet.state))
        if not sharded:
            env.pop("TUNER_EXECUTORS", None)
        p = subprocess.run(
            [*TUNER, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
        )
        self.outputs += [p.stdout, p.stderr]
        assert "Traceback" not in p.stderr, p.stderr
        return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0 or CONNECTION != "ssh":
        pytest.skip("the executor lab makes users and runs sshd (root, OpenSSH server)")
    from agent.sim import execlab

    base = tmp_path_factory.mktemp("executors")
    fleets = make_fleet(base / "state", 4)
    fleet = next(fleets)
    runner = execlab.executor_runner()
    xl = execlab.start(base / "exec", USERS)
    sock = base / "agent.sock"
    out = subprocess.run(
        ["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True
    ).stdout
    agent_pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = dict(
            os.environ,
            SSH_AUTH_SOCK=str(sock),
            TUNER_EXECUTORS="exec1,exec2",
            TUNER_EXECUTOR_SSH_CONFIG=str(xl.ssh_config),
            TUNER_EXECUTOR_RUNNER=runner,
            TUNER_BMC_PASSWORD=CANARY_PW,
            AWS_SECRET_ACCESS_KEY=CANARY_ENV,
        )
        env.pop("TUNER_INVENTORY", None)
        subprocess.run(
            ["ssh-add", "-q", str(fleet.state / "sim/ssh/id_ed25519")],
            env=env,
            check=True,
            capture_output=True,
        )
        yield Lab(fleet, env, xl)
    finally:
        xl.stop()
        os.kill(agent_pid, signal.SIGTERM)
        next(fleets, None)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    a, b = dict(a), dict(b)
    assert a.pop("artifacts") != b.pop("artifacts")
    assert a == b


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def _events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in folder.rglob("job_events/*.json")]


@pytest.mark.fleet
def test_sharded_runs_give_the_unsharded_report(lab: Lab) -> None:
    plain = lab.tuner("verify", "-p", PROFILE, "--json", sharded=False)
    sharded = lab.tuner("verify", "-p", PROFILE, "--json")
    assert plain.rc == sharded.rc == 1
    assert set(_statuses(plain.json()).values()) == {"drift"}
    _same(plain.json(), sharded.json())
    # progress: one display, every host once per layer
    assert sharded.err.count("done (4/4)") == 1, sharded.err

    applied = lab.tuner("apply", "-p", PROFILE, "--json")
    assert applied.rc == 0, applied.err
    doc = applied.json()
    assert set(_statuses(doc).values()) == {"changed"}
    # the audit trail: one folder per shard in the run's, each change's event in it
    os_run = Path(doc["artifacts"])
    assert sorted(p.name for p in os_run.iterdir()) == ["1-exec1", "2-exec2"]
    changed = {
        e["event_data"]["host"]
        for e in _events(os_run)
        if e.get("event") == "runner_on_ok"
        and e["event_data"].get("task_action", "").endswith("tuner_os")
        and e["event_data"]["res"].get("changed")
    }
    assert changed == set(lab.fleet.roots)
    history = (lab.fleet.state / "runs/history.jsonl").read_text()
    assert history.count('"command": "apply"') == 1

    ok_plain = lab.tuner("verify", "-p", PROFILE, "--json", sharded=False)
    ok_sharded = lab.tuner("verify", "-p", PROFILE, "--json")
    assert ok_plain.rc == ok_sharded.rc == 0
    _same(ok_plain.json(), ok_sharded.json())


@pytest.mark.fleet
def test_a_lost_executor_fails_exactly_its_hosts(lab: Lab) -> None:
    """exec2 is killed (its sshd and every process of its user) as soon as its Ansible
    starts: its shard's hosts fail naming it, exec1's hosts are rolled back."""
    killed: list[float] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            for pid in lab.execlab.processes("exec2"):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"ansible-playbook" in cmd:
                    lab.execlab.kill("exec2")
                    killed.append(time.monotonic())
                    return
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        r = lab.tuner("rollback", "--json")
    finally:
        stop.set()
        t.join(5)
    assert killed, "exec2's Ansible never started"
    doc = r.json()
    st = _statuses(doc)
    names = sorted(lab.fleet.roots)
    mine, lost = names[:2], names[2:]  # contiguous shards, inventory order
    assert r.rc == 1
    assert {st[h] for h in mine} == {"restored"}, st  # OS layer: restored; others: nothing
    assert {st[h] for h in lost} == {"failed"}, st
    for h in doc["hosts"]:
        if h["host"] in lost:
            assert "executor exec2 lost" in h["message"], h["message"]
    # the killed run is re-run without executors: everything converges
    again = lab.tuner("rollback", "--json", sharded=False)
    assert again.rc == 0, again.err
    assert {s for h, s in _statuses(again.json()).items() if h in lost} == {"restored"}


@pytest.mark.fleet
def test_no_secret_on_the_controller_or_the_executors(lab: Lab) -> None:
    """After every run above: the canaries (the BMC password and an unrelated secret in the
    operator's environment) and the nodes' private SSH key are in no output, in no file of
    the state folder, and in no file the executors' users own."""
    lab.tuner("verify", "-p", PROFILE, "--json")  # at least one sharded run, alone or not
    key = (lab.fleet.state / "sim/ssh/id_ed25519").read_text().splitlines()[1]
    needles = [CANARY_PW.encode(), CANARY_ENV.encode(), key.encode()]
    for text in lab.outputs:
        for n in needles:
            assert n.decode() not in text
    uids = {lab.execlab.uid(n) for n in lab.execlab.names}
    # the state folder, the executors' homes, and what the executors' users left in /tmp
    roots = [lab.fleet.state / "runs", *(Path(f"/home/{u}") for u in USERS)]
    roots += [p for p in Path("/tmp").iterdir() if p.lstat().st_uid in uids]
    searched = 0
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in files:
            if p.is_symlink():
                continue
            data = p.read_bytes()
            searched += 1
            for n in needles:
                assert n not in data, p
    assert searched > 50
    # what the executors' Ansible was given: tuner's settings, never the operator's secrets
    for c in (lab.fleet.state / "runs/artifacts").rglob("command"):
        env_seen = json.loads(c.read_text())["env"]
        assert "AWS_SECRET_ACCESS_KEY" not in env_seen and "TUNER_BMC_PASSWORD" not in env_seen
