"""The simulated fleet: N node trees, one real sshd per node on loopback, an inventory.

Layout of the state folder (`tuner sim up --state-dir DIR`, default $TUNER_STATE_DIR or
~/.local/state/tuner):

    sim/fleet.json            what `sim up` made (nodes, ports, pids)
    sim/inventory.yml         the Ansible inventory for the fleet
    sim/ssh/                  the fleet's client key, host key and known_hosts
    sim/nodes/NAME/root/      the node's `/` (tuner_root)
    sim/nodes/NAME/sshd_config, sshd.pid, sshd.log

Node runtime (`--runtime`): `bare` (the default) gives nodes what a freshly imaged node has,
the machine's own `/usr/bin/python3` without tuner's dependencies and ROCm's amdsmi package
source under /opt/rocm/share/amd_smi, so `tuner provision` really builds the node's
/opt/tuner/venv; `controller` is the lab shortcut the test fixtures use: nodes borrow the
controller's Python (tuner's dependencies already there), no provisioning needed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from agent.errors import BadInput, Failed
from agent.sim import nicsim
from agent.sim.nodetree import Topology, build_node

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
Connection = Literal["ssh", "local"]
Runtime = Literal["bare", "controller"]
RUNTIMES = ("bare", "controller")
Phase = Callable[[str], None]  # progress: told what `up` / `down` is doing now


class SimNode(BaseModel):
    name: str
    root: str
    group: str
    port: int | None = None
    sshd_pid: int | None = None
    bmc_url: str | None = None  # the node's simulated BMC (agent/sim/bmcfleet.py)
    bmc_vendor: str | None = None
    bmc_password_file: str | None = None
    bundle: str | None = None  # the capture bundle the node was built from (--from-capture)
    defaults: list[str] = []  # what that bundle lacked: the simulator's defaults used


class SimFleet(BaseModel):
    state_dir: str
    scenario: str = "healthy"
    runtime: Runtime = "bare"
    inventory: str
    connection: Connection
    nodes: list[SimNode]
    bmc_pid: int | None = None  # the BMC simulator process (one for all nodes)
    bmc_username: str | None = None
    bmc_ca: str | None = None


def sim_dir(state_dir: Path) -> Path:
    return state_dir / "sim"


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def load(state_dir: Path) -> SimFleet | None:
    """The fleet record; a damaged one is bad input naming the file (`sim down` still
    works: it finds the fleet's processes without the record)."""
    f = sim_dir(state_dir) / "fleet.json"
    if not f.is_file():
        return None
    try:
        return SimFleet.model_validate_json(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(
            "the simulated fleet's record is damaged; `tuner sim down` removes the fleet "
            f"({str(e).splitlines()[0][:200]})",
            file=str(f),
        ) from e


def _fleet_processes(base: Path) -> list[int]:
    """This user's processes that belong to the fleet in `base`: its sshds (started with a
    config under base/nodes/) and its BMC simulator (a config under base/bmc/)."""
    nodes = (str(base / "nodes") + "/").encode()
    bmc = str(base / "bmc" / "config.json").encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if d.stat().st_uid != os.getuid():
                continue
            cmd = (d / "cmdline").read_bytes()  # sshd shows its arguments in its title
        except OSError:
            continue
        if (nodes in cmd and b"sshd_config" in cmd) or bmc in cmd:
            found.append(int(d.name))
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        for p in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p, os.WNOHANG)
        time.sleep(0.05)


def up(
    state_dir: Path,
    nodes: int | None,
    connection: str = "auto",
    topology: Topology | None = None,
    scenario: str = "healthy",
    bmc_vendor: str = "none",
    bmc_tls: bool = True,
    bmc_reset_delay: float = 5.0,
    progress: Phase | None = None,
    runtime: str = "bare",
    captures: list[Any] | None = None,
    nic_model: str = "pollara-400",
) -> SimFleet:
    """`progress(text)`: called at each phase (and every tenth of the node trees).

    `captures`: checked bundles (agent/capture/bundle.py: read_bundle), one node each, named
    by its host (agent/sim/fromcapture.py); `nodes` and `scenario` do not apply then.
    `nic_model`: the scale-out NICs of every node (agent/sim/nicsim.py; not on nodes built
    from a capture, whose tree is the captured one)."""
    from agent.sim import bmcfleet
    from agent.sim.scenarios import SCENARIOS, install_gpus

    if captures:
        bmcfleet.check_vendor(bmc_vendor, captured=True)
        names = [b.host for b in captures]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BadInput(
                f"two bundles capture the same host {dup[0]!r}: one node each is needed",
                field="--from-capture",
            )
        if nodes is not None and nodes != len(captures):
            raise BadInput(
                f"--nodes {nodes} but {len(captures)} bundles: each bundle is one node",
                field="--nodes",
            )
        nodes = len(captures)
        scenario = "captured"
    else:
        bmcfleet.check_vendor(bmc_vendor)

    if not captures and scenario not in SCENARIOS:
        raise BadInput(
            f"unknown scenario {scenario!r} (known: {', '.join(sorted(SCENARIOS))})",
            field="--scenario",
        )
    scen = SCENARIOS.get(scenario, SCENARIOS["healthy"])
    nodes = scen.nodes if nodes is None else nodes
    if nodes < 1 or nodes > 2048:
        raise BadInput(f"--nodes must be from 1 to 2048, got {nodes}", field="--nodes")
    if connection not in ("auto", "ssh", "local"):
        raise BadInput("--connection must be auto, ssh or local", field="--connection")
    if runtime not in RUNTIMES:
        raise BadInput("--runtime must be bare or controller", field="--runtime")
    if nic_model not in nicsim.MODELS:
        raise BadInput(
            f"--nic-model must be one of {', '.join(nicsim.MODELS)}, got {nic_model!r}",
            field="--nic-model",
        )
    base = sim_dir(state_dir)
    if (base / "fleet.json").exists() or base.is_symlink():
        raise BadInput(
            f"a simulated fleet is already up in {base}; run `tuner sim down` first",
            field="--state-dir",
        )
    _kill(_fleet_processes(base))  # leftovers of a half-made fleet
    sshd = find_sshd()
    if connection == "ssh" and not sshd:
        raise BadInput(
            "sshd not found: install OpenSSH's server (Debian: apt-get install openssh-server) "
            "or use --connection local",
            field="--connection",
        )
    conn: Connection = (
        "ssh" if (connection == "ssh" or (connection == "auto" and sshd)) else "local"
    )
    if old := _old_trash(state_dir):
        _delete_detached(old)
    if base.exists():
        remove_later(base)  # leftovers of a half-made fleet (no fleet.json)
    base.mkdir(parents=True)
    say = progress or (lambda text: None)
    width = max(2, len(str(nodes)))
    sim_nodes = []
    topo = topology or Topology()
    say(
        f"building {nodes} node trees from capture bundles"
        if captures
        else f"building {nodes} node trees ({topo.logical_cpus} CPUs each)"
    )
    step = max(1, nodes // 10)
    lib: Path | None = None
    if captures:
        from agent.sim.gpu.build import BuildError, build_library

        try:
            lib = build_library(base / "lib")
        except BuildError as e:
            raise Failed(f"cannot build the simulated GPU library: {e}") from e
    for i in range(1, nodes + 1):
        name = captures[i - 1].host if captures else f"node{i:0{width}d}"
        root = base / "nodes" / name / "root"
        defaults: list[str] = []
        if captures:
            from agent.sim.fromcapture import build

            assert lib is not None
            try:
                defaults = build(root, captures[i - 1], lib)
            except ValueError as e:
                shutil.rmtree(base, ignore_errors=True)
                raise BadInput(str(e), file=captures[i - 1].path) from None
        else:
            build_node(root, name, topo)
        sim_nodes.append(
            SimNode(
                name=name,
                root=str(root),
                group="head" if i == 1 else "workers",
                bundle=captures[i - 1].path if captures else None,
                defaults=defaults,
            )
        )
        if nodes > 1 and (i % step == 0 or i == nodes):
            say(f"node trees: {i}/{nodes}")
    fleet = SimFleet(
        state_dir=str(state_dir),
        scenario=scenario,
        runtime=runtime,  # type: ignore[arg-type]
        inventory=str(base / "inventory.yml"),
        connection=conn,
        nodes=sim_nodes,
    )
    try:
        if not captures:
            say(f"GPUs: scenario {scenario}")
            install_gpus(
                base, [Path(n.root) for n in sim_nodes], scen, [n.name for n in sim_nodes]
            )
            say(f"NICs: {nic_model}, a port per GPU")
            for n in sim_nodes:
                nicsim.install(Path(n.root), nic_model)
        say("ROCm: version files, amdsmi package source in /opt/rocm/share/amd_smi")
        _install_rocm([Path(n.root) for n in sim_nodes], captures)
        if conn == "ssh":
            assert sshd is not None
            say(f"starting {nodes} sshd")
            _start_sshds(base, fleet, sshd)
        if bmc_vendor != "none":
            say(f"starting {nodes} BMCs ({bmc_vendor})")
        bmcs = bmcfleet.start(
            base,
            [(n.name, n.root) for n in fleet.nodes],
            bmc_vendor,
            bmc_tls,
            bmc_reset_delay,
            captures,
        )
        if bmcs is not None:  # the BMC fleet's records, stored in the simulated fleet's
            fleet.bmc_pid, fleet.bmc_username, fleet.bmc_ca = bmcs.pid, bmcs.username, bmcs.ca
            for node in fleet.nodes:
                b = bmcs.nodes.get(node.name)  # "captured": only nodes whose bundle has one
                if b is not None:
                    node.bmc_url, node.bmc_vendor, node.bmc_password_file = (
                        b.url,
                        b.vendor,
                        b.password_file,
                    )
        _write_inventory(base, fleet)
    except BaseException:
        _stop_sshds(fleet)
        bmcfleet.stop(fleet.bmc_pid)
        shutil.rmtree(base, ignore_errors=True)
        raise
    (base / "fleet.json").write_text(fleet.model_dump_json(indent=1))
    return fleet


def down(state_dir: Path, progress: Phase | None = None) -> SimFleet | None:
    """Stop the fleet's processes, end tuner's SSH masters, remove the fleet's files; with a
    damaged record, its processes are found by their command lines (they name files under
    the fleet's folder)."""
    say = progress or (lambda text: None)
    base = sim_dir(state_dir)
    if old := _old_trash(state_dir):
        _delete_detached(old)
    try:
        fleet = load(state_dir)
    except BadInput:
        fleet = None
    say("ending SSH connection masters")
    end_ssh_masters(state_dir)
    if fleet is not None:
        say(f"stopping {len(fleet.nodes)} sshd")
        _stop_sshds(fleet)
        from agent.sim import bmcfleet

        if fleet.bmc_pid:
            say("stopping the BMCs")
        bmcfleet.stop(fleet.bmc_pid)
    if base.is_symlink():
        base.unlink()
        return fleet
    if base.exists():
        say(f"removing {base}")
        _kill(_fleet_processes(base))
        remove_later(base)
    return fleet


TRASH_PREFIX = ".sim-removing-"


def remove_later(base: Path) -> None:
    """Move the fleet's folder out of the way (one rename) and delete it in a detached
    process. Deleting a 64-node fleet is ~94,000 unlinks, each waiting on the disk: minutes
    on a loaded machine (docs/performance.md), and nothing needs to wait for them. A new
    fleet can start at once: its folder name is free. Leftovers of a deleter that did not
    finish (the machine went down) are removed by the next `sim up` / `sim down`."""
    trash = base.with_name(f"{TRASH_PREFIX}{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(base, trash)
    except OSError:
        shutil.rmtree(base)  # cannot move it (e.g. a mount point): delete it here
        return
    _delete_detached([trash])


# The deleter: each folder under an exclusive lock, so two deleters never work on one.
_DELETER = """import fcntl, os, shutil, sys
for p in sys.argv[1:]:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        continue
    shutil.rmtree(p, ignore_errors=True)
"""


def _delete_detached(paths: list[Path]) -> None:
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-c", _DELETER, *map(str, paths)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not ended with the terminal's process group
            close_fds=True,
        )


def _old_trash(state_dir: Path) -> list[Path]:
    """Folders earlier `sim down`s moved aside (a deleter still working on one skips it)."""
    out = []
    with contextlib.suppress(OSError):
        for e in os.scandir(state_dir):
            if e.name.startswith(TRASH_PREFIX) and e.is_dir(follow_symlinks=False):
                out.append(Path(e.path))
    return out


def end_ssh_masters(state_dir: Path) -> int:
    """End the SSH connection masters (ControlPersist) tuner's runs left for this state
    folder: else they, and the sshd sessions they hold, live on for minutes. `ssh -O exit`
    asks each master to quit (OpenSSH's ssh(1), "-O ctl_cmd")."""
    from agent.paths import control_path_dir

    d = control_path_dir(state_dir)
    ended = 0
    try:
        sockets = [
            e.path for e in os.scandir(d) if stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode)
        ]
    except OSError:
        return 0
    for path in sockets:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            r = subprocess.run(
                ["ssh", "-o", f"ControlPath={path}", "-O", "exit", "tuner-sim"],
                capture_output=True,
                timeout=10,
            )
            ended += r.returncode == 0
        with contextlib.suppress(OSError):
            os.unlink(path)
    return ended


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Failed(f"{cmd[0]} failed: {r.stderr.strip()}")


def _start_sshds(base: Path, fleet: SimFleet, sshd: str) -> None:
    ssh = base / "ssh"
    ssh.mkdir(mode=0o700)
    for key, comment in (("id_ed25519", "tuner-sim"), ("host_key", "tuner-sim-host")):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(ssh / key)])
    shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    host_pub = (ssh / "host_key.pub").read_text().split()[:2]
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    ports = _free_ports(len(fleet.nodes))
    known = []
    for node, port in zip(fleet.nodes, ports, strict=True):
        d = Path(node.root).parent
        cfg = d / "sshd_config"
        cfg.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {ssh / 'host_key'}",
                    f"PidFile {d / 'sshd.pid'}",
                    f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "MaxStartups 256:30:512",
                    "MaxSessions 256",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        r = subprocess.run(
            [sshd, "-f", str(cfg), "-E", str(d / "sshd.log")], capture_output=True, text=True
        )
        if r.returncode != 0:
            raise Failed(f"sshd for {node.name} did not start: {r.stderr.strip()}")
        node.port = port
        known.append(f"[127.0.0.1]:{port} {' '.join(host_pub)}")
    (ssh / "known_hosts").write_text("\n".join(known) + "\n")
    deadline = time.monotonic() + 10
    for node in fleet.nodes:
        pidfile = Path(node.root).parent / "sshd.pid"
        while True:
            if pidfile.is_file() and pidfile.read_text().strip() and _port_open(node.port):
                node.sshd_pid = int(pidfile.read_text().strip())
                break
            if time.monotonic() > deadline:
                raise Failed(f"sshd for {node.name} did not come up on port {node.port}")
            time.sleep(0.02)


