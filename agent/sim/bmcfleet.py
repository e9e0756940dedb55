"""The simulated fleet's BMCs: one background `python -m agent.sim.bmc` for all nodes.

Layout under the fleet's folder (sim/):

    bmc/config.json           the simulator's config (one entry per node)
    bmc/secrets/NAME.pw       each node's BMC password (0600; the folder 0700)
    bmc/tls/                  the self-signed certificate the BMCs serve (bmc-cert.pem is
                              also the CA bundle a client trusts)
    bmc/logs/NAME.jsonl       each BMC's request log (no bodies, no credentials)
    bmc/urls.txt, bmc/bmc.log the simulator's output and its log
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, Failed

if TYPE_CHECKING:
    from agent.sim.fleet import SimFleet

VENDORS = ("dell", "hpe", "supermicro", "amd")
CHOICES = (*VENDORS, "mixed", "none")
USERNAME = "admin"


def check_vendor(vendor: str, captured: bool = False) -> None:
    choices = (*CHOICES, "captured") if captured else CHOICES
    if vendor not in choices:
        raise BadInput(f"must be one of {', '.join(choices)}, got {vendor!r}", field="--bmc-vendor")


def vendor_of(docs: dict[str, Any]) -> str:
    """The personality for captured resources: the vendor the service root or a System names
    (Dell, HPE, Supermicro; AMI and others: amd, the AMI MegaRAC personality)."""
    text = " ".join(
        str(d.get(k) or "")
        for d in docs.values()
        for k in ("Vendor", "Manufacturer", "Product")
        if isinstance(d, dict)
    ).lower()
    for key, vendor in (
        ("dell", "dell"),
        ("hpe", "hpe"),
        ("hewlett", "hpe"),
        ("supermicro", "supermicro"),
    ):
        if key in text:
            return vendor
    return "amd"


def vendor_for(index: int, choice: str) -> str:
    return VENDORS[index % len(VENDORS)] if choice == "mixed" else choice


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def start(
    base: Path,
    fleet: SimFleet,
    vendor: str,
    tls: bool,
    reset_delay: float,
    captures: list[Any] | None = None,
) -> None:
    """Start the BMC simulator for every node and record URLs, pid and credentials.

    `captures` (one bundle per node, in order): a node whose bundle holds BMC resources
    gets a BMC built from them (agent/sim/bmc/captured.py), its personality the vendor they
    name unless `vendor` names one; `vendor` "captured": only nodes whose bundle has them."""
    check_vendor(vendor, captured=bool(captures))
    if vendor == "none":
        return
    cap_dirs: dict[str, Path] = {}
    cap_vendor: dict[str, str] = {}
    for node, b in zip(fleet.nodes, captures or [], strict=False):
        files = {k: v for k, v in b.files.items() if k.startswith("bmc/")}
        if not files:
            continue
        d = base / "bmc" / "captured" / node.name
        for rel, data in files.items():
            p = d / rel[len("bmc/") :]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        cap_dirs[node.name] = d
        from agent.sim.bmc.captured import load_docs

        try:
            cap_vendor[node.name] = vendor_of(load_docs(d))
        except ValueError as e:
            raise BadInput(str(e), file=b.path) from None
    if vendor == "captured" and not cap_dirs:
        return
    d = base / "bmc"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    sec = d / "secrets"
    sec.mkdir(mode=0o700)
    tls_cfg: Any = False
    if tls:
        from agent.sim.bmc.server import generate_self_signed

        cert, key = generate_self_signed(d / "tls")
        tls_cfg = {"cert": str(cert), "key": str(key)}
        fleet.bmc_ca = str(cert)
    nodes = []
    for i, node in enumerate(fleet.nodes):
        if vendor == "captured" and node.name not in cap_dirs:
            continue
        pw = sec / f"{node.name}.pw"
        _write_secret(pw, secrets.token_urlsafe(18))
        node.bmc_vendor = (
            cap_vendor[node.name]
            if node.name in cap_dirs and vendor in ("captured", "mixed")
            else vendor_for(i, vendor)
        )
        node.bmc_password_file = str(pw)
        extra = {"captured": str(cap_dirs[node.name])} if node.name in cap_dirs else {}
        nodes.append(
            {
                **extra,
                "name": node.name,
                "port": 0,
                "vendor": node.bmc_vendor,
                "username": USERNAME,
                "password_file": str(pw),
                "tls": tls_cfg,
                "node_root": node.root,
                "reset_delay": reset_delay,
                "request_log": str(d / "logs" / f"{node.name}.jsonl"),
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
    fleet.bmc_pid = proc.pid
    fleet.bmc_username = USERNAME
    deadline = time.monotonic() + 30
    while True:
        lines = [ln.split() for ln in urls.read_text().splitlines() if ln.strip()]
        if len(lines) >= len(nodes):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (d / "bmc.log").read_text()[-500:]
            raise Failed(f"the simulated BMCs did not start: {tail.strip()}")
        time.sleep(0.05)
    by_name = {parts[0]: parts[1] for parts in lines if len(parts) == 2}
    for node in fleet.nodes:
        node.bmc_url = by_name.get(node.name)


def stop(fleet: SimFleet) -> None:
    pid = fleet.bmc_pid
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


def host_vars(fleet: SimFleet, name: str) -> dict[str, object]:
    node = next(n for n in fleet.nodes if n.name == name)
    if not node.bmc_url:
        return {}
    hv: dict[str, object] = {
        "bmc_url": node.bmc_url,
        "bmc_username": fleet.bmc_username,
        "bmc_password_file": node.bmc_password_file,
    }
    if fleet.bmc_ca:
        hv["bmc_ca_bundle"] = fleet.bmc_ca
    return hv


def describe(fleet: SimFleet, name: str) -> dict[str, object] | None:
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
