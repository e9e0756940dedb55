"""The simulated fleet's BMCs: one background `python -m agent.sim.bmc` for all nodes.

Layout under the fleet's folder (sim/):

    bmc/config.json           the simulator's config (one entry per node)
    bmc/secrets/NAME.pw       each node's BMC password (0600; the folder 0700)
    bmc/tls/                  the self-signed certificate the BMCs serve (bmc-cert.pem is
                              also the CA bundle a client trusts)
    bmc/logs/NAME.jsonl       each BMC's request log (no bodies, no credentials)
    bmc/urls.txt, bmc/bmc.log the simulator's output and its log

This module knows nothing of the simulated fleet (agent/sim/fleet.py): `start` takes the
nodes' names and roots and returns records (`BmcFleet`), which the fleet stores; `stop`,
`host_vars` and `describe` read those records back. No import circle, no writes into the
fleet's objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.errors import BadInput, Failed

VENDORS = ("dell", "hpe", "supermicro", "amd")
CHOICES = (*VENDORS, "mixed", "none")
USERNAME = "admin"


def check_vendor(vendor: str) -> None:
    if vendor not in CHOICES:
        raise BadInput(f"must be one of {', '.join(CHOICES)}, got {vendor!r}", field="--bmc-vendor")


def vendor_for(index: int, choice: str) -> str:
    return VENDORS[index % len(VENDORS)] if choice == "mixed" else choice


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


@dataclass
class BmcNode:
    """One node's simulated BMC."""

    url: str
    vendor: str
    password_file: str


@dataclass
class BmcFleet:
    """What `start` made: the simulator's process, the shared user and CA, each node's BMC."""

    pid: int
    username: str
    ca: str | None = None
    nodes: dict[str, BmcNode] = field(default_factory=dict)


def start(
    base: Path, nodes_in: list[tuple[str, str]], vendor: str, tls: bool, reset_delay: float
) -> BmcFleet | None:
    """Start the BMC simulator for every node (`(name, node root)`) -> the records to store
    (None: `vendor` none, no BMCs)."""
    check_vendor(vendor)
    if vendor == "none":
        return None
    d = base / "bmc"
    (d / "logs").mkdir(parents=True)
    sec = d / "secrets"
    sec.mkdir(mode=0o700)
    tls_cfg: Any = False
    ca: str | None = None
    if tls:
        from agent.sim.bmc.server import generate_self_signed

        cert, key = generate_self_signed(d / "tls")
        tls_cfg = {"cert": str(cert), "key": str(key)}
        ca = str(cert)
    nodes = []
    made: dict[str, tuple[str, str]] = {}  # name -> (vendor, password file)
    for i, (name, root) in enumerate(nodes_in):
        pw = sec / f"{name}.pw"
        _write_secret(pw, secrets.token_urlsafe(18))
        made[name] = (vendor_for(i, vendor), str(pw))
        nodes.append(
            {
                "name": name,
                "port": 0,
                "vendor": made[name][0],
                "username": USERNAME,
                "password_file": str(pw),
                "tls": tls_cfg,
                "node_root": root,
                "reset_delay": reset_delay,
                "request_log": str(d / "logs" / f"{name}.jsonl"),
            }
        )
    cfg = d / "config.json"
    cfg.write_text(json.dumps({"nodes": nodes}, indent=1))
    urls = d / "urls.txt"
    with open(urls, "w") as out, open(d / "bmc.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.sim.bmc", "--config", str(cfg), "--log-level", "WARNING"],
            stdout=out,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        lines = [ln.split() for ln in urls.read_text().splitlines() if ln.strip()]
        if len(lines) >= len(nodes):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc.pid)
            tail = (d / "bmc.log").read_text()[-500:]
            raise Failed(f"the simulated BMCs did not start: {tail.strip()}")
        time.sleep(0.05)
    by_name = {parts[0]: parts[1] for parts in lines if len(parts) == 2}
    return BmcFleet(
        pid=proc.pid,
        username=USERNAME,
        ca=ca,
        nodes={
            n: BmcNode(url=by_name[n], vendor=v, password_file=pw) for n, (v, pw) in made.items()
        },
    )


def stop(pid: int | None) -> None:
    """Stop the BMC simulator whose process this is (if it still is the simulator)."""
    if not pid or not _is_sim_bmc(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _is_sim_bmc(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


def _is_sim_bmc(pid: int) -> bool:
    """The pid is still the simulator (not a reused pid, not a zombie)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"agent.sim.bmc" in cmd and ") Z " not in stat


def host_vars(
    url: str | None, username: str | None, password_file: str | None, ca: str | None
) -> dict[str, object]:
    """The inventory variables of a node's simulated BMC (none without one)."""
    if not url:
        return {}
    hv: dict[str, object] = {
        "bmc_url": url,
        "bmc_username": username,
        "bmc_password_file": password_file,
    }
    if ca:
        hv["bmc_ca_bundle"] = ca
    return hv


class _Node(Protocol):
    name: str
    bmc_url: str | None
    bmc_vendor: str | None
    bmc_password_file: str | None


class _Fleet(Protocol):
    """What `describe` reads of a fleet that stored `start`'s records (read only)."""

    bmc_username: str | None
    bmc_ca: str | None

    @property
    def nodes(self) -> Sequence[_Node]: ...


def describe(fleet: _Fleet, name: str) -> dict[str, object] | None:
    """A node's simulated BMC for `tuner sim up --json` (None without one)."""
    node = next(n for n in fleet.nodes if n.name == name)
    if not node.bmc_url:
        return None
    return {
        "url": node.bmc_url,
        "username": fleet.bmc_username,
        "password_file": node.bmc_password_file,
        "vendor": node.bmc_vendor,
        "ca_bundle": fleet.bmc_ca,
    }
