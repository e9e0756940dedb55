"""Undo before the reboot (issue 23): what tuner staged on a BMC and no reset applied is taken
back by a rollback, or by an apply that changed its mind, the way each BMC allows; what tuner
did not stage is never touched (it is reported, with what to do).

The sequence runs in-process (agent/bios/sequence.py, the tuner_bios module's body) against
every simulated BMC personality; kills are simulated by cutting the BMC off after N requests
(the record is written atomically, so this is a kill -9 at that request, seen from the BMC and
the record); see tests/test_bios_rollback.py for the real CLI with real kill -9."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.bios import record, sequence
from agent.bios.sequence import BiosArgs
from agent.sim.bmc import BmcHandle, start_bmcs
from agent.sim.bmc.personalities import VENDORS

USER, PASSWORD = "root", "sim-Secret-41"

# the inference profile's BIOS section (as tests/test_redfish_client.py uses it)
INFERENCE = {
    "nps": 1,
    "smt": False,
    "core_performance_boost": True,
    "apbdis": 1,
    "df_cstates": False,
    "determinism": "power",
}
OTHER = {"smt": True, "nps": 4}  # another profile: changes its mind on smt


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[Any]:
    handles: list[BmcHandle] = []

    def _start(vendor: str) -> BmcHandle:
        pw = tmp_path / "pw"
        pw.write_text(PASSWORD + "\n")
        node = {
            "name": "n1",
            "port": 0,
            "vendor": vendor,
            "username": USER,
            "password_file": str(pw),
            "reset_delay": 0.3,
            "request_log": str(tmp_path / f"{vendor}.jsonl"),
        }
        h = start_bmcs({"nodes": [node]})
        handles.append(h)
        return h

    yield _start
    for h in handles:
        h.stop()


def args(h: BmcHandle, rec: str, mode: str, settings: dict[str, Any], **kw: Any) -> BiosArgs:
    return BiosArgs.from_params(
        {
            "mode": mode,
            "url": h.url("n1"),
            "username": USER,
            "password": PASSWORD,
            "timeout": 5.0,
            "reset_timeout": 30.0,
            "poll_interval": 0.1,
            "settings": settings,
            "host": "n1",
            "record_dir": rec,
            **kw,
        }
    )


def effective_pending(h: BmcHandle) -> dict[str, Any]:
    s = h.state("n1")
    return {k: v for k, v in s["pending"].items() if s["current"].get(k) != v}


def waiting_jobs(h: BmcHandle) -> list[str]:
    node = h.node("n1")
    return [j for j, v in node.jobs.items() if v["JobState"] == "Scheduled"]


def clean(h: BmcHandle, factory: dict[str, Any]) -> None:
    assert h.state("n1")["current"] == factory
    assert effective_pending(h) == {}
    assert waiting_jobs(h) == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_apply_then_rollback_without_reboot_leaves_nothing(
    bmc: Any, vendor: str, tmp_path: Path
) -> None:
    h = bmc(vendor)
    rec = str(tmp_path / "rec")
    factory = h.state("n1")["current"]
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)
    assert not o.failed and o.facts["status"] == "pending reboot", o.msg
    assert effective_pending(h)
    entry = record.load(rec, "n1")["systems"]
    ((_, e),) = entry.items()
    assert e["staged"] and (bool(e["jobs"]) == (vendor == "dell"))

    o = sequence.restore(args(h, rec, "restore", {}), True)  # --check: nothing sent
    assert o.facts["status"] == "would restore" and effective_pending(h)

    o = sequence.restore(args(h, rec, "restore", {}), False)
    assert not o.failed, o.msg
    assert o.facts["status"] == "restored" and o.facts["reboot"] == "not needed"
    assert {r["status"] for r in o.results} == {"restored"}
    clean(h, factory)
    assert h.state("n1")["boot_count"] == 0
    assert record.load(rec, "n1")["systems"] == {}  # the record went to history
    if vendor == "dell":
        assert any("deleted tuner's BMC job" in w for w in o.facts["warnings"])


@pytest.mark.parametrize("vendor", VENDORS)
def test_reapply_that_changed_its_mind(bmc: Any, vendor: str, tmp_path: Path) -> None:
    h = bmc(vendor)
    rec = str(tmp_path / "rec")
    factory = h.state("n1")["current"]
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)
    assert not o.failed, o.msg
    first = effective_pending(h)
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)  # the same again: left as it is
    assert not o.failed and o.facts["status"] == "pending reboot", o.msg
    assert effective_pending(h) == first and not o.changed
    o = sequence.run(args(h, rec, "apply", OTHER), False)
    assert not o.failed, o.msg
    assert any("undone before this run's PATCH" in w for w in o.facts["warnings"])
    # only what the second profile wants waits for the reset, nothing of the first
    assert {k: str(v) for k, v in effective_pending(h).items()} == {
        r["attribute"]: r["wanted"] for r in o.results if r["status"] == "pending reboot"
    }
    assert len(waiting_jobs(h)) == (1 if vendor == "dell" else 0)
    o = sequence.restore(args(h, rec, "restore", {}), False)
    assert not o.failed, o.msg
    clean(h, factory)


def test_dell_job_tuner_did_not_create_is_left_alone(bmc: Any, tmp_path: Path) -> None:
    h = bmc("dell")
    rec = str(tmp_path / "rec")
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)
    assert not o.failed, o.msg
    (ours,) = waiting_jobs(h)
    # someone else deletes tuner's job and commits values of their own in a job
    assert h.node("n1").delete_job(ours)[0] == 200
    node = h.node("n1")
    status, payload = node.patch_settings(
        {
            "Attributes": {"AcPwrRcvryUserDelay": 120},
            "@Redfish.SettingsApplyTime": {"ApplyTime": "OnReset"},
        }
    )
    assert status == 202, payload
    theirs = payload["job"]
    o = sequence.restore(args(h, rec, "restore", {}), False)
    assert not o.failed, o.msg  # nothing of tuner's to undo; the originals are in effect
    assert waiting_jobs(h) == [theirs] and effective_pending(h) == {"AcPwrRcvryUserDelay": 120}
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)
    assert o.failed and "did not create" in o.msg and theirs in o.msg and "DELETE" in o.msg
    assert waiting_jobs(h) == [theirs]


@pytest.mark.parametrize("vendor", ["hpe", "supermicro"])
def test_pending_value_tuner_did_not_stage_is_reported(
    bmc: Any, vendor: str, tmp_path: Path
) -> None:
    h = bmc(vendor)
    rec = str(tmp_path / "rec")
    factory = h.state("n1")["current"]
    o = sequence.run(args(h, rec, "apply", INFERENCE), False)
    assert not o.failed, o.msg
    smt = next(r["attribute"] for r in o.results if r["setting"] == "smt")
    off = next(r["wanted"] for r in o.results if r["setting"] == "smt")
    on = factory[smt]
    # someone stages SMT back on (the factory value) and another attribute of their own
    other = next(
        a.name
        for a in h.node("n1").personality.attributes
        if a.values and a.name not in {r["attribute"] for r in o.results} and not a.read_only
    )
    value = next(v for v in h.node("n1").personality.attr(other).values if v != factory[other])
    status, _ = h.node("n1").patch_settings({"Attributes": {smt: on, other: value}})
    assert status == 200
    assert off != on
    o = sequence.restore(args(h, rec, "restore", {}), False)
    assert not o.failed, o.msg
    assert effective_pending(h) == {other: value}  # theirs is still there
    assert all(r["status"] in ("restored", "unchanged") for r in o.results)
    assert h.state("n1")["current"] == factory


@pytest.mark.parametrize("vendor", VENDORS)
def test_killed_at_random_moments_converges(bmc: Any, vendor: str, tmp_path: Path) -> None:
    """Cut the BMC off after a random number of requests in apply or rollback (as a kill -9
    would stop tuner there), then re-apply and roll back: no pending change of tuner's."""
    h = bmc(vendor)
    rng = random.Random(f"undo-{vendor}")
    factory = h.state("n1")["current"]
    for i in range(10):
        rec = str(tmp_path / f"rec{i}")
        which = rng.choice(["apply", "restore"])
        if which == "restore":
            assert not sequence.run(args(h, rec, "apply", INFERENCE), False).failed
        cut = rng.randint(1, 25)
        h.set_fault("n1", "cut_after", cut)
        mode = sequence.run if which == "apply" else sequence.restore
        mode(args(h, rec, which, INFERENCE if which == "apply" else {}), False)
        h.clear_faults("n1")
        if rng.random() < 0.5:
            o = sequence.run(args(h, rec, "apply", INFERENCE), False)
            assert not o.failed, (i, which, cut, o.msg)
        o = sequence.restore(args(h, rec, "restore", {}), False)
        assert not o.failed, (i, which, cut, o.msg)
        clean(h, factory)


