"""tuner's own event stream out of `ansible-playbook` (agent/runner.py `run_local`, the
callback agent/ansible_plugins/callback/tuner_events.py): real Ansible on localhost.

What the audit trail must hold is what ansible-runner's artifacts held: the command and
its (scrubbed) environment, every event as a file under job_events/, rc and status; no
secret (a `no_log` result is censored by Ansible before any callback sees it)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.runner import run_local, scrubbed_env

BIN = Path(sys.executable).parent
SECRET = "s3cr3t-bmc-pw-0042"

PLAYBOOK = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: say
      ansible.builtin.command: echo hello
      changed_when: false
    - name: hidden
      ansible.builtin.command: echo {SECRET}
      no_log: true
      changed_when: false
    - name: skipped here
      ansible.builtin.command: "false"
      when: false
    - name: fails on purpose
      ansible.builtin.command: "false"
      ignore_errors: true
"""


def _run(tmp_path: Path, on_event: Any, playbook: str = PLAYBOOK) -> tuple[Any, Path]:
    book = tmp_path / "p.yml"
    book.write_text(playbook)
    inv = tmp_path / "inv.ini"
    inv.write_text(f"h1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    env = dict(os.environ, TUNER_BMC_PASSWORD=SECRET, PATH=f"{BIN}:{os.environ['PATH']}")
    tuner_set = {"ANSIBLE_NOCOLOR": "True", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    cmd = ["ansible-playbook", "-i", str(inv), "--forks", "1", str(book)]
    r = run_local(cmd, scrubbed_env(env, tuner_set), runs, "run-1", on_event)
    return r, runs / "artifacts" / "run-1"


def test_every_event_reaches_the_handler_and_the_audit_trail(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    r, art = _run(tmp_path, seen.append)
    assert (r.status, r.rc) == ("successful", 0)
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "playbook_on_start" and kinds[-1] == "playbook_on_stats"
    assert kinds.count("runner_on_ok") == 2 and kinds.count("runner_on_skipped") == 1
    failed = [e for e in seen if e["event"] == "runner_on_failed"]
    assert len(failed) == 1 and failed[0]["event_data"]["ignore_errors"] is True
    ok = next(e for e in seen if e["event"] == "runner_on_ok")
    data = ok["event_data"]
    assert data["host"] == "h1" and data["task"] == "say"
    assert data["task_action"] in ("ansible.builtin.command", "command")
    assert data["res"]["stdout"] == "hello"
    assert data["duration"] >= 0 and data["start"] <= data["end"]
    assert not any(k.startswith("_ansible_") for k in data["res"])
    # ansible-runner's artifact shape: one file per event, named counter-uuid
    files = sorted((art / "job_events").iterdir())
    assert len(files) == len(seen)
    on_disk = {json.loads(f.read_text())["uuid"] for f in files}
    assert on_disk == {e["uuid"] for e in seen}
    for f in files:
        ev = json.loads(f.read_text())
        assert f.name == f"{ev['counter']}-{ev['uuid']}.json"
        assert ev["runner_ident"] == "run-1"
    assert (art / "rc").read_text() == "0" and (art / "status").read_text() == "successful"
    command = json.loads((art / "command").read_text())
    assert command["command"][0] == "ansible-playbook"
    assert command["env"]["ANSIBLE_STDOUT_CALLBACK"] == "tuner_events"
    # nothing of the run is readable by others, and the secret is nowhere in it
    for p in [art, *art.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
        if p.is_file():
            assert SECRET not in p.read_text(), p
    hidden = next(
        e for e in seen if e["event_data"].get("task") == "hidden" and "res" in e["event_data"]
    )
    assert "censored" in hidden["event_data"]["res"]


def test_a_failed_play_is_a_failed_run(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    book = '- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: "false"\n'
    r, art = _run(tmp_path, seen.append, book)
    assert (r.status, r.rc) == ("failed", 2)
    assert [e["event"] for e in seen].count("runner_on_failed") == 1
    assert (art / "status").read_text() == "failed"


def test_an_interrupted_run_ends_ansible(tmp_path: Path) -> None:
    """The handler raising (Ctrl-C in tuner) ends ansible-playbook and its children, and the
    run is recorded as canceled."""
    pids: list[int] = []

    def handler(ev: dict[str, Any]) -> None:
        pids.append(int(ev["pid"]))
        if ev["event"] == "runner_on_start":
            raise KeyboardInterrupt

    book = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 60\n"
    )
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, handler, book)
    art = tmp_path / "runs/artifacts/run-1"
    assert (art / "status").read_text() == "canceled"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_ansible_s_own_error_is_kept(tmp_path: Path) -> None:
    """A playbook Ansible cannot load gives no event: its error line is the run's `error`
    (tuner's "no result" message for each host carries it)."""
    seen: list[dict[str, Any]] = []
    r, art = _run(tmp_path, seen.append, "- hosts: all\n  tasks:\n    - no_such_module_x: {}\n")
    assert r.status == "failed" and r.rc != 0
    assert "ERROR" in r.error and "no_such_module_x" in (art / "stdout").read_text()
    assert not [e for e in seen if e["event"].startswith("runner_on")]


DRIVER = """
import json, os, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from agent.runner import run_local, scrubbed_env
tmp = Path({tmp!r})
env = dict(os.environ, PATH={path!r})
cmd = ["ansible-playbook", "-i", str(tmp / "inv.ini"), "--forks", "1", str(tmp / "p.yml")]
run_local(cmd, scrubbed_env(env, {{"ANSIBLE_LOCAL_TEMP": str(tmp / "tmp")}}), tmp / "runs",
          "run-1", lambda ev: None)
"""


def _driver(tmp_path: Path, playbook: str) -> tuple[Any, Path]:
    """`run_local` in a process of its own (the tuner a test signals or kills)."""
    import subprocess

    (tmp_path / "p.yml").write_text(playbook)
    (tmp_path / "inv.ini").write_text(
        f"h1 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    (tmp_path / "runs").mkdir(mode=0o700)
    code = DRIVER.format(
        repo=str(Path(__file__).resolve().parent.parent),
        tmp=str(tmp_path),
        path=f"{BIN}:{os.environ['PATH']}",
    )
    p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    return p, tmp_path / "runs/artifacts/run-1/job_events"


def _wait_for(events: Path, kind: str, timeout: float = 60) -> dict[str, Any]:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for f in events.glob("*.json") if events.is_dir() else []:
            ev = json.loads(f.read_text())
            if ev["event"] == kind:
                return dict(ev)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event in {timeout} s")


def _gone(pid: int, timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone for this purpose (its parent was killed; init reaps it)
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_a_terminated_tuner_ends_ansible(tmp_path: Path) -> None:
    """SIGTERM (or SIGHUP) to tuner while Ansible runs: the run's process group is ended and
    the run recorded as canceled, as for Ctrl-C."""
    import signal

    book = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 60\n"
    )
    p, events = _driver(tmp_path, book)
    started = _wait_for(events, "runner_on_start")
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 128 + signal.SIGTERM
    assert _gone(int(started["pid"]), 5)
    assert (events.parent / "status").read_text() == "canceled"


def test_a_killed_tuner_stops_ansible_at_its_next_event(tmp_path: Path) -> None:
    """tuner SIGKILLed: nobody reads the events, so the callback stops `ansible-playbook` at
    its next event instead of changing hosts with no record."""
    import signal

    tasks = "".join("    - ansible.builtin.command: sleep 0.3\n" for _ in range(40))
    p, events = _driver(tmp_path, f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    ok = _wait_for(events, "runner_on_ok")
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert _gone(int(ok["pid"]), 20), "ansible-playbook went on with nobody reading"
    assert len(list(events.glob("*.json"))) < 40
