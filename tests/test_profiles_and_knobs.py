"""Pure logic with data: profile merging and provenance, knob parsing and planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import knobs
from agent.errors import BadInput
from agent.profiles import list_profiles, load_profile
from agent.sim.nodetree import Topology, build_node


def test_shipped_profiles() -> None:
    assert {"inference", "inference-nps4"} <= set(list_profiles())
    p = load_profile("inference")
    assert p.os.thp.enabled == "always" and p.os.thp.defrag == "always"
    assert p.os.sysctl == {
        "kernel.numa_balancing": 0,
        "kernel.nmi_watchdog": 0,
        "kernel.randomize_va_space": 0,
    }
    assert p.os.cpu.governor == "performance" and p.os.cpuidle.disable == ["C2"]
    assert p.bios.nps == 1 and p.bios.smt is False and p.bios.apbdis == 1
    assert p.bios.df_cstates is False and p.bios.determinism == "power"
    assert p.bios.core_performance_boost is True
    n4 = load_profile("inference-nps4")
    assert n4.bios.nps == 4 and n4.os == p.os
    assert n4.sources["bios.nps"].endswith("inference-nps4.yml")
    assert n4.sources["os.cpu.governor"].endswith("inference.yml")


def test_child_wins_and_null_removes(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(
        "name: base\nos:\n  sysctl: {kernel.nmi_watchdog: 0, vm.swappiness: 10}\n"
        "  cpuidle: {disable: [C2]}\n"
    )
    (tmp_path / "child.yml").write_text(
        "name: child\ninclude: [base.yml]\nos:\n  sysctl: {kernel.nmi_watchdog: null, "
        "vm.swappiness: 1}\n  cpuidle: {disable: [C1, C2]}\n"
    )
    p = load_profile(str(tmp_path / "child.yml"))
    assert p.os.sysctl == {"vm.swappiness": 1}
    assert p.os.cpuidle.disable == ["C1", "C2"]
    assert p.sources["os.sysctl.vm.swappiness"].endswith("child.yml")
    ids = [s["id"] for s in p.os_settings()]
    assert ids == ["sysctl.vm.swappiness", "cpuidle.C1", "cpuidle.C2"]


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "me.yml").write_text("name: me\ninclude: [me.yml]\n")
    with pytest.raises(BadInput, match="include cycle"):
        load_profile(str(tmp_path / "me.yml"))


@pytest.mark.parametrize(
    ("raw", "value", "options"),
    [
        ("always [madvise] never\n", "madvise", ["always", "madvise", "never"]),
        (
            "[always] defer defer+madvise madvise never",
            "always",
            ["always", "defer", "defer+madvise", "madvise", "never"],
        ),
    ],
)
def test_parse_selection(raw: str, value: str, options: list[str]) -> None:
    assert knobs.parse_selection(raw) == (value, options)
    assert knobs.render_selection(value, options).strip() == raw.strip()


def test_summarize() -> None:
    assert knobs.summarize(["a", "a"]) == "a"
    assert knobs.summarize(["a", "b", "a"]) == "a x2, b x1"


@pytest.mark.parametrize("bad", ["/../etc/shadow", "/proc/../../x", "relative", "/a/\x00b"])
def test_paths_cannot_leave_the_root(tmp_path: Path, bad: str) -> None:
    with pytest.raises(knobs.PathEscape):
        knobs.Host(str(tmp_path)).path(bad)


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc/sys").mkdir(parents=True)
    (root / "proc/sys/kernel").symlink_to("/etc")
    with pytest.raises(knobs.PathEscape):
        knobs.Host(str(root)).path("/proc/sys/kernel/passwd")


def small_node(tmp_path: Path) -> knobs.Host:
    root = tmp_path / "root"
    build_node(root, "n", Topology(sockets=1, cores_per_socket=2, smt=True))
    return knobs.Host(str(root), sim_kernel=True)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "var/lib/tuner" not in str(p)
    } | {
        str(p.relative_to(root)) + "/": b""
        for p in root.rglob("*")
        if p.is_dir() and "var/lib/tuner" not in str(p)
    }


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (not even except/finally in the knob code
    that catches Exception)."""


