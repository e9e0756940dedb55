"""Simulated udev events: change a node tree the way the kernel would, then deliver the uevent.

A simulated node has no kernel and no netlink socket of its own. `tuner sim event` (this
module) plays the kernel's part: it changes the node's files as the kernel would (a CPU
coming online with a fresh cpufreq policy, a cpufreq driver loading late, a GPU leaving the
PCI bus) and then appends the uevent the kernel would send, as one JSON line, to
`<node root>/run/tuner-sim/uevents.jsonl`. The node agent's simulator event source
(`agent/nodeagent.py` `SimSource`) reads that file; on a real node it reads netlink through
pyudev instead. Sources and what is not confirmed: docs/sim-agent.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from agent.errors import BadInput
from agent.nodeagent import SIM_EVENTS, UEvent
from agent.sim.nodetree import kernel_files, load_topology

KINDS = ("cpu-online", "cpu-offline", "cpufreq-load", "gpu-remove", "gpu-add")
# cpufreq drivers the simulator can load (both offer the generic governors; the policy a
# driver creates starts with the kernel's default governor, CONFIG_CPU_FREQ_DEFAULT_GOV_*).
DRIVERS = ("acpi-cpufreq", "amd-pstate")
BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
UNPLUGGED = "var/lib/tuner-sim/unplugged"  # where a removed GPU's PCI folder waits
CPU_DIR = "sys/devices/system/cpu"


def deliver(root: Path, ev: UEvent) -> None:
    """Append the uevent as one line (one write, O_APPEND: lines never interleave)."""
    path = root / SIM_EVENTS.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(ev.to_json(), sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _uevent(action: str, subsystem: str, devpath: str, **props: str) -> UEvent:
    base = {"ACTION": action, "DEVPATH": devpath, "SUBSYSTEM": subsystem, "SEQNUM": "0"}
    return UEvent(action, subsystem, devpath, {**base, **props})


def _cpu(root: Path, arg: str | None) -> int:
    t = load_topology(root)
    if arg is None or not arg.isdigit():
        raise BadInput(f"a CPU number is needed (0-{t.logical_cpus - 1}), got {arg!r}", field="ARG")
    n = int(arg)
    if n >= t.logical_cpus:
        raise BadInput(f"no cpu{n} on this node (0-{t.logical_cpus - 1})", field="ARG")
    if n == 0:
        raise BadInput("cpu0 cannot go offline or online here (it has no online file)", field="ARG")
    return n


def _fresh_cpu_files(root: Path, cpus: list[int], parts: tuple[str, ...], driver: str) -> None:
    """Write the boot content of these CPUs' cpufreq / cpuidle files (a new policy: the
    default governor; a newly registered idle device: every state enabled)."""
    files = kernel_files(load_topology(root))
    for n in cpus:
        for part in parts:
            prefix = f"{CPU_DIR}/cpu{n}/{part}/"
            for rel, content in files.items():
                if rel.startswith(prefix):
                    if rel.endswith("/scaling_driver"):
                        content = driver + "\n"
                    p = root / rel
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_text(content)


def _online_cpus(root: Path) -> list[int]:
    out = []
    for d in sorted((root / CPU_DIR).glob("cpu[0-9]*")):
        n = int(d.name[3:])
        online = d / "online"
        if not online.exists() or online.read_text().strip() == "1":
            out.append(n)
    return sorted(out)


def _gpu_props(d: Path, bdf: str) -> dict[str, str]:
    def rd(name: str) -> str:
        try:
            return (d / name).read_text().strip().lower().removeprefix("0x")
        except OSError:
            return ""

    return {
        "PCI_ID": f"{rd('vendor')}:{rd('device')}".upper(),
        "PCI_SUBSYS_ID": f"{rd('subsystem_vendor')}:{rd('subsystem_device')}".upper(),
        "PCI_CLASS": rd("class").upper(),
        "PCI_SLOT_NAME": bdf,
        "DRIVER": "amdgpu",
    }


def _pci_devpath(bdf: str) -> str:
    return f"/devices/pci{bdf[:7]}/{bdf}"


def event(root: Path, kind: str, arg: str | None) -> UEvent:
    """Change the node tree as the kernel would for `kind`, deliver the uevent, return it."""
    if kind not in KINDS:
        raise BadInput(f"unknown event {kind!r} (one of: {', '.join(KINDS)})", field="KIND")
    if kind in ("cpu-online", "cpu-offline"):
        n = _cpu(root, arg)
        devpath = f"/devices/system/cpu/cpu{n}"
        online = root / CPU_DIR / f"cpu{n}/online"
        if kind == "cpu-offline":
            online.write_text("0\n")
            ev = _uevent("offline", "cpu", devpath, DRIVER="processor")
        else:
            # A CPU that comes up with a new cpufreq policy and idle device: boot values.
            driver = (root / CPU_DIR / "cpu0/cpufreq/scaling_driver").read_text().strip()
            _fresh_cpu_files(root, [n], ("cpufreq", "cpuidle"), driver or DRIVERS[0])
            online.write_text("1\n")
            ev = _uevent("online", "cpu", devpath, DRIVER="processor")
    elif kind == "cpufreq-load":
        driver = arg or DRIVERS[0]
        if driver not in DRIVERS:
            raise BadInput(
                f"unknown cpufreq driver {driver!r} (one of: {', '.join(DRIVERS)})", field="ARG"
            )
        _fresh_cpu_files(root, _online_cpus(root), ("cpufreq",), driver)
        ev = _uevent("add", "module", "/module/" + driver.replace("-", "_"))
    else:
        bdf = (arg or "").lower()
        if not BDF.match(bdf):
            raise BadInput(
                f"a PCI address such as 0000:05:00.0 is needed, got {arg!r}", field="ARG"
            )
        here = root / "sys/bus/pci/devices" / bdf
        away = root / UNPLUGGED / bdf
        if kind == "gpu-remove":
            if not here.is_dir() or here.is_symlink():
                raise BadInput(f"no PCI device {bdf} on this node", field="ARG")
            props = _gpu_props(here, bdf)
            away.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(here), str(away))
            ev = _uevent("remove", "pci", _pci_devpath(bdf), **props)
        else:
            if not away.is_dir():
                raise BadInput(f"no removed GPU {bdf} to add back (gpu-remove first)", field="ARG")
            shutil.move(str(away), str(here))
            ev = _uevent("add", "pci", _pci_devpath(bdf), **_gpu_props(here, bdf))
    deliver(root, ev)
    return ev
