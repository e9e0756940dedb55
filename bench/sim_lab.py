"""The simulated lab's own speed: `tuner sim reboot` of one node, `sim up` / `sim down` of a
fleet, each through the real CLI.

    .venv/bin/python bench/sim_lab.py --reboot-runs 10 --nodes 64 --cores-per-socket 8

`sim reboot` is timed on one full-size node (2 x 64 cores, SMT: 256 CPUs, ~8,500 kernel
files), median of N runs, each after an apply-like change of every governor; `sim up` and
`sim down` once for a fleet of `--nodes`. `--src DIR` runs another source tree (e.g. the
commit before a change) with `python -m agent.cli`; `--ab DIR` times `sim reboot` of this
tree and of DIR alternately on the same node (the A/B on a shared machine). Wall and CPU
time (user + system of the command and its children) are printed with the load average: on
a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reboot-runs", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--cores-per-socket", type=int, default=8)
    ap.add_argument("--src", help="source tree to run with `python -m agent.cli`")
    ap.add_argument("--ab", help="another source tree: alternate its `sim reboot` with this one's")
    ap.add_argument("--skip-fleet", action="store_true", help="time only `sim reboot`")
    args = ap.parse_args()
    tuner = [str(Path(sys.executable).parent / "tuner")]
    cwd = REPO
    if args.src:
        tuner, cwd = [sys.executable, "-m", "agent.cli"], Path(args.src)
    state = Path(tempfile.mkdtemp(prefix="tuner-bench-lab-"))
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    results: dict[str, object] = {"load_start": os.getloadavg()[0]}

    # sim reboot: one full-size node
    timed([*tuner, "sim", "up", "-n", "1", "--bmc-vendor", "none", "--json"], env, cwd)
    fleet = json.loads((state / "sim" / "fleet.json").read_text())
    root = Path(fleet["nodes"][0]["root"])
    variants = {"this": (tuner, cwd)}
    if args.ab:
        variants["other"] = ([sys.executable, "-m", "agent.cli"], Path(args.ab))
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    loads: list[float] = []
    try:
        for i in range(args.reboot_runs):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for k in order:
                for gov in (root / "sys/devices/system/cpu").glob("cpu*/cpufreq/scaling_governor"):
                    gov.write_text("performance\n")  # what an apply changes
                loads.append(round(os.getloadavg()[0], 1))
                w, c, _ = timed([*variants[k][0], "sim", "reboot", "node01"], env, variants[k][1])
                walls[k].append(w)
                cpus[k].append(c)
    finally:
        timed([*tuner, "sim", "down"], env, cwd)
    for k in variants:
        results[f"reboot_1_full_node_{k}"] = {
            "src": str(variants[k][1]),
            "runs": len(walls[k]),
            "wall_median": statistics.median(walls[k]),
            "wall_min": min(walls[k]),
            "cpu_median": statistics.median(cpus[k]),
        }
    results["reboot_load_avg"] = loads
    if not args.skip_fleet:
        n, cores = str(args.nodes), str(args.cores_per_socket)
        w_up, c_up, _ = timed([*tuner, "sim", "up", "-n", n, "--cores-per-socket", cores], env, cwd)
        w_down, c_down, _ = timed([*tuner, "sim", "down"], env, cwd)
        results[f"sim_up_{n}_nodes"] = {"wall": w_up, "cpu": c_up, "cores_per_socket": cores}
        results[f"sim_down_{n}_nodes"] = {"wall": w_down, "cpu": c_down}
    results["load_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
