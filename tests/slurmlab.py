"""A real Slurm cluster on loopback for the lab fleet: Debian's slurmctld and one slurmd per
simulated node (`slurmd -N NAME`, each on its own port), auth/none (loopback only), GPUs as
gres with one device file per GPU. Started and stopped by the tests (by PID).

What is not like a production cluster: every slurmd runs on this machine without a mount
namespace of its own (its GPU device files are character devices under the lab folder, not
the simulated node's /dev/dri), no cgroups (proctrack/linuxproc, task/none), no accounting.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def available() -> bool:
    return all(shutil.which(t) for t in ("slurmctld", "slurmd", "sbatch", "sinfo", "scontrol"))


def _ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _device(path: Path) -> None:
    """A character device file standing for one GPU (major/minor of /dev/null); a plain file
    when mknod is not allowed (slurmd logs it and carries on)."""
    try:
        os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
    except OSError:
        path.touch()


@contextmanager
def slurm_lab(
    d: Path, nodes: list[str], gpus: int = 8, extra: list[str] | None = None
) -> Iterator[dict[str, str]]:
    """The cluster; yields the environment for Slurm's tools (SLURM_CONF). `extra`: more
    slurm.conf lines (e.g. HealthCheckProgram)."""
    d.mkdir(parents=True, exist_ok=True)
    ctld, *node_ports = _ports(1 + len(nodes))
    for sub in ("state", "log", "dev"):
        (d / sub).mkdir(exist_ok=True)
    host = socket.gethostname()
    conf = [
        "ClusterName=tunerlab",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={ctld}",
        "AuthType=auth/none",
        "CredType=cred/none",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={d}/state",
        f"SlurmdSpoolDir={d}/spool/%n",
        f"SlurmctldPidFile={d}/slurmctld.pid",
        f"SlurmdPidFile={d}/slurmd-%n.pid",
        f"SlurmctldLogFile={d}/log/slurmctld.log",
        f"SlurmdLogFile={d}/log/slurmd-%n.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SwitchType=switch/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SelectType=select/cons_tres",
        "GresTypes=gpu",
        "MinJobAge=600",
        *(extra or []),
    ]
    gres = []
    for name, port in zip(nodes, node_ports, strict=True):
        conf.append(
            f"NodeName={name} NodeAddr=127.0.0.1 NodeHostname={host} Port={port} CPUs=2 "
            f"Gres=gpu:{gpus} State=UNKNOWN"
        )
        (d / "spool" / name).mkdir(parents=True, exist_ok=True)
        (d / "dev" / name).mkdir(exist_ok=True)
        for k in range(gpus):
            _device(d / "dev" / name / f"renderD{128 + k}")
        gres.append(f"NodeName={name} Name=gpu File={d}/dev/{name}/renderD[128-{127 + gpus}]")
    conf.append("PartitionName=lab Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
    (d / "slurm.conf").write_text("\n".join(conf) + "\n")
    (d / "gres.conf").write_text("\n".join(gres) + "\n")
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
    procs = [
        subprocess.Popen(
            ["slurmctld", "-D", "-i"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(d / "log" / "ctld.err", "w"),  # noqa: SIM115
        )
    ]
    try:
        time.sleep(1)
        for name in nodes:
            procs.append(
                subprocess.Popen(
                    ["slurmd", "-D", "-N", name],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%N %T"], env=env, capture_output=True, text=True
            )
            states = dict(line.split() for line in r.stdout.splitlines() if line.strip())
            if len(states) == len(nodes) and all(s == "idle" for s in states.values()):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the lab's slurmd did not register: {r.stdout} {r.stderr}")
        yield {"SLURM_CONF": str(d / "slurm.conf")}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
