"""`tuner capture`'s edges: this node in-process, or the fleet through Ansible; then one
bundle per node (agent/capture/bundle.py).

Nodes: ``playbooks/capture.yml`` runs ``tuner_capture`` on each node (the node's files, the
kernel log lines, the GPU collector with its recording hook). BMCs: ``playbooks/capture-bmc.yml``
runs ``tuner_capture_bmc`` on the control node for each host with a ``bmc_url`` (the BIOS
layer's variables and password handling). Nothing is written on a node or a BMC.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.capture import bundle
from agent.errors import BadInput


@dataclass
class Piece:
    """What was read of one node, before it becomes a bundle."""

    host: str
    node: dict[str, Any] | None = None
    calls: list[dict[str, Any]] | None = None
    bmc: dict[str, Any] | None = None
    not_read: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def tuner_version() -> str:
    try:
        from importlib.metadata import version

        return version("tuner")
    except Exception:  # noqa: BLE001 - a source tree without metadata
        return "unknown"


def profile_sysctls() -> list[str]:
    """The sysctl keys of every profile tuner ships (the sysctls tuner manages)."""
    from agent.profiles import list_profiles, load_profile

    keys: set[str] = set()
    for name in list_profiles():
        try:
            keys.update((load_profile(name).section("os").sysctl or {}).keys())
        except Exception:  # noqa: BLE001 - a broken profile is not the capture's business
            continue
    return sorted(keys)


def node_calls(root: str, rocm_path: str | None, name: str) -> tuple[list[Any] | None, str | None]:
    """The GPU collector's amdsmi calls (its recording hook) -> (calls, why none)."""
    from agent.gpu.collect import RocmNotFound, gather

    calls: list[dict[str, Any]] = []
    try:
        # the amdsmi package prints its own complaints on stdout: keep stdout for --json
        with contextlib.redirect_stdout(sys.stderr):
            gather(root, rocm_path, name, record=calls)
    except RocmNotFound as e:
        return None, str(e)
    return calls, None


@dataclass
class BmcTarget:
    url: str
    username: str
    password: str
    auth: str = "basic"
    system: str | None = None
    verify: bool = True
    ca_bundle: str | None = None
    timeout: float = 30.0


def read_bmc(t: BmcTarget) -> dict[str, Any]:
    from agent.bios.redfish import BmcClient, RedfishError
    from agent.capture.bmc import read_bmc as read

    try:
        c = BmcClient(
            t.url,
            t.username,
            t.password,
            auth=t.auth,
            verify=t.verify,
            ca_bundle=t.ca_bundle,
            timeout=t.timeout,
            system=t.system,
        )
    except RedfishError as e:
        raise BadInput(str(e), field="--bmc-url") from None
    try:
        return read(c)
    finally:
        c.close()


def capture_local(
    root: str, name: str | None, rocm_path: str | None, bmc: BmcTarget | None
) -> Piece:
    from agent.capture.bmc import redact_url
    from agent.capture.node import read_node

    t0 = time.monotonic()
    host = name or (socket.gethostname() if root == "/" else Path(root).name)
    p = Piece(host=bundle.safe_name(host))
    p.node = read_node(root, profile_sysctls(), host)
    p.calls, why = node_calls(root, rocm_path, host)
    if why:
        p.not_read[bundle.CALLS] = why
    if bmc is not None:
        p.bmc = read_bmc(bmc)
    else:
        p.not_read["bmc/"] = "no BMC given (--bmc-url)"
    p.meta = {
        "source": {"mode": "local", "root": root, "bmc_url": redact_url(bmc.url) if bmc else None}
    }
    p.seconds = time.monotonic() - t0
    return p


