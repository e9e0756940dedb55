"""Shared test helpers: the real CLI in a subprocess, simulated fleets, tree hashes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.sim.fleet import find_sshd

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TUNER = [sys.executable, "-m", "agent.cli"]
# Simulated nodes are reached through a real sshd each; without OpenSSH's server installed
# (scripts/test.sh installs it on Debian), the fleet tests fall back to local connections.
CONNECTION = os.environ.get("TUNER_TEST_CONNECTION") or ("ssh" if find_sshd() else "local")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`: the longest files first, a few long tests split off
    (tests/xdist_plan.py, tests/durations.json)."""
    if getattr(config.option, "dist", "") != "loadfile":
        return None
    from xdist_plan import make_scheduler

    return make_scheduler(config, log)


def run_tuner(
    *args: str, state: Path, timeout: float = 300, env: dict[str, str] | None = None, **kw: Any
) -> Result:
    env = dict(env if env is not None else os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    p = subprocess.run(
        [*TUNER, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO, **kw
    )
    return Result(p.returncode, p.stdout, p.stderr)


def tree_hash(root: Path, skip: tuple[str, ...] = ("var/lib/tuner",)) -> dict[str, str]:
    """path -> sha256 of every file and folder under a node root (tuner's record skipped)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [
            d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip
        ]
        out[rel_dir + "/"] = "dir"
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            out[rel] = hashlib.sha256(Path(dirpath, f).read_bytes()).hexdigest()
    return out


@dataclass
class Fleet:
    state: Path
    info: dict[str, Any]

    @property
    def roots(self) -> dict[str, Path]:
        return {n["name"]: Path(n["root"]) for n in self.info["nodes"]}

    @property
    def inventory(self) -> str:
        return str(self.info["inventory"])

    def hashes(self) -> dict[str, dict[str, str]]:
        return {name: tree_hash(root) for name, root in self.roots.items()}

    def tuner(self, *args: str, **kw: Any) -> Result:
        return run_tuner(*args, state=self.state, **kw)


def make_fleet(
    state: Path,
    nodes: int | None,
    cores_per_socket: int = 8,
    *extra: str,
    bmc_vendor: str = "none",
    runtime: str = "controller",
) -> Iterator[Fleet]:
    """A fleet of small nodes (2 x 8 cores, SMT: 32 CPUs) unless a test needs full size.

    No BMCs unless `bmc_vendor` names a personality (or mixed): the OS tests stay OS only.
    `nodes` None: the scenario's node count (pass `--scenario NAME` in `extra`).
    `runtime` controller (the lab shortcut: nodes borrow this Python, no provisioning);
    "bare" for tests of `tuner provision` (agent/sim/fleet.py)."""
    r = run_tuner(
        "sim",
        "up",
        *(["--nodes", str(nodes)] if nodes is not None else []),
        "--connection",
        CONNECTION,
        "--json",
        "--cores-per-socket",
        str(cores_per_socket),
        "--bmc-vendor",
        bmc_vendor,
        "--runtime",
        runtime,
        *extra,
        state=state,
    )
    assert r.rc == 0, r.err
    fleet = Fleet(state, r.json())
    try:
        yield fleet
    finally:
        run_tuner("sim", "down", state=state)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path / "state", 4)


@pytest.fixture
def full_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Full-size nodes: 2 x 64 cores with SMT, 256 logical CPUs, as an EPYC 9575F node."""
    yield from make_fleet(tmp_path / "state", 4, cores_per_socket=64)


@pytest.fixture(scope="module")
def shared_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A fleet for tests that must not change it (bad input, dry runs)."""
    yield from make_fleet(tmp_path_factory.mktemp("shared") / "state", 4)
