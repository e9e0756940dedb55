"""Benchmark: the GPU health gate per node and across a fleet.

    .venv/bin/python bench/check_bench.py [--runs 20] [--fleet-nodes 64] [--fleet-reps 3]

1. Per node, on an 8-GPU simulated node (the real amdsmi over the simulated libamd_smi.so),
   wall time of:
   - `bare`: bench/bare_amdsmi.py, the same amdsmi calls and nothing else (the floor);
   - `gather`: a process that runs only tuner's node-side collector (what the Ansible module
     runs on each node);
   - `tuner check --local`: the whole CLI (start-up, facts, checks, report).
2. A fleet check (`tuner check`) of N simulated nodes over SSH.

Medians are printed and written to bench/results/check.json; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed: {r.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--fleet-nodes", type=int, default=64)
    ap.add_argument("--fleet-reps", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench/results/check.json"))
    a = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from agent.sim.gpu.build import build_library
    from agent.sim.gpu.state import NodeGpuState, install_node

    tmp = Path(tempfile.mkdtemp(prefix="tuner-bench-check-"))
    root = tmp / "node"
    install_node(root, NodeGpuState.healthy(), build_library(tmp / "lib"))
    env = dict(os.environ, ROCM_PATH=str(root / "opt/rocm"))
    py = sys.executable
    cmds = {
        "bare": [py, str(REPO / "bench/bare_amdsmi.py")],
        "gather": [py, "-c", f"from agent.gpu.collect import gather; gather({str(root)!r})"],
        "tuner_check_local": [str(BIN / "tuner"), "check", "--local", "--root", str(root)],
        "tuner_help": [str(BIN / "tuner"), "--help"],
    }
    per_node: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(a.runs):
        for k, c in cmds.items():
            per_node[k].append(timed(c, env))
    med = {k: round(statistics.median(v), 4) for k, v in per_node.items()}
    print("per node (median s):", med, flush=True)

    fleet: list[float] = []
    if a.fleet_nodes:
        state = tmp / "state"
        fenv = dict(os.environ, TUNER_STATE_DIR=str(state))
        t = time.perf_counter()
        subprocess.run(
            [
                str(BIN / "tuner"),
                "sim",
                "up",
                "--nodes",
                str(a.fleet_nodes),
                "--cores-per-socket",
                "2",
                "--connection",
                "ssh",
                "--bmc-vendor",
                "none",
                "--runtime",
                "controller",  # nodes borrow this Python: no `tuner provision` in the figure
            ],
            env=fenv,
            check=True,
            capture_output=True,
        )
        sim_up = time.perf_counter() - t
        try:
            for _ in range(a.fleet_reps):
                fleet.append(timed([str(BIN / "tuner"), "check"], fenv))
                print(f"fleet check of {a.fleet_nodes} nodes: {fleet[-1]:.2f} s", flush=True)
        finally:
            subprocess.run([str(BIN / "tuner"), "sim", "down"], env=fenv, capture_output=True)
    result = {
        "cpus": os.cpu_count(),
        "runs": a.runs,
        "per_node_median_s": med,
        "ratio_check_local_to_bare": round(med["tuner_check_local"] / med["bare"], 2),
        "ratio_gather_to_bare": round(med["gather"] / med["bare"], 2),
        "fleet_nodes": a.fleet_nodes,
        "fleet_sim_up_s": round(sim_up, 2) if a.fleet_nodes else None,
        "fleet_check_median_s": round(statistics.median(fleet), 2) if fleet else None,
        "fleet_check_all_s": [round(x, 2) for x in fleet],
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
