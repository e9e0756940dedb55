"""Benchmark: how long the node agent takes from a uevent to the knob re-applied, on a
full-size simulated node (2 x 64 cores, SMT: 256 logical CPUs), through the real agent
process and the simulator's event seam.

    .venv/bin/python bench/agent_reapply.py [--cores-per-socket 64] [--reps 5]

For each repetition: a late cpufreq load (every policy new, governor back to schedutil),
then cpu N online (a fresh policy and idle states); the time is from `tuner sim event`'s
write to the last file holding the wanted value. Also times `run --once` with nothing to
change. Medians are printed as JSON; figures are in docs/agent.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent import knobs  # noqa: E402
from agent.profiles import load_profile  # noqa: E402
from agent.sim import events  # noqa: E402
from agent.sim.nodetree import Topology, build_node  # noqa: E402

GOV = "sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor"


def wait(check: object, limit: float = 30.0) -> float:
    t = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - t > limit:
            raise SystemExit("not re-applied within 30 s")
        time.sleep(0.002)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores-per-socket", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="tuner-agent-bench-"))
    try:
        root = d / "node"
        t = Topology(cores_per_socket=a.cores_per_socket)
        build_node(root, "node", t)
        knobs.apply(
            knobs.Host(str(root), sim_kernel=True),
            load_profile("inference").os_settings(),
            True,
            False,
            record=True,
        )
        cpus = range(t.logical_cpus)
        cmd = [sys.executable, "-m", "agent.nodeagent", "run", "--root", str(root)]
        once = []
        for _ in range(a.reps):
            s = time.perf_counter()
            subprocess.run(
                [*cmd, "--once", "--events", "none"], cwd=REPO, check=True, capture_output=True
            )
            once.append(time.perf_counter() - s)
        p = subprocess.Popen([*cmd, "--events", "sim"], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        p.stdout.readline()
        p.stdout.readline()
        load, online = [], []
        try:
            for i in range(a.reps):
                events.event(root, "cpufreq-load", None)
                load.append(
                    wait(
                        lambda: all(
                            (root / GOV.format(c)).read_text() == "performance\n" for c in cpus
                        )
                    )
                )
                n = 1 + i
                events.event(root, "cpu-online", str(n))
                online.append(
                    wait(lambda n=n: (root / GOV.format(n)).read_text() == "performance\n")
                )
                time.sleep(3.5)  # let the settle re-checks pass
        finally:
            p.terminate()
            p.wait(timeout=10)
        print(
            json.dumps(
                {
                    "logical_cpus": t.logical_cpus,
                    "reps": a.reps,
                    "once_process_s": round(statistics.median(once), 3),
                    "cpufreq_load_to_reapplied_s": round(statistics.median(load), 3),
                    "cpu_online_to_reapplied_s": round(statistics.median(online), 3),
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
