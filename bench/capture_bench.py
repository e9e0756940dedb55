"""`tuner capture`: time per node and bundle size, through the real CLI.

    .venv/bin/python bench/capture_bench.py --nodes 8 --cores-per-socket 64 [--runs 3]

A simulated fleet (full-size nodes by default: 2 x 64 cores, SMT, 256 CPUs, 8 MI355X, a BMC
per node, personalities in turn) is captured through Ansible, as a folder and as
`--archive`, and one node with `--local`; the median wall time of `--runs` runs of each, the
time per node, files and bytes per bundle and the archive's size are printed (JSON with
`--json`). Wall and CPU time are printed with the load average: on a shared machine the CPU
time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--cores-per-socket", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    # a SIGTERM (timeout) still takes the fleet down (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="capture-bench-"))
    env = dict(os.environ, TUNER_STATE_DIR=str(tmp / "state"))
    env.pop("TUNER_INVENTORY", None)
    env.pop("ROCM_PATH", None)
    tuner = [sys.executable, "-m", "agent.cli"]
    try:
        _, _, out = run(
            [
                *tuner,
                "sim",
                "up",
                "--nodes",
                str(a.nodes),
                "--cores-per-socket",
                str(a.cores_per_socket),
                "--runtime",
                "controller",
                "--json",
            ],
            env,
        )
        up = json.loads(out)
        root = up["nodes"][0]["root"]
        res: dict[str, object] = {"nodes": a.nodes, "cpus_per_node": a.cores_per_socket * 4}
        for label, extra in (("fleet", []), ("fleet --archive", ["--archive"])):
            walls, cpus, doc = [], [], {}
            for i in range(a.runs):
                dest = tmp / f"out-{label.replace(' ', '')}-{i}"
                w, c, o = run([*tuner, "capture", "-o", str(dest), "--json", *extra], env)
                walls.append(w)
                cpus.append(c)
                doc = json.loads(o)
                shutil.rmtree(dest)
            b = doc["bundles"][0]
            res[label] = {
                "wall_s": round(statistics.median(walls), 2),
                "cpu_s": round(statistics.median(cpus), 2),
                "per_node_s": round(statistics.median(walls) / a.nodes, 2),
                "files": b["files"],
                "bytes": b["bytes"],
                "archive_bytes": b["archive_bytes"],
            }
        walls, cpus = [], []
        for i in range(a.runs):
            dest = tmp / f"local-{i}"
            w, c, o = run(
                [*tuner, "capture", "--local", "--root", root, "-o", str(dest), "--json"], env
            )
            walls.append(w)
            cpus.append(c)
            shutil.rmtree(dest)
        res["local (one node, no BMC)"] = {
            "wall_s": round(statistics.median(walls), 2),
            "cpu_s": round(statistics.median(cpus), 2),
        }
        res["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        subprocess.run([*tuner, "sim", "down"], env=env, cwd=REPO, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