def test_arguments_come_from_modargs() -> None:
    from agent.modargs import TUNER_BIOS

    a = BiosArgs.from_params({"mode": "plan", "url": "u", "username": "r", "timeout": None})
    assert a.timeout == TUNER_BIOS.default("timeout") and a.lock_timeout == 300.0
    assert a.settings == {} and a.password is None


def test_second_run_on_a_bmc_waits_says_for_whom_and_gives_up(bmc: Any, tmp_path: Path) -> None:
    import hashlib
    import threading

    h = bmc("hpe")
    rec, stages = str(tmp_path / "rec"), tmp_path / "stages"
    stages.mkdir()
    a = args(h, rec, "apply", INFERENCE, stage_dir=str(stages), lock_timeout=0.6)
    stage = stages / hashlib.sha256(b"n1").hexdigest()[:24]
    held = threading.Event()
    release = threading.Event()

    def other_run() -> None:
        with sequence.bmc_lock(a):
            held.set()
            release.wait(20)

    t = threading.Thread(target=other_run)
    t.start()
    try:
        assert held.wait(10)
        o = sequence.run(a, False)
        assert o.failed and o.msg.startswith("nothing sent: another tuner run holds this BMC")
        assert "pid " in o.msg and "waited 0.6 s (--lock-timeout)" in o.msg
        words = stage.read_text()
        assert words.startswith("waiting for another tuner run's lock on this BMC (held by pid ")
        assert "gives up at " in words and "UTC (--lock-timeout 0.6 s)" in words
        assert effective_pending(h) == {}  # nothing sent
        # a longer timeout: it waits, then runs once the other run is done
        a.lock_timeout = 30
        threading.Timer(0.5, release.set).start()
        o = sequence.run(a, False)
        assert not o.failed and o.facts["status"] == "pending reboot", o.msg
    finally:
        release.set()
        t.join()


def test_os_lock_holder_and_words(tmp_path: Path) -> None:
    import os

    from agent import knobs

    host = knobs.Host(root=str(tmp_path), sim_kernel=False)
    assert knobs.lock_holder(host) is None  # no lock file: free
    with knobs.locked(host, timeout=1):
        # another process would see the holder; flock locks are per open file, so a probe
        # from this process is a second open file and sees it the same way
        holder = knobs.lock_holder(host)
        assert holder and holder.startswith(f"pid {os.getpid()} on ")
        words = knobs.waiting_words(holder, 300)
        assert words.startswith("waiting for another tuner run's lock on this host (held by pid")
        assert words.endswith("UTC (--lock-timeout 300 s)")
    assert knobs.lock_holder(host) is None