def capture_fleet(
    inv: Any, deadline: float, forks: int | None, progress: Any, bmc_opts: dict[str, Any]
) -> tuple[list[Piece], dict[str, str], str]:
    """Every selected node (and its BMC); -> pieces, failed hosts with why, artifacts."""
    from agent.capture.bmc import redact_url
    from agent.layers.base import Credentials
    from agent.layers.bios import PASSWORD_ENV, _password_file, bmc_hosts
    from agent.runner import run_playbook

    creds = Credentials()
    creds.take(PASSWORD_ENV)  # out of the environment before any Ansible run records it
    # validated before any host is touched (exit 2)
    with_bmc, _without = bmc_hosts(inv, creds=creds)
    t0 = time.monotonic()
    outcomes, artifacts = run_playbook(
        "capture.yml",
        inv,
        {"tuner_deadline": int(deadline), "tuner_capture_sysctls": profile_sysctls()},
        forks=forks,
        progress=progress,
        module="tuner_capture",
    )
    node_s = time.monotonic() - t0
    bmc_out: dict[str, Any] = {}
    if with_bmc:
        sub = inv.model_copy(update={"hosts": with_bmc})
        with _password_file(creds) as pw:
            bmc_out, _ = run_playbook(
                "capture-bmc.yml",
                sub,
                {**pw, **bmc_opts},
                forks=forks,
                module="tuner_capture_bmc",
            )
    pieces: list[Piece] = []
    failures: dict[str, str] = {}
    per_node = node_s / max(len(inv.hosts), 1)
    for h in inv.hosts:
        o = outcomes.get(h.name)
        if o is None or o.status != "ok":
            failures[h.name] = (o.message or o.status) if o else "no result"
            continue
        p = Piece(host=bundle.safe_name(h.name))
        p.node = o.facts.get("node") or {}
        p.calls = o.facts.get("calls")
        if o.facts.get("amdsmi_error"):
            p.not_read[bundle.CALLS] = str(o.facts["amdsmi_error"])
        b = bmc_out.get(h.name)
        url = h.vars.get("bmc_url")
        if url is None:
            p.not_read["bmc/"] = "the inventory gives no bmc_url for this host"
        elif b is None or b.status != "ok":
            p.not_read["bmc/"] = f"BMC not read: {(b.message or b.status) if b else 'no result'}"
        else:
            p.bmc = b.facts.get("bmc") or {}
        p.meta = {
            "source": {
                "mode": "fleet",
                "root": h.root,
                "bmc_url": redact_url(str(url)) if isinstance(url, str) else None,
            }
        }
        p.seconds = per_node
        pieces.append(p)
    return pieces, failures, artifacts


def build(pieces: list[Piece], redact: bool) -> dict[str, dict[str, bytes]]:
    """host -> the bundle's files (README and manifest included), redacted consistently."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    raw: dict[str, dict[str, bytes]] = {}
    for p in pieces:
        raw[p.host] = bundle.assemble(p.host, p.node, p.calls, p.bmc, p.meta, p.not_read)
    if redact:
        r = bundle.Redactor()
        for files in raw.values():
            r.collect(files)
        raw = {h: r.apply(files) for h, files in raw.items()}
    out: dict[str, dict[str, bytes]] = {}
    for p in pieces:
        meta = {"tuner_version": tuner_version(), "created_at": created, **p.meta}
        out[p.host] = bundle.finish(p.host, raw[p.host], meta, p.not_read, redact)
    return out


def check_targets(out_dir: Path, hosts: list[str], archive: bool) -> None:
    """Before anything is read: no bundle would overwrite another one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"{out_dir} is a file, not a folder", field="--output")
    seen: dict[str, str] = {}
    for h in hosts:
        t = bundle.target(out_dir, h, archive)
        if t.name in seen:
            raise BadInput(
                f"hosts {seen[t.name]!r} and {h!r} would write the same bundle {t.name}",
                field="--output",
            )
        seen[t.name] = h
        if t.exists() or t.is_symlink():
            raise BadInput(f"{t} exists: remove it or choose another --output", field="--output")
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"{probe} is not writable", field="--output")
