"""Execution nodes for the lab: a user of its own and a real sshd on loopback per executor.

An executor of a real site is another machine with ansible-runner installed, reached over
SSH. Here each is a local user (`useradd`, root only) with its own home, reached through its
own sshd on 127.0.0.1 (the simulated nodes' sshd settings, agent/sim/fleet.py), so the
executor's files, processes and credentials are its own: it cannot read the controller's
state folder or keys. `start` writes an ssh_config naming each executor (for
TUNER_EXECUTOR_SSH_CONFIG) and a client key of its own; `stop` ends the sshds and every
process of the executors' users (the worker, its Ansible, its ssh masters).

Used by tests/test_executors.py and bench/executors.py.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import Failed
from agent.sim.fleet import _free_ports, _port_open, _run, find_sshd


@dataclass
class ExecLab:
    base: Path
    ssh_config: Path
    names: list[str]
    users: dict[str, str]  # executor name -> its user
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def uid(self, name: str) -> int:
        return pwd.getpwnam(self.users[name]).pw_uid

    def processes(self, name: str) -> list[int]:
        """The executor user's processes (its sessions, worker, Ansible, ssh)."""
        uid, out = self.uid(name), []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                with contextlib.suppress(OSError):
                    if d.stat().st_uid == uid:
                        out.append(int(d.name))
        return out

    def kill(self, name: str) -> None:
        """The executor is lost: its sshd and every process of its user, at once."""
        pids = [self.pids[name], *self.processes(name)] if name in self.pids else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pids.pop(name, None)

    def stop(self) -> None:
        for name in list(self.users):
            self.kill(name)


def _ensure_user(user: str) -> Path:
    try:
        pwd.getpwnam(user)
    except KeyError:
        _run(["useradd", "--create-home", "--shell", "/bin/sh", user])
    # no password, but not a locked account ("!"): sshd without PAM refuses locked ones
    _run(["usermod", "--password", "*", user])
    return Path(pwd.getpwnam(user).pw_dir)


def start(base: Path, users: list[str]) -> ExecLab:
    """One executor per user (created if missing): exec1 -> users[0], exec2 -> users[1]..."""
    if os.geteuid() != 0:
        raise Failed("the executor lab makes users of its own: run it as root")
    sshd = find_sshd()
    if sshd is None:
        raise Failed("sshd not found (Debian: apt-get install openssh-server)")
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)
    key, host_key = base / "id_ed25519", base / "host_key"
    for k, comment in ((key, "tuner-exec-client"), (host_key, "tuner-exec-host")):
        if not k.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(k)])
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    names = [f"exec{i}" for i in range(1, len(users) + 1)]
    lab = ExecLab(base, base / "ssh_config", names, dict(zip(names, users, strict=True)))
    host_pub = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    known, config = [], []
    for name, port in zip(names, _free_ports(len(names)), strict=True):
        user = lab.users[name]
        home = _ensure_user(user)
        pw = pwd.getpwnam(user)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        for p in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        cfg = base / f"sshd-{name}.conf"
        cfg.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {base / f'sshd-{name}.pid'}",
                    f"AllowUsers {user}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AllowAgentForwarding yes",
                    "UsePAM no",
                    "MaxStartups 64:30:128",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        r = subprocess.run(
            [sshd, "-f", str(cfg), "-E", str(base / f"sshd-{name}.log")],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise Failed(f"sshd for executor {name} did not start: {r.stderr.strip()}")
        lab.ports[name] = port
        known.append(f"[127.0.0.1]:{port} {host_pub}")
        config += [
            f"Host {name}",
            "  HostName 127.0.0.1",
            f"  Port {port}",
            f"  User {user}",
            f"  IdentityFile {key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {base / 'known_hosts'}",
            "",
        ]
    (base / "known_hosts").write_text("\n".join(known) + "\n")
    lab.ssh_config.write_text("\n".join(config))
    deadline = time.monotonic() + 10
    for name in names:
        pidfile = base / f"sshd-{name}.pid"
        while not (pidfile.is_file() and _port_open(lab.ports[name])):
            if time.monotonic() > deadline:
                raise Failed(f"sshd for executor {name} did not come up")
            time.sleep(0.02)
        lab.pids[name] = int(pidfile.read_text().strip())
    return lab


def _usable_by_others(path: Path) -> bool:
    """Every folder up to `path` is searchable, and `path` readable, by any user."""
    p = path.resolve()
    for d in [p, *p.parents]:
        mode = d.stat().st_mode
        if d != p and not mode & 0o001:
            return False
    return bool(p.stat().st_mode & 0o004)


def executor_runner(cache: Path = Path("/var/tmp/tuner-executor-venv")) -> str:
    """ansible-runner for the executors' users: the controller's own when they can run it,
    else a virtualenv of the same ansible-core and ansible-runner versions, made once."""
    import sys
    from importlib.metadata import version

    bindir = Path(sys.executable).parent
    mine = bindir / "ansible-runner"
    if mine.is_file() and _usable_by_others(Path(sys.executable)) and _usable_by_others(mine):
        return str(mine)
    want = f"ansible-core=={version('ansible-core')} ansible-runner=={version('ansible-runner')}"
    stamp = cache / ".tuner-versions"
    runner = cache / "bin" / "ansible-runner"
    if not (stamp.is_file() and stamp.read_text() == want and runner.is_file()):
        import shutil

        shutil.rmtree(cache, ignore_errors=True)
        base_py = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
        _run([base_py, "-m", "venv", str(cache)])
        _run([str(cache / "bin" / "pip"), "install", "-q", *want.split()])
        stamp.write_text(want)
    return str(runner)
