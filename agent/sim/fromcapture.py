"""Simulated nodes built from capture bundles (`tuner sim up --from-capture BUNDLE...`).

Each bundle (agent/capture/bundle.py, already checked by ``read_bundle``) becomes one node:

* **tree**: the node tree of the topology the bundle shows (sockets, cores, SMT, NUMA nodes,
  CPU model and memory from its cpuinfo/meminfo and sysfs), then every captured file
  written over it byte for byte (``node/...``), the PCI drivers of ``pci-drivers.txt`` bound,
  the kernel log lines in ``var/log/dmesg``;
* **GPUs**: a simulated node's ``gpu-state`` file when the bundle has one (the same answers);
  otherwise the state the captured amdsmi answers describe (``agent/sim/gpustate_from_calls``
  in ``state_from_calls``), error codes included;
* **BMC**: the bundle's ``bmc/`` resources (agent/sim/bmc/captured.py), a personality's
  behaviours on top.

What a bundle lacks falls back to the simulator's documented defaults, and each fallback is
returned (``sim up`` prints them): docs/sim-capture.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from agent.capture.bundle import CALLS, Bundle
from agent.sim.nodetree import MEM_RESERVED, Topology, build_node

GPU_STATE = "node/opt/rocm/share/tuner-sim/gpu-state"
CPU = "node/sys/devices/system/cpu"


def topology_of(b: Bundle) -> tuple[Topology, list[str]]:
    """The node's topology as its files show it; -> (topology, defaults used)."""
    t = Topology()
    used: list[str] = []
    packages: dict[str, set[str]] = {}
    cpus: set[str] = set()
    for path in b.files:
        m = re.match(rf"^{CPU}/cpu(\d+)/topology/(physical_package_id|core_id)$", path)
        if m:
            cpus.add(m.group(1))
    for cpu in cpus:
        pkg = (b.text(f"{CPU}/cpu{cpu}/topology/physical_package_id") or "").strip()
        core = (b.text(f"{CPU}/cpu{cpu}/topology/core_id") or "").strip()
        if pkg and core:
            packages.setdefault(pkg, set()).add(core)
    if packages:
        t.sockets = len(packages)
        t.cores_per_socket = max(len(v) for v in packages.values())
        t.smt = len(cpus) > t.sockets * t.cores_per_socket
    else:
        used.append(
            f"CPU topology: {t.sockets} x {t.cores_per_socket} cores, SMT on (no "
            "cpu*/topology files)"
        )
    nodes = {
        p.split("/")[5] for p in b.files if re.match(r"^node/sys/devices/system/node/node\d+/", p)
    }
    if nodes:
        t.nps = max(1, len(nodes) // max(t.sockets, 1)) if len(nodes) > 1 else 1
    else:
        used.append(f"NUMA: NPS{t.nps} (no node*/ folders)")
    cpuinfo = b.text("node/proc/cpuinfo") or ""
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    if m:
        t.cpu_model = m.group(1).strip()
    else:
        used.append(f"CPU model: {t.cpu_model} (no /proc/cpuinfo)")
    meminfo = b.text("node/proc/meminfo") or ""
    m = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo, re.M)
    if m:
        # MemTotal is the installed memory less what firmware and kernel keep (nodetree)
        kb = int(m.group(1)) / (1 - MEM_RESERVED)
        t.mem_gib_per_socket = max(1, round(kb / (1024 * 1024) / max(t.sockets, 1)))
    else:
        used.append(f"memory: {t.mem_gib_per_socket} GiB per socket (no /proc/meminfo)")
    return t, used


