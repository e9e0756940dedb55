"""Read a node for a capture bundle: the files tuner reads and a triaging engineer asks for.

Host side, like agent/knobs.py: shipped to nodes as Ansible module_utils
(``playbooks/module_utils/tuner_capture_node.py`` links here), so it imports only the
standard library. Read only: files are opened for reading, the kernel log is read with
``dmesg`` or ``journalctl`` (argument lists, no shell); nothing on the node is written.

``read_node(root)`` -> ``{"files": {path: text}, "not_read": {path: why}, "derived": {name:
text}, "host": name}``, file paths relative to the node's ``/``; ``derived`` holds what is
not a file of the node (the kernel log lines, the driver each PCI device is bound to). A
file that is absent is simply not in the bundle; a file that exists but cannot be read
(permission, I/O error) is in ``not_read`` with the reason. The amdsmi answers come from
the GPU collector's recording hook (``agent/gpu/collect.py: gather(record=...)``).
"""

from __future__ import annotations

import glob
import os
import re
import socket
import subprocess
from typing import Any

AMD_VENDOR = "0x1002"
GPU_CLASSES = ("0x03", "0x12")
NET_CLASS = "0x02"  # network controllers (Ethernet, InfiniBand)
MAX_FILE = 4 * 1024 * 1024  # a kernel attribute is small; cpuinfo of 512 CPUs is ~0.7 MB
MAX_LOG_LINES = 20000

# The sysctls tuner's profiles and the simulated nodes know (agent/sim/nodetree.py), plus
# what the caller passes (the sysctls of every profile it ships).
SYSCTLS = (
    "kernel/numa_balancing",
    "kernel/nmi_watchdog",
    "kernel/randomize_va_space",
    "kernel/sched_autogroup_enabled",
    "kernel/watchdog_thresh",
    "kernel/osrelease",
    "kernel/dmesg_restrict",
    "vm/swappiness",
    "vm/zone_reclaim_mode",
    "vm/max_map_count",
    "vm/nr_hugepages",
)
PROC = ("proc/cpuinfo", "proc/meminfo", "proc/cmdline", "proc/uptime", "proc/version")
ETC = ("etc/os-release", "etc/hostname", "etc/default/grub")
VERSIONS = (
    "opt/rocm/.info/version",  # ROCm's own version file
    "sys/module/amdgpu/version",  # the amdgpu DKMS driver (absent for the in-tree driver)
    "sys/module/amdgpu/srcversion",
    "opt/rocm/share/tuner-sim/gpu-state",  # a simulated node's GPU state (docs/sim-gpu-state.md)
)
THP = "sys/kernel/mm/transparent_hugepage"
CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
CPU_FILES = (
    "cpufreq/scaling_governor",
    "cpufreq/scaling_driver",
    "cpufreq/scaling_available_governors",
    "cpufreq/cpuinfo_min_freq",
    "cpufreq/cpuinfo_max_freq",
    "cpufreq/scaling_min_freq",
    "cpufreq/scaling_max_freq",
    "cpufreq/energy_performance_preference",
    "topology/physical_package_id",
    "topology/core_id",
    "topology/thread_siblings_list",
    "online",
)
IDLE_FILES = ("name", "desc", "latency", "residency", "disable")
PCI_FILES = (
    "vendor",
    "device",
    "subsystem_vendor",
    "subsystem_device",
    "class",
    "revision",
    "numa_node",
    "local_cpulist",
    "current_link_speed",
    "current_link_width",
    "max_link_speed",
    "max_link_width",
    "aer_dev_correctable",
    "aer_dev_fatal",
    "aer_dev_nonfatal",
    "aer_rootport_total_err_cor",
    "aer_rootport_total_err_fatal",
    "aer_rootport_total_err_nonfatal",
)
NET_FILES = ("address", "speed", "mtu", "operstate", "device/numa_node")
KERNEL_LOG = "kernel-log.txt"  # bundle paths of what is derived, not a file of the node
PCI_DRIVERS = "pci-drivers.txt"
LOG_MATCH = re.compile(r"amdgpu|amdkfd|\bkfd\b|drm:amdgpu|\[drm\].*amd", re.IGNORECASE)


