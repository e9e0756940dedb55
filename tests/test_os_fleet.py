"""apply / verify / rollback end to end: the real CLI, real Ansible, real sshd, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import DATA, REPO, TUNER, Fleet

GOV = "sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor"


def statuses(report: dict, host: str) -> dict[str, str]:
    h = next(h for h in report["hosts"] if h["host"] == host)
    return {s["id"]: s["status"] for s in h["settings"]}


@pytest.mark.fleet
def test_apply_verify_idempotent(full_fleet: Fleet) -> None:
    fleet = full_fleet
    r = fleet.tuner("apply", "--profile", "inference", "--json")
    assert r.rc == 0, r.err
    rep = r.json()
    assert rep["summary"] == {"hosts": 4, "by_status": {"changed": 4}}
    for h in rep["hosts"]:
        assert h["status"] == "changed"
        by_id = {s["id"]: s for s in h["settings"]}
        assert by_id["thp.enabled"]["before"] == "madvise"
        assert by_id["thp.enabled"]["after"] == "always"
        assert by_id["sysctl.kernel.randomize_va_space"]["before"] == "2"
        assert by_id["cpu.governor"]["after"] == "performance"
        assert by_id["cpuidle.C2"]["after"] == "disabled"
        assert all(s["status"] == "changed" for s in h["settings"])
    root = fleet.roots["node02"]
    assert (
        root / "sys/kernel/mm/transparent_hugepage/enabled"
    ).read_text() == "[always] madvise never\n"
    assert (root / "proc/sys/kernel/numa_balancing").read_text() == "0\n"
    assert (root / GOV.format(255)).read_text() == "performance\n"
    assert (root / "sys/devices/system/cpu/cpu17/cpuidle/state2/disable").read_text() == "1\n"
    assert (root / "sys/devices/system/cpu/cpu17/cpuidle/state1/disable").read_text() == "0\n"
    assert "kernel.numa_balancing = 0" in (root / "etc/sysctl.d/90-tuner.conf").read_text()

    # the kernel command line is pending until a reboot: the OS layer alone conforms
    v = fleet.tuner("verify", "--profile", "inference", "--layer", "os", "--json")
    assert v.rc == 0, v.out
    assert all(h["status"] == "ok" for h in v.json()["hosts"])

    again = fleet.tuner("apply", "--profile", "inference", "--json")
    assert again.rc == 0
    assert again.json()["summary"]["by_status"] == {"unchanged": 4}
    assert all(s["status"] == "unchanged" for h in again.json()["hosts"] for s in h["settings"])


@pytest.mark.fleet
def test_check_writes_nothing(shared_fleet: Fleet) -> None:
    from conftest import tree_hash

    # byte-identical, tuner's own folder included: a dry run leaves no trace at all
    before = {n: tree_hash(root, skip=()) for n, root in shared_fleet.roots.items()}
    r = shared_fleet.tuner("apply", "--profile", "inference", "--check", "--json")
    assert r.rc == 0, r.err
    rep = r.json()
    assert rep["check"] is True
    assert rep["summary"]["by_status"] == {"would change": 4}
    st = statuses(rep, "node01")
    assert st["thp.defrag"] == "would change"
    # stdout is the document alone; not a terminal: progress lines on stderr as it runs
    assert "apply: OS: plan (--check) on node[01-04]" in r.err
    # people: the 4 identical hosts on one row, "would" words, --detail a row per host
    human = shared_fleet.tuner("apply", "--profile", "inference", "--check")
    assert human.rc == 0, human.err
    assert "node[01-04] (4)" in human.out and "would change" in human.out
    assert "Nothing was changed (--check)." in human.out and "│ changed" not in human.out
    done = [x for x in human.err.splitlines() if x.startswith("apply:   node") and "done (" in x]
    assert len(done) == 8, human.err  # a line per host of each layer: cmdline, then OS
    assert "apply: cmdline: plan (--check) on node[01-04]" in human.err
    detail = shared_fleet.tuner("apply", "--profile", "inference", "--check", "--detail")
    assert detail.rc == 0, detail.err
    for n in ("node01", "node02", "node03", "node04"):
        assert f"│ {n} " in detail.out
    os_table = detail.out[detail.out.index("OS: tuner apply") :]
    assert "node[01-04]" not in os_table.split("└")[0]
    assert len(detail.out.splitlines()) > len(human.out.splitlines())
    for name, root in shared_fleet.roots.items():
        assert tree_hash(root, skip=()) == before[name]
        assert not (root / "var/lib/tuner").exists()


@pytest.mark.fleet
def test_out_of_band_write_is_drift_for_that_host_only(fleet: Fleet) -> None:
    assert fleet.tuner("apply", "-p", "inference").rc == 0
    (fleet.roots["node03"] / GOV.format(7)).write_text("powersave\n")
    r = fleet.tuner("verify", "-p", "inference", "--json")
    assert r.rc == 1
    rep = r.json()
    bad = [(h["host"], s["id"]) for h in rep["hosts"] for s in h["settings"] if s["status"] != "ok"]
    assert bad == [("node03", "cpu.governor")]
    node3 = next(h for h in rep["hosts"] if h["host"] == "node03")
    gov = next(s for s in node3["settings"] if s["id"] == "cpu.governor")
    assert gov["actual"] == "performance x31, powersave x1"
    assert "1 of 32 files differ" in gov["message"] and "cpu7/" in gov["message"]
    human = fleet.tuner("verify", "-p", "inference")
    assert human.rc == 1 and "node03" in human.out and "does NOT conform" in human.out


@pytest.mark.fleet
def test_rollback_restores_exactly_and_keeps_first_originals(fleet: Fleet, tmp_path: Path) -> None:
    pristine = fleet.hashes()
    assert fleet.tuner("apply", "-p", "inference").rc == 0
    other = tmp_path / "other.yml"
    other.write_text(
        "name: other\ninclude: [inference]\nos:\n  cpu: {governor: powersave}\n"
        "  sysctl: {vm.swappiness: 10}\n  thp: {defrag: defer}\n"
    )
    r = fleet.tuner("apply", "-p", str(other), "--json")
    assert r.rc == 0, r.out
    st = statuses(r.json(), "node01")
    assert st["cpu.governor"] == "changed" and st["sysctl.vm.swappiness"] == "changed"
    assert fleet.tuner("apply", "-p", "inference").rc == 0  # a third apply, back again
    check = fleet.tuner("rollback", "--check", "--json")
    assert check.rc == 0
    assert check.json()["summary"]["by_status"] == {"would restore": 4}
    human = fleet.tuner("rollback", "--check")
    assert "would restore" in human.out and "restored" not in human.out.replace("would restore", "")
    assert fleet.hashes() != pristine
    rb = fleet.tuner("rollback", "--json")
    assert rb.rc == 0, rb.out
    # the OS files are restored; the kernel command line's original boots next time
    assert all(h["status"] == "pending reboot" for h in rb.json()["hosts"])
    assert all(h["layers"]["os"]["status"] == "restored" for h in rb.json()["hosts"])
    assert fleet.hashes() == pristine
    # rolled back twice: nothing left to do
    assert fleet.tuner("rollback", "--json").json()["summary"]["by_status"] == {"nothing to do": 4}
    v = fleet.tuner("verify", "-p", "inference")
    assert v.rc == 1


@pytest.mark.fleet
def test_limit_touches_only_matching_hosts(fleet: Fleet) -> None:
    before = fleet.hashes()
    r = fleet.tuner("apply", "-p", "inference", "--limit", "head", "--json")
    assert r.rc == 0
    assert [h["host"] for h in r.json()["hosts"]] == ["node01"]
    after = fleet.hashes()
    assert after["node01"] != before["node01"]
    assert all(after[n] == before[n] for n in ("node02", "node03", "node04"))


@pytest.mark.fleet
def test_persistence_survives_reboot(fleet: Fleet) -> None:
    assert fleet.tuner("apply", "-p", "inference").rc == 0
    assert fleet.tuner("sim", "reboot", "node02").rc == 0
    root = fleet.roots["node02"]
    assert (root / "sys/kernel/mm/transparent_hugepage/defrag").read_text().startswith("[always]")
    # node02 booted the kernel command line too; the others wait for their reboot
    assert fleet.tuner("verify", "-p", "inference", "--limit", "node02").rc == 0
    assert fleet.tuner("verify", "-p", "inference").rc == 1


@pytest.mark.fleet
def test_missing_settings_are_reported_as_missing(fleet: Fleet, tmp_path: Path) -> None:
    import shutil

    root = fleet.roots["node04"]
    for cpufreq in (root / "sys/devices/system/cpu").glob("cpu*/cpufreq"):
        shutil.rmtree(cpufreq)
    # a setting missing and not in allow_missing fails apply (and its dry run) too
    for check in ((), ("--check",)):
        r = fleet.tuner("apply", "-p", "inference", *check, "--json")
        assert r.rc == 1, r.out
        assert statuses(r.json(), "node04")["cpu.governor"] == "missing"
        node04 = next(h for h in r.json()["hosts"] if h["host"] == "node04")
        assert node04["status"] == "failed" and "cpu.governor" in node04["message"]
        assert {h["status"] for h in r.json()["hosts"] if h["host"] != "node04"} <= {
            "changed", "would change", "unchanged"
        }
    v = fleet.tuner("verify", "-p", "inference", "--json")
    assert v.rc == 1
    assert statuses(v.json(), "node04")["cpu.governor"] == "missing"
    assert statuses(v.json(), "node03")["cpu.governor"] == "ok"
    lenient = tmp_path / "vm.yml"
    lenient.write_text("name: vm\ninclude: [inference]\nos:\n  allow_missing: ['cpu.*']\n")
    assert fleet.tuner("apply", "-p", str(lenient)).rc == 0
    v2 = fleet.tuner("verify", "-p", str(lenient), "--layer", "os", "--json")
    assert v2.rc == 0, v2.out
    gov = next(
        s
        for h in v2.json()["hosts"]
        if h["host"] == "node04"
        for s in h["settings"]
        if s["id"] == "cpu.governor"
    )
    assert gov["status"] == "missing" and gov["missing_ok"] is True


def kill_apply_after(fleet: Fleet, delay: float) -> None:
    """Start `tuner apply` and kill -9 its whole process group after `delay` seconds."""
    env = dict(os.environ, TUNER_STATE_DIR=str(fleet.state))
    p = subprocess.Popen(
        [*TUNER, "apply", "-p", "inference"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


@pytest.mark.fleet
@pytest.mark.parametrize("delay", [0.4, 1.0, 1.6, 2.2])
def test_killed_apply_rolls_back_and_reapply_converges(fleet: Fleet, delay: float) -> None:
    pristine = fleet.hashes()
    kill_apply_after(fleet, delay)
    # a killed run can be re-run to converge ...
    r = fleet.tuner("apply", "-p", "inference")
    assert r.rc == 0, r.out + r.err
    assert fleet.tuner("verify", "-p", "inference", "--layer", "os").rc == 0
    # ... and rolled back exactly
    assert fleet.tuner("rollback").rc == 0
    assert fleet.hashes() == pristine


@pytest.mark.fleet
def test_killed_apply_then_rollback_directly(fleet: Fleet) -> None:
    pristine = fleet.hashes()
    kill_apply_after(fleet, 1.3)
    r = fleet.tuner("rollback")
    assert r.rc == 0, r.out
    assert fleet.hashes() == pristine


@pytest.mark.fleet
def test_sim_up_json_and_down(tmp_path: Path) -> None:
    from conftest import run_tuner

    state = tmp_path / "s"
    r = run_tuner("sim", "up", "--nodes", "2", "--connection", "local", "--json", state=state)
    assert r.rc == 0
    info = r.json()
    assert Path(info["inventory"]).is_file()
    assert [n["name"] for n in info["nodes"]] == ["node01", "node02"]
    root = Path(info["nodes"][0]["root"])
    cpus = list((root / "sys/devices/system/cpu").glob("cpu[0-9]*"))
    assert len(cpus) == 256
    assert (root / "sys/devices/system/node/node1/cpulist").read_text() == "64-127,192-255\n"
    assert run_tuner("sim", "up", "--nodes", "2", state=state).rc == 2  # already up
    assert run_tuner("apply", "-p", "inference", state=state).rc == 0  # local connection works
    d = run_tuner("sim", "down", "--json", state=state)
    assert d.rc == 0 and d.json()["removed"] == 2
    assert not (state / "sim").exists()


def test_example_inventory_parses() -> None:
    from agent.inventory import load_inventory

    for f in ("inventory/example-fleet.yml", "inventory/example-fleet.ini"):
        inv = load_inventory(REPO / f)
        names = [h.name for h in inv.hosts]
        assert "head01" in names and len(names) >= 3
    assert DATA.is_dir()
