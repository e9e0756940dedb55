"""Simulated node trees: the /proc and /sys files of a dual-socket EPYC 9575F node.

A node tree is a folder that stands for a node's `/`. tuner's playbooks run against it with
`tuner_root` set to that folder. Kernel attributes are plain files holding what the kernel
would show (THP files in the bracket format, one value per cpufreq/cpuidle file), with the
values a freshly booted Debian 12 has (`numa_balancing` 1, `nmi_watchdog` 1,
`randomize_va_space` 2, THP `madvise`, governor `schedutil`, every idle state enabled).

What BIOS decides is part of the tree: NUMA nodes follow NPS (NPS x sockets nodes) and the
logical CPUs follow SMT (256 with SMT on, 128 off). `reboot` brings the kernel files back to
their boot values for a topology (writing only what differs) and then replays the node's
sysctl.d and tmpfiles.d drop-ins, as systemd-sysctl and systemd-tmpfiles do at boot, so
persistence can be tested.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

GOVERNORS = "conservative ondemand userspace powersave performance schedutil"
IDLE_STATES = (  # name, desc, latency (us), residency (us)
    ("POLL", "CPUIDLE CORE POLL IDLE", 0, 0),
    ("C1", "ACPI FFH MWAIT 0x0", 1, 2),
    ("C2", "ACPI IOPORT 0x814", 400, 800),
)
KERNEL_DEFAULTS = {
    "kernel/numa_balancing": "1",
    "kernel/nmi_watchdog": "1",
    "kernel/randomize_va_space": "2",
    "kernel/sched_autogroup_enabled": "1",
    "kernel/watchdog_thresh": "10",
    "vm/swappiness": "60",
    "vm/zone_reclaim_mode": "0",
    "vm/max_map_count": "65530",
}
TOPOLOGY_FILE = "var/lib/tuner-sim/topology.json"


@dataclass
class Topology:
    sockets: int = 2
    cores_per_socket: int = 64
    smt: bool = True
    nps: int = 1
    mem_gib_per_socket: int = 768
    cpu_model: str = "AMD EPYC 9575F 64-Core Processor"

    @property
    def cores(self) -> int:
        return self.sockets * self.cores_per_socket

    @property
    def logical_cpus(self) -> int:
        return self.cores * (2 if self.smt else 1)

    @property
    def numa_nodes(self) -> int:
        return self.sockets * self.nps if self.nps else 1  # NPS0: one node for the system


def _w(path: Path, content: str) -> None:
    path.write_text(content if content.endswith("\n") else content + "\n")


def _ranges(ids: list[int]) -> str:
    """[0,1,2,5] -> '0-2,5' as the kernel prints cpu lists."""
    out: list[str] = []
    ids = sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def _cpu_map(t: Topology) -> dict[int, tuple[int, int, int]]:
    """logical cpu -> (socket, core id, numa node). Thread 1 of core c is cpu c + cores."""
    out: dict[int, tuple[int, int, int]] = {}
    per_node = t.cores_per_socket // max(t.nps, 1)
    for thread in range(2 if t.smt else 1):
        for core in range(t.cores):
            socket = core // t.cores_per_socket
            local = core % t.cores_per_socket
            node = socket * t.nps + local // per_node if t.nps else 0
            out[core + thread * t.cores] = (socket, local, node)
    return out


KERNEL_TREES = ("proc/sys", "sys/kernel/mm/transparent_hugepage", "sys/devices/system")

# /proc/cpuinfo of an EPYC 9575F (Zen 5 "Turin": family 26, model 2, stepping 1; flags,
# BogoMIPS and address sizes as lscpu shows them on a dual 9575F MI355X node in a public vLLM
# issue; 1 MiB L2 per core). Other models keep these fields and show their own name.
CPU_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl "
    "nonstop_tsc cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 pcid "
    "sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic "
    "cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core "
    "perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 invpcid_single hw_pstate ssbd mba "
    "ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid cqm rdt_a "
    "avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw "
    "avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local "
    "avx_vnni avx512_bf16 clzero irperf xsaveerptr rdpru wbnoinvd amd_ppin cppc arat npt lbrv "
    "svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold "
    "avic v_vmsave_vmload vgif v_spec_ctrl avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes "
    "vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid bus_lock_detect movdiri "
    "movdir64b overflow_recov succor smca fsrm avx512_vp2intersect flush_l1d"
)
# Part of the installed memory the firmware and kernel keep (MemTotal is below it).
MEM_RESERVED = 0.015


def cpuinfo(t: Topology) -> str:
    """/proc/cpuinfo: one block per logical CPU, as Linux's show_cpuinfo prints it on x86."""
    blocks = []
    for cpu, (socket, core, _node) in sorted(_cpu_map(t).items()):
        thread = cpu // t.cores
        apic = (socket * t.cores_per_socket + core) * (2 if t.smt else 1) + thread
        blocks.append(
            f"processor\t: {cpu}\n"
            "vendor_id\t: AuthenticAMD\n"
            "cpu family\t: 26\n"
            "model\t\t: 2\n"
            f"model name\t: {t.cpu_model}\n"
            "stepping\t: 1\n"
            "microcode\t: 0xb002116\n"
            "cpu MHz\t\t: 3300.000\n"
            "cache size\t: 1024 KB\n"
            f"physical id\t: {socket}\n"
            f"siblings\t: {t.cores_per_socket * (2 if t.smt else 1)}\n"
            f"core id\t\t: {core}\n"
            f"cpu cores\t: {t.cores_per_socket}\n"
            f"apicid\t\t: {apic}\n"
            f"initial apicid\t: {apic}\n"
            "fpu\t\t: yes\n"
            "fpu_exception\t: yes\n"
            "cpuid level\t: 16\n"
            "wp\t\t: yes\n"
            f"flags\t\t: {CPU_FLAGS}\n"
            "bugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass\n"
            "bogomips\t: 6600.41\n"
            "TLB size\t: 192 4K pages\n"
            "clflush size\t: 64\n"
            "cache_alignment\t: 64\n"
            "address sizes\t: 52 bits physical, 57 bits virtual\n"
            "power management: ts ttp tm hwpstate cpb eff_freq_ro [13] [14]\n"
        )
    return "\n".join(blocks)