def _write_inside(root: Path, rel: str, data: bytes) -> None:
    """Write root/rel; refuse a path through a symbolic link or out of the root."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"{rel!r} is not a path inside the node")
    d = root
    for p in parts[:-1]:
        d = d / p
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            d.mkdir()
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{rel!r}: {d} is not a folder of the node tree")
    target = d / parts[-1]
    if target.is_symlink() or target.is_dir():
        raise ValueError(f"{rel!r}: {target} is a link or a folder")
    target.write_bytes(data)


def build(root: Path, b: Bundle, lib: Path) -> list[str]:
    """Lay out a node from a bundle under ``root``; -> the defaults used (what it lacked)."""
    from agent.sim.gpu.state import NodeGpuState, install_node

    t, used = topology_of(b)
    build_node(root, b.host, t)
    # GPUs: the simulated library with a node of no GPUs first (lib, /dev/kfd), then the state
    calls = json.loads(b.files[CALLS]) if CALLS in b.files else None
    if GPU_STATE in b.files:
        install_node(root, NodeGpuState(gpus=[], nics={}, uptime_s=None), lib)
    elif calls is not None:
        from agent.sim.gpustate import state_from_calls

        state, notes = state_from_calls(calls)
        install_node(root, state, lib)
        used += notes
    else:
        install_node(root, NodeGpuState.healthy(8), lib)
        used.append("GPUs: 8 healthy MI355X (the bundle has no amdsmi answers)")
    for path in sorted(b.files):
        if path.startswith("node/"):
            _write_inside(root, path[len("node/") :], b.files[path])
    _bind_drivers(root, b.text("pci-drivers.txt"))
    if calls is not None:
        _dev_nodes(root, calls)
    log = b.text("kernel-log.txt")
    if log is not None:
        lines = [ln for ln in log.splitlines() if not ln.startswith("# ")]
        _write_inside(root, "var/log/dmesg", "".join(f"{ln}\n" for ln in lines).encode())
    else:
        (root / "var/log/dmesg").unlink(missing_ok=True)  # not the simulator's boot lines
        used.append("kernel log: none (the bundle has no kernel-log.txt)")
    if not any(p.startswith("bmc/") for p in b.files):
        used.append("BMC: the personality's own resources (the bundle has no bmc/)")
    for what, path in (
        ("/proc/cmdline", "node/proc/cmdline"),
        ("/etc/os-release", "node/etc/os-release"),
        ("sysctls", "node/proc/sys/kernel/numa_balancing"),
        ("THP", "node/sys/kernel/mm/transparent_hugepage/enabled"),
        ("cpufreq", f"{CPU}/cpu0/cpufreq/scaling_governor"),
        ("cpuidle", f"{CPU}/cpu0/cpuidle/state0/name"),
        ("ROCm version", "node/opt/rocm/.info/version"),
        ("amdgpu version", "node/sys/module/amdgpu/version"),
    ):
        if path not in b.files:
            used.append(f"{what}: the simulator's boot defaults (not in the bundle)")
    return used


def _bind_drivers(root: Path, text: str | None) -> None:
    for line in (text or "").splitlines():
        parts = line.split()
        if line.startswith("#") or len(parts) != 3 or parts[2] == "-":
            continue
        bdf, _kind, driver = parts
        if not re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", bdf):
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", driver):
            continue
        dev = root / "sys/bus/pci/devices" / bdf
        if not dev.is_dir() or dev.is_symlink():
            continue
        (root / "sys/bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
        link = dev / "driver"
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(Path("../../drivers") / driver)


def _dev_nodes(root: Path, calls: list[dict[str, Any]]) -> None:
    """/dev/kfd and /dev/dri/renderD<N> of the GPUs amdsmi enumerated (render minors)."""
    renders = [
        c["value"].get("drm_render")
        for c in calls
        if c.get("fn") == "amdsmi_get_gpu_enumeration_info"
        and c.get("code") == 0
        and isinstance(c.get("value"), dict)
    ]
    dri = root / "dev/dri"
    dri.mkdir(parents=True, exist_ok=True)
    for r in renders:
        if isinstance(r, int) and 0 < r < 4096:
            p = dri / f"renderD{r}"
            p.touch()
            p.chmod(0o660)
    if renders:
        kfd = root / "dev/kfd"
        kfd.touch()
        kfd.chmod(0o660)
