"""Benchmark: `tuner check --level 2|3 --budget S` on N lab nodes, against the budget.

    .venv/bin/python bench/diag_bench.py --nodes 16 --budget 600 --reps 2
    .venv/bin/python bench/diag_bench.py --nodes 4 --level 3 --budget 1800 --reps 1

The lab's RVS and rccl-tests stand-ins answer at once, so the figure is tuner's own cost of
a level-2 run (level 1, planning, one Ansible task per node with the tools' runs, parsing,
verdicts, stragglers, the joined inventory) on top of what the tools take on real nodes
(the plan's `seconds_per_node`). The promise checked: wall time <= the budget. Level 3 adds
the cross-node all-reduce (run from the first node under the mpirun stand-in, bisected when
slow); `--slow-net NODE` halves that node's network so the bisect has work to do.
Results: bench/results/diag-<nodes>[-l3].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tuner(state: str, *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    env = dict(os.environ, TUNER_STATE_DIR=state)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    wall = time.monotonic() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, p


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--budget", type=float, default=600)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--level", type=int, default=2, choices=(2, 3))
    ap.add_argument("--slow-net", default=None, help="a node whose network is at half speed")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuner-diag-bench-") as state:
        _, _, p = tuner(
            state,
            "sim",
            "up",
            "--nodes",
            str(a.nodes),
            "--cores-per-socket",
            "2",
            "--bmc-vendor",
            "none",
            "--runtime",
            "controller",
            "--json",
        )
        if p.returncode:
            print(p.stderr)
            return 1
        try:
            if a.slow_net:
                from agent.sim.diagtools import set_faults

                nodes = {n["name"]: n["root"] for n in json.loads(p.stdout)["nodes"]}
                set_faults(Path(nodes[a.slow_net]), {"net": 0.5})
            rows = []
            for _ in range(a.reps):
                w1, c1, p1 = tuner(state, "check", "--json")
                w2, c2, p2 = tuner(
                    state, "check", "--level", str(a.level), "--budget", str(a.budget), "--json"
                )
                d = json.loads(p2.stdout)["diagnostics"]
                c = d.get("cluster") or {}
                rows.append(
                    {
                        "level": a.level,
                        "cluster_runs": len(c.get("runs") or {}),
                        "cluster_bad": c.get("bad"),
                        "level1_s": round(w1, 1),
                        "level1_cpu_s": round(c1, 1),
                        "level2_s": round(w2, 1),
                        "level2_cpu_s": round(c2, 1),
                        "ran": d["ran"],
                        "tools_s_per_node": d["seconds_per_node"],
                        "load": round(os.getloadavg()[0], 1),
                    }
                )
                print(rows[-1], flush=True)
        finally:
            tuner(state, "sim", "down")
    out = {
        "nodes": a.nodes,
        "budget": a.budget,
        "runs": rows,
        "within_budget": all(r["level2_s"] <= a.budget for r in rows),
    }
    tag = "" if a.level == 2 else "-l3"
    res = REPO / "bench" / "results" / f"diag-{a.nodes}{tag}.json"
    res.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