def test_killed_at_every_write_can_be_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop the host side after k writes, for every k, then roll back: identical tree."""
    specs = load_profile("inference").os_settings()
    host = small_node(tmp_path)
    pristine = snapshot(Path(host.root))
    writes = 0
    real_kernel, real_file = knobs.Host.write_kernel, knobs.Host.write_file

    def count(fn):  # type: ignore[no-untyped-def]
        def wrapped(self, *a, **kw):  # type: ignore[no-untyped-def]
            nonlocal writes
            writes += 1
            if writes == limit:
                raise Killed
            return fn(self, *a, **kw)

        return wrapped

    monkeypatch.setattr(knobs.Host, "write_kernel", count(real_kernel))
    monkeypatch.setattr(knobs.Host, "write_file", count(real_file))
    limit = 0
    knobs.apply(host, specs, True, False)
    total = writes
    assert total > 10
    knobs.rollback(host, False)
    for k in range(1, total + 1):
        writes, limit = 0, k
        with pytest.raises(Killed):
            knobs.apply(host, specs, True, False)
        limit = 0
        if k % 2:  # half of the time, re-run apply first: it converges
            res = knobs.apply(host, specs, True, False)
            assert all(r["status"] in ("changed", "unchanged") for r in res)
            assert all(r["status"] == "ok" for r in knobs.verify(host, specs, True))
        knobs.rollback(host, False)
        assert snapshot(Path(host.root)) == pristine, f"killed at write {k}"


def test_persistence_files(tmp_path: Path) -> None:
    host = small_node(tmp_path)
    specs = load_profile("inference").os_settings()
    obs = {o.id: o for o in knobs.observe_all(host, specs, False)}
    files = knobs.persistence(specs, obs)
    assert files[knobs.SYSCTL_DROPIN].splitlines()[1:] == [
        "kernel.numa_balancing = 0",
        "kernel.nmi_watchdog = 0",
        "kernel.randomize_va_space = 0",
    ]
    tmp = files[knobs.TMPFILES_DROPIN]
    assert "w /sys/kernel/mm/transparent_hugepage/enabled - - - - always" in tmp
    assert "w /sys/devices/system/cpu/cpu*/cpuidle/state2/disable - - - - 1" in tmp


def test_profiles_cli(tmp_path: Path) -> None:
    from conftest import run_tuner

    r = run_tuner("profiles", "list", "--json", state=tmp_path)
    assert r.rc == 0
    names = [p["name"] for p in r.json()["profiles"]]
    assert "inference" in names and "inference-nps4" in names
    s = run_tuner("profiles", "show", "inference-nps4", "--json", state=tmp_path)
    doc = s.json()
    assert doc["bios"]["nps"] == 4 and doc["os"]["cpu"]["governor"] == "performance"
    assert doc["sources"]["bios.nps"].endswith("inference-nps4.yml")
    human = run_tuner("profiles", "show", "inference-nps4", state=tmp_path)
    assert human.rc == 0 and "inference-nps4.yml" in human.out and "bios.nps" in human.out


def test_rollback_skips_kernel_files_that_are_gone(tmp_path: Path) -> None:
    """SMT off (a BIOS change) takes CPUs away: their files cannot and need not be restored."""
    import shutil

    host = small_node(tmp_path)
    specs = load_profile("inference").os_settings()
    knobs.apply(host, specs, True, False)
    shutil.rmtree(Path(host.root) / "sys/devices/system/cpu/cpu3")
    res = knobs.rollback(host, False)
    gone = [r for r in res if r["status"] == "gone"]
    assert gone and all("/cpu3/" in r["path"] for r in gone)
    assert not [r for r in res if r["status"] == "failed"]
    assert not (Path(host.root) / "var/lib/tuner/originals.json").exists()