class _Reader:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.files: dict[str, str] = {}
        self.not_read: dict[str, str] = {}

    def _inside(self, rel: str) -> str | None:
        path = os.path.join(self.root, rel)
        if self.root == "/":
            return path
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
            self.not_read[rel] = "links outside the node root: not followed"
            return None
        return path

    def read(self, rel: str, *, quiet_missing: bool = True) -> str | None:
        rel = rel.strip("/")
        if rel in self.files:
            return self.files[rel]
        path = self._inside(rel)
        if path is None:
            return None
        try:
            if not os.path.isfile(path):
                if not quiet_missing and not os.path.exists(path):
                    self.not_read[rel] = "absent"
                return None
            chunks: list[bytes] = []
            size = 0
            with open(path, "rb") as f:
                # in small reads: procfs sysctl handlers allocate the size asked for, and
                # answer ENOMEM to a read of megabytes
                while size <= MAX_FILE:
                    chunk = f.read(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            data = b"".join(chunks)
        except PermissionError:
            self.not_read[rel] = f"permission denied (uid {os.geteuid()})"
            return None
        except OSError as e:  # sysfs answers EIO/ENODEV/EINVAL for attributes it cannot give
            self.not_read[rel] = f"{type(e).__name__}: {e.strerror or e}"
            return None
        if len(data) > MAX_FILE:
            self.not_read[rel] = f"larger than {MAX_FILE} bytes: not captured"
            return None
        text = data.decode("utf-8", errors="replace")
        self.files[rel] = text
        return text

    def glob(self, pattern: str) -> list[str]:
        base = self.root.rstrip("/") + "/"
        return sorted(p[len(base) :] for p in glob.glob(base + pattern))


def _pci_devices(r: _Reader) -> dict[str, str]:
    """bdf -> why it is captured (gpu | nic) for AMD GPUs and network controllers."""
    out: dict[str, str] = {}
    for rel in r.glob("sys/bus/pci/devices/*"):
        bdf = rel.rsplit("/", 1)[-1]
        vendor = (r.read(f"{rel}/vendor") or "").strip().lower()
        cls = (r.read(f"{rel}/class") or "").strip().lower()
        if vendor == AMD_VENDOR and cls.startswith(GPU_CLASSES):
            out[bdf] = "gpu"
        elif cls.startswith(NET_CLASS):
            out[bdf] = "nic"
    # NICs the class files do not show (a node tree without them): through /sys/class/net
    for rel in r.glob("sys/class/net/*/device"):
        path = os.path.join(r.root, rel)
        if os.path.islink(path):
            target = os.path.basename(os.readlink(path))
            if re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", target):
                out.setdefault(target, "nic")
    return out


def kernel_log(root: str, timeout: float = 20.0) -> tuple[str | None, str]:
    """The amdgpu/KFD lines of the kernel log since boot -> (text or None, how or why not).

    On ``/``: ``dmesg`` (the kernel ring buffer; refused to non-root when
    kernel.dmesg_restrict=1), else ``journalctl -k -b`` (the journal of this boot). Under
    another root (a simulated node) the node's ``var/log/dmesg`` if it has one.
    """
    if os.path.abspath(root) != "/":
        path = os.path.join(root, "var/log/dmesg")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read(MAX_FILE).splitlines()
        except OSError:
            return None, (
                "not a live root: the node tree has no var/log/dmesg (a simulated node "
                "without a kernel log)"
            )
        return _filter(lines, "var/log/dmesg of the node tree"), "var/log/dmesg of the node tree"
    tries = (
        (["dmesg", "--kernel", "--time-format", "iso", "--nopager"], "dmesg --kernel"),
        (["journalctl", "-k", "-b", "--no-pager", "-o", "short-iso", "-q"], "journalctl -k -b"),
    )
    why: list[str] = []
    for argv, label in tries:
        try:
            p = subprocess.run(
                argv, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
            )
        except FileNotFoundError:
            why.append(f"{argv[0]}: not installed")
            continue
        except subprocess.TimeoutExpired:
            why.append(f"{label}: no answer in {timeout:.0f} s")
            continue
        if p.returncode != 0 or not p.stdout.strip():
            msg = (p.stderr.strip().splitlines() or ["no output"])[-1][:200]
            why.append(f"{label}: exit {p.returncode}: {msg}")
            continue
        return _filter(p.stdout.splitlines(), label), label
    return None, "; ".join(why) or "no kernel log reader"


def _filter(lines: list[str], source: str) -> str:
    hits = [ln for ln in lines if LOG_MATCH.search(ln)]
    cut = len(hits) > MAX_LOG_LINES
    hits = hits[-MAX_LOG_LINES:]
    head = f"# {len(hits)} amdgpu/KFD lines of {len(lines)} since boot, from {source}" + (
        " (the latest; more were cut)" if cut else ""
    )
    return head + "\n" + "".join(ln + "\n" for ln in hits)


def read_node(
    root: str = "/", sysctls: list[str] | None = None, name: str | None = None
) -> dict[str, Any]:
    """Everything a bundle holds of the node itself (see the module docstring)."""
    r = _Reader(root)
    for rel in PROC + ETC + VERSIONS:
        r.read(rel)
    for key in list(SYSCTLS) + [s.replace(".", "/") for s in sysctls or []]:
        if re.fullmatch(r"[A-Za-z0-9_/-]+", key) and ".." not in key:
            r.read(f"proc/sys/{key}")
    for rel in r.glob(f"{THP}/*") + r.glob(f"{THP}/khugepaged/defrag"):
        r.read(rel)
    for name_ in ("online", "possible", "present", "smt/active", "smt/control", "cpufreq/boost"):
        r.read(f"{CPU}/{name_}")
    for cpu in r.glob(f"{CPU}/cpu[0-9]*"):
        for f in CPU_FILES:
            r.read(f"{cpu}/{f}")
        for st in r.glob(f"{cpu}/cpuidle/state[0-9]*"):
            for f in IDLE_FILES:
                r.read(f"{st}/{f}")
    for name_ in ("online", "possible", "has_cpu", "has_memory"):
        r.read(f"{NODE}/{name_}")
    for node in r.glob(f"{NODE}/node[0-9]*"):
        for f in ("cpulist", "meminfo", "distance"):
            r.read(f"{node}/{f}")
    devices = _pci_devices(r)
    drivers: list[str] = []
    for bdf in sorted(devices):
        d = f"sys/bus/pci/devices/{bdf}"
        for f in PCI_FILES:
            r.read(f"{d}/{f}")
        link = os.path.join(r.root, d, "driver")
        if os.path.islink(link):  # which driver is bound: the link's last part
            drivers.append(f"{bdf} {devices[bdf]} {os.path.basename(os.readlink(link))}")
        else:
            drivers.append(f"{bdf} {devices[bdf]} -")
    for net in r.glob("sys/class/net/*"):
        if net.endswith("/lo"):
            continue
        for f in NET_FILES:
            r.read(f"{net}/{f}")
    for extra in (
        "sys/module/amdgpu/parameters/ras_enable",
        "sys/class/kfd/kfd/topology/generation_id",
    ):
        r.read(extra)
    head = "# bdf kind driver (- = none bound)\n"
    derived = {PCI_DRIVERS: head + "".join(f"{x}\n" for x in drivers)}
    log, how = kernel_log(root)
    not_read = {f"node/{k}": v for k, v in r.not_read.items()}
    if log is None:
        not_read[KERNEL_LOG] = how
    else:
        derived[KERNEL_LOG] = log
    return {
        "host": name or socket.gethostname(),
        "root": r.root,
        "files": r.files,
        "derived": derived,
        "not_read": not_read,
        "kernel_log_source": how,
    }
