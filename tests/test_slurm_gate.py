"""The gate inside Slurm: `tuner check --local --slurm` as the real slurmd's
HealthCheckProgram (tests/slurmlab.py: Debian's slurmctld, one slurmd per simulated node).

The fleet is set up as a user's is (bare `sim up`, then `tuner provision`) and the program
is each node's own /opt/tuner/venv/bin/tuner. slurmd itself runs it every few seconds, with
the environment it gives one (SLURMD_NODENAME, no PATH): a GPU that fails drains its node
with a `tuner:` reason, the node is resumed once fixed, a drain an administrator set stays
as it is, and a check that hangs is killed by the watchdog and drains its node (fail
closed)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import slurmlab
from conftest import REPO, TUNER, Fleet, make_fleet

from agent.sim.gpu.build import BuildError, build_library
from agent.sim.gpu.state import install_node
from agent.sim.scenarios import SCENARIOS, node_state
from agent.slurmgate import NodeState, parse_state, reason_text


def test_reason_is_one_short_printable_line() -> None:
    r = reason_text("GPU 3 ecc\n$(reboot); `x`\t\x1b[31m" + "y" * 500)
    assert r.startswith("tuner: GPU 3 ecc $(reboot); `x` [31m")
    assert len(r) == 200 and r.isprintable()


def test_state_parsing() -> None:
    s = parse_state("NodeName=n1 Arch=x86_64 State=IDLE+DRAIN ThreadsPerCore=1", "tuner: x\n")
    assert s == NodeState(state="IDLE+DRAIN", drain=True, reason="tuner: x") and s.tuner_drain
    s = parse_state("NodeName=n1 State=MIXED+DRAIN Reason=admin", "admin: fan\n")
    assert s.drain and not s.tuner_drain
    s = parse_state("NodeName=n1 State=IDLE*", "none\n")
    assert not s.drain and s.reason is None


@pytest.mark.parametrize(
    "args",
    [["--slurm"], ["--slurm", "--local", "--level", "2"], ["--slurm", "--local", "--node", "a;b"]],
)
def test_bad_input(args: list[str]) -> None:
    p = subprocess.run(
        [*TUNER, "check", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr


def _wait(what: str, cond: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s: {what}")


# Quick alone (~30 s, plus a bare fleet's provision), but slurmd runs three checks at once
# every few seconds: in the serial phase, beside nothing else (like test_launch's Slurm job).
@pytest.mark.serial
@pytest.mark.fleet
@pytest.mark.skipif(not slurmlab.available(), reason="Debian's slurmctld/slurmd not installed")
def test_slurmd_health_check_drains_resumes_and_leaves_admin_drains(tmp_path: Path) -> None:
    try:
        lib = build_library(tmp_path / "lib")
    except BuildError as e:
        pytest.skip(f"no C compiler: {e}")
    # the fleet as a user's is: bare nodes, then `tuner provision`, which puts tuner itself
    # in each node's runtime (/opt/tuner/venv/bin/tuner): slurmd runs that one, not ours
    with contextmanager(make_fleet)(tmp_path / "state", 3, runtime="bare") as fleet:
        r = fleet.tuner("provision", "--json", timeout=900)
        assert r.rc == 0, r.out + r.err
        _slurmd_runs_the_nodes_tuner(tmp_path, fleet, lib)


def _slurmd_runs_the_nodes_tuner(tmp_path: Path, fleet: Fleet, lib: Path) -> None:
    names = sorted(fleet.roots)
    assert len(names) == 3
    n1, n2, n3 = names
    roots = {n: fleet.roots[n] for n in names}
    base = {r.parent.parent for r in roots.values()}
    assert len(base) == 1 and all(roots[n] == next(iter(base)) / n / "root" for n in names)
    nodes = next(iter(base))
    healthy = node_state(SCENARIOS["healthy"], 0)
    log = tmp_path / "hc.log"
    script = tmp_path / "tuner-health.sh"
    # What an operator's wrapper looks like (docs/slurm-gate.md): the node's own tuner. On
    # this one machine, the lab's nodes are told apart by SLURMD_NODENAME (slurmd sets it):
    # the node's tree is its root, and its runtime is under it.
    root = f'{shlex.quote(str(nodes))}/"$SLURMD_NODENAME"/root'
    script.write_text(
        "#!/bin/sh\n"
        f"export SLURM_CONF={shlex.quote(str(tmp_path / 'slurm' / 'slurm.conf'))}\n"
        f"export TUNER_STATE_DIR={shlex.quote(str(tmp_path / 'node-state'))}\n"
        f"exec {root}/opt/tuner/venv/bin/tuner check --local --slurm --timeout 4 "
        f"--root {root} >>{shlex.quote(str(log))} 2>&1\n"
    )
    script.chmod(0o755)
    extra = [f"HealthCheckProgram={script}", "HealthCheckInterval=3"]
    with slurmlab.slurm_lab(tmp_path / "slurm", names, gpus=8, extra=extra) as senv:
        env = {**os.environ, **senv}

        def state(n: str) -> tuple[str, str]:
            r = subprocess.run(
                ["sinfo", "-h", "-N", "-n", n, "-o", "%T|%E"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            t, _, why = r.stdout.splitlines()[0].partition("|")
            return t.rstrip("*"), why

        subprocess.run(
            ["scontrol", "update", f"NodeName={n2}", "State=DRAIN", "Reason=admin: fan"],
            env=env,
            check=True,
        )
        # n1: an uncorrectable ECC error on GPU 3; n2 (drained by its admin): the same;
        # n3: its check hangs (a FIFO nobody writes, read by the host facts)
        broken = node_state(SCENARIOS["ecc-uncorrectable"], 1)
        install_node(roots[n1], broken, lib)
        install_node(roots[n2], broken, lib)
        (roots[n3] / "proc").mkdir(exist_ok=True)
        (roots[n3] / "proc" / "uptime").unlink(missing_ok=True)
        os.mkfifo(roots[n3] / "proc" / "uptime")
        _wait(f"{n1} drained by tuner", lambda: state(n1)[1].startswith("tuner: "))
        assert "GPU 3 gpu.ecc.uncorrectable" in state(n1)[1]
        assert state(n1)[0] in ("drained", "draining")
        _wait(f"{n3} drained by the watchdog", lambda: "within 4 s" in state(n3)[1])
        assert state(n3)[1].startswith("tuner: ")
        # fixed: n1 is resumed; n2 is fixed too but keeps its administrator's drain
        install_node(roots[n1], healthy, lib)
        install_node(roots[n2], healthy, lib)
        _wait(f"{n1} resumed", lambda: state(n1) == ("idle", "none"))
        runs = log.read_text().count(f"{n2}: gate passed")
        _wait(
            f"{n2} checked twice since", lambda: log.read_text().count(f"{n2}: gate passed") > runs
        )
        assert state(n2) == ("drained", "admin: fan")
        assert f"{n2}: gate FAILED" in log.read_text()  # it was checked while broken, and left
        assert "Traceback" not in log.read_text()
    # slurmd kills a HealthCheckProgram past 60 s: a TERM to tuner kills its check's process
    # group too (the check runs in a session of its own, which slurmd's kill would miss)
    p = subprocess.Popen(
        [str(roots[n3] / "opt/tuner/venv/bin/tuner"), "check", "--local", "--slurm",
         "--node", n3, "--timeout", "300", "--root", str(roots[n3])],
        cwd=roots[n3], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TUNER_STATE_DIR": str(tmp_path / "node-state")},
    )  # fmt: skip

    def checks() -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if d.name.isdigit() and int(d.name) != p.pid and str(roots[n3]).encode() in cmd:
                out.append(int(d.name))
        return out

    _wait("the check started", lambda: bool(checks()), 60)
    p.terminate()
    assert p.wait(30) == 128 + 15
    _wait("the check killed", lambda: not checks(), 10)