def _port_open(port: int | None) -> bool:
    if port is None:
        return False
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_sshds(fleet: SimFleet) -> None:
    for node in fleet.nodes:
        if node.sshd_pid and _is_fleet_sshd(node.sshd_pid, Path(node.root).parent):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(node.sshd_pid, signal.SIGTERM)


def _is_fleet_sshd(pid: int, node_dir: Path) -> bool:
    """The pid is still this node's sshd (not a reused pid)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(node_dir / "sshd_config").encode() in cmd


def _install_rocm(roots: list[Path], captures: list[Any] | None = None) -> None:
    """Each node's /opt/rocm/.info/version, amdgpu version and share/amd_smi (agent/sim/rocm.py);
    the library version a scenario gives a node stays the library's (a half-way upgrade).
    A node built from a bundle keeps the versions the bundle shows."""
    from agent.sim.gpu.state import DriverInfo
    from agent.sim.rocm import DRIVER_RELPATH, ROCM_VERSION, VERSION_RELPATH, install_rocm

    for i, root in enumerate(roots):
        rocm, driver = ROCM_VERSION, DriverInfo().version
        if captures:
            b = captures[i]
            rocm = (b.text(f"node/{VERSION_RELPATH}") or "").strip() or rocm
            driver = (b.text(f"node/{DRIVER_RELPATH}") or "").strip() or driver
        install_rocm(root, rocm, driver)
        if captures:  # byte for byte as captured
            for rel in (VERSION_RELPATH, DRIVER_RELPATH):
                data = captures[i].files.get(f"node/{rel}")
                if data is not None:
                    (root / rel).write_bytes(data)


def _write_inventory(base: Path, fleet: SimFleet) -> None:
    common: dict[str, object] = {"tuner_sim": True}
    if fleet.runtime == "controller":
        # the lab shortcut: the controller's Python (tuner's dependencies) runs tuner's tasks
        common["ansible_python_interpreter"] = sys.executable
        common["tuner_python"] = sys.executable
    else:
        # a fresh node: the machine's own Python runs Ansible's modules; tuner's node-side
        # tasks need `tuner provision` first (tuner_root/opt/tuner/venv)
        common["ansible_python_interpreter"] = "/usr/bin/python3"
    if fleet.connection == "ssh":
        ssh = base / "ssh"
        common.update(
            {
                "ansible_host": "127.0.0.1",
                "ansible_user": getpass.getuser(),
                "ansible_ssh_private_key_file": str(ssh / "id_ed25519"),
                "ansible_ssh_common_args": " ".join(
                    [
                        "-o",
                        "UserKnownHostsFile=" + shlex.quote(str(ssh / "known_hosts")),
                        "-o",
                        "StrictHostKeyChecking=yes",
                        "-o",
                        "IdentitiesOnly=yes",
                    ]
                ),
            }
        )
    else:
        common["ansible_connection"] = "local"
    groups: dict[str, dict[str, dict[str, object]]] = {"head": {}, "workers": {}}
    for node in fleet.nodes:
        from agent.sim import bmcfleet

        hv: dict[str, object] = {
            "tuner_root": node.root,
            **bmcfleet.host_vars(
                node.bmc_url, fleet.bmc_username, node.bmc_password_file, fleet.bmc_ca
            ),
        }
        if node.port:
            hv["ansible_port"] = node.port
        groups[node.group][node.name] = hv
    inv = {
        "all": {
            "vars": common,
            "children": {g: {"hosts": hosts} for g, hosts in groups.items() if hosts},
        }
    }
    header = "# Written by `tuner sim up`: the simulated fleet. Removed by `tuner sim down`.\n"
    Path(fleet.inventory).write_text(header + yaml.safe_dump(inv, sort_keys=False))
