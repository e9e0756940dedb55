"""Benchmark: Slurm submit to all engines registered, on N lab nodes (default 16).

    .venv/bin/python bench/slurm_launch_bench.py [--nodes 16]

A simulated fleet of N nodes x 8 GPUs (`--runtime controller`: the probe is standalone, so
this measures Slurm and the probe, not provisioning), `tuner check`, a real slurmctld and one
slurmd per node on loopback (tests/slurmlab.py), then `tuner launch --backend slurm
--template probe`. `register` = the probe head's "all engines registered" minus the moment
tuner started (before sbatch); `whole` = the command (submit, job, follow to COMPLETED).
Result in bench/results/slurm_launch.json; docs/performance.md records it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TUNER = [str(REPO / ".venv/bin/tuner")]


def main() -> None:
    from tests import slurmlab

    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        env = {**os.environ, "TUNER_STATE_DIR": str(state)}
        up = [*TUNER, "sim", "up", "--nodes", str(a.nodes), "--cores-per-socket", "8"]
        subprocess.run(
            [*up, "--runtime", "controller", "--connection", "ssh", "--json"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        try:
            report = state / "report.json"
            subprocess.run(
                [*TUNER, "check", "--output", str(report)], env=env, check=True, capture_output=True
            )
            names = [f"node{i:02d}" for i in range(1, a.nodes + 1)]
            with slurmlab.slurm_lab(Path(tmp) / "slurm", names) as senv:
                t0 = time.time()
                r = subprocess.run(
                    [*TUNER, "launch", "--from", str(report), "--backend", "slurm",
                     "--template", "probe", "--no-recheck", "--port", "39611", "--json"],
                    env={**env, **senv}, capture_output=True, text=True,
                )  # fmt: skip
                whole = time.time() - t0
            doc = json.loads(r.stdout)
            probe = doc.get("probe") or {}
            out = {
                "nodes": a.nodes,
                "engines": probe.get("expected_engines"),
                "state": doc.get("state"),
                "register_s": round(probe["all_registered_at"] - t0, 2)
                if probe.get("all_registered_at")
                else None,
                "whole_s": round(whole, 2),
                "load_average": os.getloadavg()[0],
            }
        finally:
            subprocess.run([*TUNER, "sim", "down"], env=env, capture_output=True)
    print(json.dumps(out, indent=1))
    (REPO / "bench" / "results" / "slurm_launch.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
