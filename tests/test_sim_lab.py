"""The simulated lab's housekeeping: `sim down` moves the fleet's folder aside and a detached
process deletes it (docs/performance.md); a folder left by a deleter that did not finish is
removed by the next `sim up` / `sim down`; two deleters never work on one folder."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from agent.sim import fleet


def _tree(root: Path, n: int = 50) -> None:
    for i in range(n):
        d = root / f"d{i % 5}" / "sub"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_text("x")


def _gone(p: Path, within: float = 30.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not p.exists():
            return True
        time.sleep(0.05)
    return False


def test_remove_later_moves_the_folder_aside_and_deletes_it(tmp_path: Path) -> None:
    base = tmp_path / "sim"
    _tree(base)
    fleet.remove_later(base)
    assert not base.exists()  # at once: the name is free for a new fleet
    left = fleet._old_trash(tmp_path)
    assert all(_gone(p) for p in left)
    assert list(tmp_path.iterdir()) == []


def test_leftover_trash_is_removed_and_a_locked_one_is_skipped(tmp_path: Path) -> None:
    old = tmp_path / f"{fleet.TRASH_PREFIX}1-2"
    busy = tmp_path / f"{fleet.TRASH_PREFIX}3-4"
    _tree(old)
    _tree(busy)
    (tmp_path / "keep").mkdir()  # not ours: never touched
    fd = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a deleter still working on it holds it
        assert sorted(fleet._old_trash(tmp_path)) == [old, busy]
        fleet._delete_detached(fleet._old_trash(tmp_path))
        assert _gone(old)
        time.sleep(0.5)
        assert (busy / "d0/sub/f0").exists()
    finally:
        os.close(fd)
    assert (tmp_path / "keep").is_dir()


def _snapshot(root: Path) -> dict[str, tuple[str, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
            data = p.read_bytes() if kind == "file" else b""
            out[str(p.relative_to(root))] = (kind, st.st_mode & 0o7777, data)
    return out


def test_reboot_brings_a_changed_tree_back_to_a_fresh_one(tmp_path: Path) -> None:
    """Only what differs is rewritten, and the result is the tree a fresh boot makes."""
    from agent.sim.nodetree import Topology, build_node, reboot

    t = Topology(sockets=2, cores_per_socket=2)
    fresh, used = tmp_path / "fresh", tmp_path / "used"
    build_node(fresh, "n1", t)
    build_node(used, "n1", t)
    cpu = used / "sys/devices/system/cpu"
    (cpu / "cpu0/cpufreq/scaling_governor").write_text("performance\n")  # same size: read
    (cpu / "cpu1/cpufreq/scaling_governor").write_text("powersave\n")  # other size
    (cpu / "cpu2/cpufreq/scaling_max_freq").chmod(0o600)  # changed mode
    (cpu / "cpu3/extra").write_text("x")  # a file the topology does not have
    (cpu / "cpu3/online").unlink()
    (cpu / "cpu3/online").symlink_to("/etc/hostname")  # a link: removed, never followed
    (cpu / "cpu99").mkdir()  # a folder the topology does not have
    (cpu / "cpu99/x").write_text("x")
    import shutil

    shutil.rmtree(used / "sys/devices/system/node")  # a removed folder
    os.mkfifo(used / "proc/sys/vm/fifo")  # not a regular file
    (used / "sys/kernel/mm/transparent_hugepage/enabled").unlink()
    (used / "sys/kernel/mm/transparent_hugepage/enabled").mkdir()  # a folder for a file
    reboot(used, t)
    assert _snapshot(used) == _snapshot(fresh)
    assert (tmp_path / "used/etc/hostname").read_text() == "n1\n"  # the link's target kept