def meminfo(t: Topology) -> str:
    """/proc/meminfo of an idle node: MemTotal is the installed memory less what the firmware
    and kernel keep; the fields psutil and free(1) read."""
    total = int(t.sockets * t.mem_gib_per_socket * 1024 * 1024 * (1 - MEM_RESERVED))
    free = total - 8 * 1024 * 1024
    rows = (
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free + 3 * 1024 * 1024),
        ("Buffers", 262144),
        ("Cached", 3 * 1024 * 1024),
        ("SwapCached", 0),
        ("Active", 2 * 1024 * 1024),
        ("Inactive", 2 * 1024 * 1024),
        ("Shmem", 65536),
        ("SReclaimable", 524288),
        ("SUnreclaim", 1048576),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("HugePages_Total", 0),
        ("HugePages_Free", 0),
        ("Hugepagesize", 2048),
    )
    out = []
    for name, kb in rows:
        unit = "" if name.startswith("HugePages_") else " kB"
        out.append(f"{name + ':':<16}{kb:>8}{unit}")
    return "\n".join(out)


def kernel_files(t: Topology) -> dict[str, str]:
    """Relative path -> content of every kernel file a node with topology `t` has at boot."""
    files: dict[str, str] = {}

    def w(rel: str, content: str) -> None:
        files[rel] = content if content.endswith("\n") else content + "\n"

    for rel, value in KERNEL_DEFAULTS.items():
        w(f"proc/sys/{rel}", value)
    thp = "sys/kernel/mm/transparent_hugepage"
    w(f"{thp}/enabled", "always [madvise] never")
    w(f"{thp}/defrag", "always defer defer+madvise [madvise] never")
    w(f"{thp}/use_zero_page", "1")
    w(f"{thp}/hpage_pmd_size", "2097152")

    cpu_root = "sys/devices/system/cpu"
    cpus = _cpu_map(t)
    n = t.logical_cpus
    for name in ("online", "possible", "present"):
        w(f"{cpu_root}/{name}", f"0-{n - 1}")
    w(f"{cpu_root}/smt/active", "1" if t.smt else "0")
    w(f"{cpu_root}/smt/control", "on" if t.smt else "notsupported")
    siblings: dict[tuple[int, int], list[int]] = {}
    for c, (socket, core, _node) in cpus.items():
        siblings.setdefault((socket, core), []).append(c)
    for cpu, (socket, core, _node) in cpus.items():
        d = f"{cpu_root}/cpu{cpu}"
        if cpu:
            w(f"{d}/online", "1")
        f = f"{d}/cpufreq"
        w(f"{f}/scaling_governor", "schedutil")
        w(f"{f}/scaling_available_governors", GOVERNORS)
        w(f"{f}/scaling_driver", "acpi-cpufreq")
        w(f"{f}/cpuinfo_min_freq", "1500000")
        w(f"{f}/cpuinfo_max_freq", "3300000")
        w(f"{f}/scaling_min_freq", "1500000")
        w(f"{f}/scaling_max_freq", "3300000")
        for i, (sname, desc, lat, res) in enumerate(IDLE_STATES):
            s = f"{d}/cpuidle/state{i}"
            w(f"{s}/name", sname)
            w(f"{s}/desc", desc)
            w(f"{s}/latency", str(lat))
            w(f"{s}/residency", str(res))
            w(f"{s}/disable", "0")
            w(f"{s}/usage", "0")
            w(f"{s}/time", "0")
        topo = f"{d}/topology"
        sib = _ranges(siblings[(socket, core)])
        w(f"{topo}/physical_package_id", str(socket))
        w(f"{topo}/core_id", str(core))
        w(f"{topo}/thread_siblings_list", sib)
        w(f"{topo}/core_cpus_list", sib)

    w("proc/cpuinfo", cpuinfo(t))
    w("proc/meminfo", meminfo(t))
    node_root = "sys/devices/system/node"
    nodes = list(range(t.numa_nodes))
    for name in ("online", "possible", "has_cpu", "has_memory", "has_normal_memory"):
        w(f"{node_root}/{name}", _ranges(nodes))
    per_socket = max(t.nps, 1)
    mem_kb = t.mem_gib_per_socket * 1024 * 1024 // per_socket
    for node in nodes:
        d = f"{node_root}/node{node}"
        w(f"{d}/cpulist", _ranges([c for c, v in cpus.items() if v[2] == node]))
        w(
            f"{d}/meminfo",
            f"Node {node} MemTotal:       {mem_kb} kB\n"
            f"Node {node} MemFree:        {mem_kb - 1048576} kB",
        )
        w(
            f"{d}/distance",
            " ".join(
                "10" if o == node else ("12" if o // per_socket == node // per_socket else "32")
                for o in nodes
            ),
        )
    return files


def build_kernel_files(root: Path, t: Topology) -> None:
    """Make /proc/sys, /sys/kernel/mm and /sys/devices/system as at boot.

    Only what differs is written: a file whose content is already the boot value is left
    alone, files and folders the topology does not have are removed (creating ~10,000 files
    is what made a simulated reboot take seconds). Symbolic links are removed, never followed.
    The walk costs one lstat per file and a file of the right size is read with raw os calls
    (Python's open() adds fstat, ioctl and lseek calls: 3x the system calls of a reboot).
    """
    files = kernel_files(t)
    dirs = {"."}
    for rel in files:
        parent = os.path.dirname(rel)
        while parent not in dirs:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    mode = 0o666 & ~_umask()
    present: dict[str, int] = {}  # regular files kept: their size
    seen_dirs: set[str] = set()
    roots = str(root)

    def walk(path: str, rel_dir: str) -> None:
        seen_dirs.add(rel_dir)
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            rel = f"{rel_dir}/{e.name}"
            if e.is_symlink():
                os.unlink(e.path)
            elif e.is_dir(follow_symlinks=False):
                if rel in dirs:
                    walk(e.path, rel)
                else:
                    shutil.rmtree(e.path)
            else:
                st = e.stat(follow_symlinks=False)
                if rel not in files or not stat.S_ISREG(st.st_mode):
                    os.unlink(e.path)
                    continue
                if stat.S_IMODE(st.st_mode) != mode:
                    os.chmod(e.path, mode)
                present[rel] = st.st_size

    for sub in KERNEL_TREES:
        base = os.path.join(roots, sub)
        if os.path.islink(base):
            os.unlink(base)
        elif os.path.isdir(base):
            walk(base, sub)
    for rel in sorted(dirs - {"."} - seen_dirs):
        os.makedirs(os.path.join(roots, rel), exist_ok=True)
    flags = os.O_RDONLY | os.O_NOFOLLOW
    for rel, content in files.items():
        p = os.path.join(roots, rel)
        data = content.encode()
        size = present.get(rel)
        if size is None and not rel.startswith(KERNEL_TREES):  # /proc/cpuinfo, meminfo
            try:
                st = os.lstat(p)
                size = st.st_size if stat.S_ISREG(st.st_mode) else None
            except FileNotFoundError:
                pass
        if size == len(data):
            fd = os.open(p, flags)
            try:
                same = os.read(fd, size + 1) == data
            finally:
                os.close(fd)
            if same:
                continue
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_node(root: Path, hostname: str, t: Topology | None = None) -> None:
    """Create a node tree: kernel files plus the /etc and /var a Debian 12 node has."""
    t = t or Topology()
    root.mkdir(parents=True, exist_ok=True)
    for d in ("etc/sysctl.d", "etc/tmpfiles.d", "etc/systemd/system", "var/lib", "run", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    _w(root / "etc/hostname", hostname)
    _w(
        root / "etc/os-release",
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"',
    )
    _w(
        root / "etc/sysctl.d/README.sysctl",
        "Files in /etc/sysctl.d/ are read by systemd-sysctl at boot.",
    )
    build_kernel_files(root, t)
    save_topology(root, t)
    build_boot(root, hostname)


# Debian 12's /etc/default/grub as the grub2 package installs it (debian/default/grub).
DEFAULT_GRUB = """\
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

# If your computer has multiple operating systems installed, then you
# probably want to run os-prober. However, if your computer is a host
# for guest OSes installed via LVM or raw disk devices, running
# os-prober can cause damage to those guest OSes as it mounts
# filesystems to look for things.
#GRUB_DISABLE_OS_PROBER=false

# Uncomment to enable BadRAM filtering, modify to suit your needs
# This works with Linux (no patch required) and with any kernel that obtains
# the memory map information from GRUB (GNU Mach, kernel of FreeBSD ...)
#GRUB_BADRAM="0x01234567,0xfefefefe,0x89abcdef,0xefefefef"

# Uncomment to disable graphical terminal
#GRUB_TERMINAL=console

# The resolution used on graphical terminal
# note that you can use only modes which your graphic card supports via VBE
# you can see them in real GRUB with the command `vbeinfo'
#GRUB_GFXMODE=640x480

# Uncomment if you don't want GRUB to pass "root=UUID=xxx" parameter to Linux
#GRUB_DISABLE_LINUX_UUID=true

# Uncomment to disable generation of recovery mode menu entries
#GRUB_DISABLE_RECOVERY="true"

# Uncomment to get a beep at grub start
#GRUB_INIT_TUNE="480 440 1"
"""


def build_boot(root: Path, hostname: str) -> None:
    """/etc/default/grub, the simulator's update-grub, /boot/grub/grub.cfg, /proc/cmdline."""
    import hashlib
    import uuid

    from agent.sim import grubsim

    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    _w(root / "etc/default/grub", DEFAULT_GRUB)
    tool = root / "usr/sbin/update-grub"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text(Path(grubsim.__file__).read_text())
    tool.chmod(0o755)
    seed = hashlib.sha256(hostname.encode()).digest()[:16]
    _w(root / "var/lib/tuner-sim/root-uuid", str(uuid.UUID(bytes=seed)))
    (root / "boot/grub").mkdir(parents=True, exist_ok=True)
    (root / "boot/grub/grub.cfg").write_text(grubsim.generate(str(root)))
    boot_cmdline(root)


def boot_cmdline(root: Path) -> None:
    """/proc/cmdline as GRUB boots the default entry of grub.cfg: BOOT_IMAGE=<image>, then the
    entry's `linux` arguments (split on blanks as GRUB does). No grub.cfg: left as it is."""
    cfg = root / "boot/grub/grub.cfg"
    if not cfg.is_file():
        return
    text = cfg.read_text()
    m = re.search(r'^set default="?(\d+)"?', text, re.M)
    want = int(m.group(1)) if m else 0
    entries = re.findall(r"^menuentry .*?\{(.*?)^\}", text, re.M | re.S)
    if not entries:
        return
    body = entries[want] if want < len(entries) else entries[0]
    for line in body.splitlines():
        words = line.split()
        if words and words[0] == "linux":
            (root / "proc").mkdir(exist_ok=True)
            _w(root / "proc/cmdline", " ".join([f"BOOT_IMAGE={words[1]}", *words[2:]]))
            return


def save_topology(root: Path, t: Topology) -> None:
    p = root / TOPOLOGY_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    _w(p, json.dumps(asdict(t), sort_keys=True))


def load_topology(root: Path) -> Topology:
    p = root / TOPOLOGY_FILE
    return Topology(**json.loads(p.read_text())) if p.is_file() else Topology()


def reboot(root: Path, t: Topology | None = None) -> None:
    """Boot the node again: kernel files at their defaults, then the persistent drop-ins."""
    t = t or load_topology(root)
    build_kernel_files(root, t)
    save_topology(root, t)
    _replay_sysctl_d(root)
    _replay_tmpfiles_d(root)
    boot_cmdline(root)
    from agent.sim import nicsim

    nicsim.boot(root)  # the NIC drivers load with their defaults


def apply_bios_topology(root: Path, nps: int, smt: bool) -> None:
    """What a BIOS reset shows in the OS: NUMA nodes follow NPS, logical CPUs follow SMT."""
    t = load_topology(root)
    t.nps, t.smt = nps, smt
    reboot(root, t)


def _inside(root: Path, host_path: str) -> Path | None:
    parts = [p for p in host_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return root.joinpath(*parts)


def _replay_sysctl_d(root: Path) -> None:
    d = root / "etc/sysctl.d"
    for conf in sorted(d.glob("*.conf")) if d.is_dir() else []:
        for line in conf.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, value = (x.strip() for x in line.split("=", 1))
            if not re.match(r"^[A-Za-z0-9_.-]+$", key):
                continue
            p = _inside(root, "/proc/sys/" + key.replace(".", "/"))
            if p is not None and p.is_file():
                _w(p, value)


def _replay_tmpfiles_d(root: Path) -> None:
    d = root / "etc/tmpfiles.d"
    for conf in sorted(d.glob("*.conf")) if d.is_dir() else []:
        for line in conf.read_text().splitlines():
            fields = line.split(None, 6)
            if len(fields) < 7 or fields[0] != "w":
                continue
            pattern, value = fields[1], fields[6]
            for p in _glob(root, pattern):
                if p.name in ("enabled", "defrag") and "transparent_hugepage" in str(p):
                    options = [w.strip("[]") for w in p.read_text().split()]
                    _w(p, " ".join(f"[{o}]" if o == value else o for o in options))
                else:
                    _w(p, value)


def _glob(root: Path, pattern: str) -> list[Path]:
    parts = [p for p in pattern.split("/") if p]
    if ".." in parts:
        return []
    found = [root]
    for part in parts:
        nxt: list[Path] = []
        for base in found:
            if any(c in part for c in "*?["):
                try:
                    names = os.listdir(base)
                except OSError:
                    continue
                nxt += [base / n for n in sorted(names) if fnmatch.fnmatchcase(n, part)]
            elif (base / part).exists():
                nxt.append(base / part)
        found = nxt
    return [p for p in found if p.is_file()]
