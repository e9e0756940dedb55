"""BIOS rollback: the record tuner keeps before its first PATCH, and `tuner rollback` with and
without a reset, after a finished apply and after a run killed between PATCH and reset.

Real CLI, real Ansible, BMCs started in-process (their state and faults are visible)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
from conftest import REPO, TUNER
from test_bios_fleet import BIOS_ONLY, PASSWORD, bmc_fleet, by_host, log_lines, run, writes


def effective_pending(state: dict[str, Any]) -> dict[str, Any]:
    """Pending values that would change something at the next reset."""
    return {k: v for k, v in state["pending"].items() if state["current"].get(k) != v}


def records(state: Path) -> list[Path]:
    return sorted((state / "bios/originals").glob("*.json"))


def test_bios_rollback_with_and_without_reboot(tmp_path: Path) -> None:
    handle, inv = bmc_fleet(tmp_path, [{"name": "a"}, {"name": "b", "vendor": "hpe"}])
    state = tmp_path / "state"
    try:
        factory = {n: handle.state(n)["current"] for n in ("a", "b")}
        r = run(state, "apply", "-p", BIOS_ONLY, "-i", str(inv), "--reboot", "if-needed", "--json")
        assert r.rc == 0, r.out + r.err
        assert all(h["bios"]["status"] == "changed" for h in r.json()["hosts"])
        assert handle.state("a")["current"] != factory["a"]

        # the record: per host, keyed by system, with the serial; first value wins
        recs = records(state)
        assert len(recs) == 2
        doc = json.loads(recs[0].read_text())
        ((system, entry),) = doc["systems"].items()
        assert system.startswith("/redfish/v1/Systems/") and entry["serial"].startswith("SIM")
        host = doc["host"]
        assert (
            entry["attributes"] == {k: factory[host][k] for k in entry["attributes"]}
            and entry["attributes"]
        )
        assert (state / "bios/originals").stat().st_mode & 0o777 == 0o700

        # --check: says what, sends nothing
        sent = {n: len(writes(tmp_path / f"{n}.jsonl")) for n in ("a", "b")}
        r = run(state, "rollback", "-i", str(inv), "--check", "--json")
        assert r.rc == 0, r.out + r.err
        for h in r.json()["hosts"]:
            assert h["bios"]["status"] == "would restore" and h["bios"]["reboot"] == "needed"
        assert {n: len(writes(tmp_path / f"{n}.jsonl")) for n in ("a", "b")} == sent

        # --layer os: the BIOS is left alone
        r = run(state, "rollback", "-i", str(inv), "--layer", "os", "--json")
        assert r.rc == 0 and r.json()["layers"] == ["os"]
        assert all(h["bios"] is None for h in r.json()["hosts"])

        # without --reboot: the originals are pending, the record stays
        r = run(state, "rollback", "-i", str(inv), "--layer", "bios", "--json")
        assert r.rc == 0, r.out + r.err
        rep = r.json()
        assert rep["summary"]["by_status"] == {"pending reboot": 2}
        for name, h in by_host(rep).items():
            st = {k: v["status"] for k, v in h["layers"].items()}  # each layer's status
            assert st == {"bios": "pending reboot"}
            assert h["bios"]["reboot"] == "needed" and h["bios"]["sent"] is True
            for a in h["bios"]["attributes"]:
                assert a["status"] == "pending reboot"
                assert a["original"] == str(factory[name][a["attribute"]])
            assert handle.state(name)["current"] != factory[name]
            assert {k: factory[name][k] for k in effective_pending(handle.state(name))} == (
                effective_pending(handle.state(name))
            )
        assert len(records(state)) == 2

        # with --reboot if-needed: in effect again, the record moves to history
        r = run(
            state, "rollback", "-i", str(inv), "--layer", "bios", "--reboot", "if-needed", "--json"
        )
        assert r.rc == 0, r.out + r.err
        for name, h in by_host(r.json()).items():
            assert h["status"] == "restored" and h["bios"]["reboot"] == "done"
            assert {a["status"] for a in h["bios"]["attributes"]} == {"restored"}
            assert handle.state(name)["current"] == factory[name]
            assert effective_pending(handle.state(name)) == {}
        assert records(state) == []
        assert len(list((state / "bios/originals/history").glob("*.json"))) == 2

        # nothing left: nothing sent
        sent = {n: len(writes(tmp_path / f"{n}.jsonl")) for n in ("a", "b")}
        r = run(state, "rollback", "-i", str(inv), "--json")
        assert r.rc == 0 and r.json()["summary"]["by_status"] == {"nothing to do": 2}
        assert {n: len(writes(tmp_path / f"{n}.jsonl")) for n in ("a", "b")} == sent

        # apply without a reset, then rollback: tuner's pending values are replaced at once
        # (on the iLO; an iDRAC holds them in a committed job, see the next test)
        r = run(state, "apply", "-p", BIOS_ONLY, "-i", str(inv), "-l", "b", "--json")
        assert r.rc == 0 and all(h["bios"]["status"] == "pending reboot" for h in r.json()["hosts"])
        r = run(state, "rollback", "-i", str(inv), "-l", "b", "--json")
        assert r.rc == 0, r.out + r.err
        for name, h in by_host(r.json()).items():
            assert h["bios"]["status"] == "restored" and h["bios"]["reboot"] == "not needed"
            assert effective_pending(handle.state(name)) == {}
            assert handle.state(name)["current"] == factory[name]
        assert records(state) == []
    finally:
        handle.stop()
    for path in state.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_swapped_board_is_not_restored(tmp_path: Path) -> None:
    handle, inv = bmc_fleet(tmp_path, [{"name": "a"}])
    state = tmp_path / "state"
    try:
        r = run(state, "apply", "-p", BIOS_ONLY, "-i", str(inv), "--json")
        assert r.rc == 0, r.out + r.err
        (rec,) = records(state)
        doc = json.loads(rec.read_text())
        for entry in doc["systems"].values():
            entry["serial"] = "OTHERBOARD"
        rec.write_text(json.dumps(doc))
        sent = len(writes(tmp_path / "a.jsonl"))
        r = run(state, "rollback", "-i", str(inv), "--json")
        assert r.rc == 1
        h = r.json()["hosts"][0]
        assert h["status"] == "failed" and "OTHERBOARD" in h["bios"]["message"]
        assert "BIOS:" in h["message"]
        assert len(writes(tmp_path / "a.jsonl")) == sent
        assert records(state) == [rec]
    finally:
        handle.stop()


def test_rollback_after_apply_killed_between_patch_and_reset(tmp_path: Path) -> None:
    handle, inv = bmc_fleet(tmp_path, [{"name": "a", "vendor": "hpe"}])
    state = tmp_path / "state"
    log = tmp_path / "a.jsonl"
    try:
        factory = handle.state("a")["current"]
        handle.set_fault("a", "slow", 0.6)  # every answer takes 0.6 s: time to kill after PATCH
        env = dict(os.environ, TUNER_STATE_DIR=str(state), TUNER_BMC_PASSWORD=PASSWORD)
        env.pop("TUNER_INVENTORY", None)
        p = subprocess.Popen(
            [*TUNER, "apply", "-p", BIOS_ONLY, "-i", str(inv), "--reboot", "if-needed"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not any(e["method"] == "PATCH" for e in log_lines(log)):
            assert p.poll() is None and time.monotonic() < deadline, "no PATCH came"
            time.sleep(0.02)
        # kill -9 the whole tree: tuner's process group and ansible-playbook, which
        # ansible-runner starts in a session of its own (under a pty)
        tree = psutil.Process(p.pid).children(recursive=True)
        os.killpg(p.pid, signal.SIGKILL)
        for child in tree:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        p.wait()
        psutil.wait_procs(tree, timeout=10)
        handle.set_fault("a", "slow", 0.0)
        assert [e["method"] for e in writes(log)] == ["PATCH"], "killed before the reset"
        assert effective_pending(handle.state("a")) and handle.state("a")["current"] == factory
        assert len(records(state)) == 1

        r = run(state, "rollback", "-i", str(inv), "--reboot", "if-needed", "--json")
        assert r.rc == 0, r.out + r.err
        h = r.json()["hosts"][0]
        assert h["bios"]["status"] == "restored" and h["bios"]["reboot"] == "not needed"
        assert all(a["status"] == "restored" for a in h["bios"]["attributes"])
        assert effective_pending(handle.state("a")) == {}
        assert handle.state("a")["current"] == factory
        methods = [e["method"] for e in writes(log)]
        assert set(methods) == {"PATCH"} and len(methods) > 1, "PATCHes only: no reset needed"
        assert records(state) == []
    finally:
        handle.stop()


def test_bios_layer_facts_read_only(tmp_path: Path, monkeypatch: Any) -> None:
    """The layer interface in-process: targets validate, facts only read (GETs)."""
    from agent.inventory import load_inventory
    from agent.layers import make
    from agent.layers.base import Run

    handle, inv_path = bmc_fleet(tmp_path, [{"name": "a", "vendor": "hpe"}])
    monkeypatch.setenv("TUNER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TUNER_BMC_PASSWORD", PASSWORD)
    try:
        (layer,) = make("bios")
        run = Run(command="verify", profile=None, inv=load_inventory(inv_path))
        hosts, skipped = layer.targets(run)
        assert [h.name for h in hosts] == ["a"] and skipped == {}
        facts, artifacts = layer.facts(run, hosts)
        assert facts["a"]["vendor"] == "hpe" and facts["a"]["topology"] == {"nps": 1, "smt": True}
        assert Path(artifacts).is_dir()
        assert log_lines(tmp_path / "a.jsonl") and writes(tmp_path / "a.jsonl") == []
    finally:
        handle.stop()
