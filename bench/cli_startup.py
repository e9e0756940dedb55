"""CLI start-up: wall time of quick commands, each run as a new process (median of N).

    .venv/bin/python bench/cli_startup.py --runs 10

Runs are interleaved (command A, B, C, A, B, C, ...) so a load change on a shared machine
hits every command alike; `python -c pass` is the floor. Besides wall time, the CPU time
(user + system) of each run is recorded: on a busy machine wall time mostly measures the
wait for a core, CPU time what the command itself costs (on an idle machine the two agree,
start-up being one thread). The load average is printed with the figures.
Aim (issue 11): `tuner --help` and `tuner profiles list` under 0.3 s.
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

COMMANDS: dict[str, list[str]] = {
    "tuner --help": ["--help"],
    "tuner --version": ["--version"],
    "tuner profiles list": ["profiles", "list"],
    "tuner profiles list --json": ["profiles", "list", "--json"],
    "tuner sim scenarios": ["sim", "scenarios"],
    "tuner status": ["status"],
    "tuner apply --help": ["apply", "--help"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--src", help="run `python -m agent.cli` from this source tree (e.g. an older commit)"
    )
    ap.add_argument("--only", nargs="*", help="command names to time (default: all that run)")
    args = ap.parse_args()
    tuner = [str(Path(sys.executable).parent / "tuner")]
    cwd = REPO
    if args.src:
        tuner, cwd = [sys.executable, "-m", "agent.cli"], Path(args.src)
    env = dict(os.environ, TUNER_STATE_DIR=tempfile.mkdtemp(prefix="tuner-bench-"))
    env.pop("TUNER_INVENTORY", None)
    cmds = {"python -c pass": [sys.executable, "-c", "pass"]}
    for name, argv in COMMANDS.items():
        if args.only and name not in args.only:
            continue
        ok = subprocess.run([*tuner, *argv], env=env, cwd=cwd, capture_output=True)
        if ok.returncode == 0:  # an older tree may lack a command
            cmds[name] = [*tuner, *argv]
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    load0 = os.getloadavg()[0]
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    load1 = os.getloadavg()[0]
    rows = {
        k: {
            "median": statistics.median(v),
            "min": min(v),
            "max": max(v),
            "cpu_median": statistics.median(cpu[k]),
        }
        for k, v in times.items()
    }
    if args.json:
        print(json.dumps({"runs": args.runs, "load": [load0, load1], "commands": rows}, indent=2))
        return
    print(f"{args.runs} runs each; load average {load0:.1f} -> {load1:.1f} (2 cores)")
    for k, r in rows.items():
        print(
            f"{k:<28} wall median {r['median']:.3f} s (min {r['min']:.3f}, max {r['max']:.3f})"
            f"  cpu median {r['cpu_median']:.3f} s"
        )


if __name__ == "__main__":
    main()
