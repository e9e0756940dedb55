"""Benchmark: `tuner apply --profile inference` on a simulated fleet, against the same
playbook run through plain `ansible-playbook` with Ansible's default settings (5 forks,
no pipelining).

    .venv/bin/python bench/apply_fanout.py [--nodes 16] [--reps 5] [--layer os]
        [--out bench/results/apply.json]

Each repetition starts from pristine nodes (`tuner rollback`), then times a first run (every
setting changes) and an idempotent re-run (nothing changes), for both paths. Medians are
printed and written as JSON. Figures are recorded in docs/performance.md.
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
BIN = Path(sys.executable).parent


CPU: dict[str, list[float]] = {}


def sh(cmd: list[str], env: dict[str, str], key: str = "") -> float:
    """Wall time of `cmd`; its CPU time (user + system of it and its children) under `key`."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if key:
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        CPU.setdefault(key, []).append(round(cpu, 2))
    if r.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        )
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cores-per-socket", type=int, default=64)
    ap.add_argument("--out", default=str(REPO / "bench/results/apply.json"))
    ap.add_argument(
        "--layer",
        default="os",
        help="tuner's --layer (default os: the same playbook the plain run is given; 'all'"
        " also runs the kernel command line layer, which plain Ansible is not given)",
    )
    a = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="tuner-bench-"))
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    tuner = [str(BIN / "tuner")]
    sh(
        [
            *tuner,
            "sim",
            "up",
            "--nodes",
            str(a.nodes),
            "--connection",
            "ssh",
            "--cores-per-socket",
            str(a.cores_per_socket),
            "--bmc-vendor",
            "none",  # an OS benchmark: no BMCs
        ],
        env,
    )
    inv = str(state / "sim/inventory.yml")

    sys.path.insert(0, str(REPO))
    from agent.profiles import load_profile

    prof = load_profile("inference")
    extra = state / "extravars.json"
    extra.write_text(
        json.dumps(
            {
                "tuner_mode": "apply",
                "tuner_settings": prof.os_settings(),
                "tuner_persist": prof.os.persist,
            }
        )
    )
    # Plain ansible-playbook: no ANSIBLE_* settings at all, so Ansible's defaults apply.
    plain_env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    plain_env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    plain = [
        str(BIN / "ansible-playbook"),
        "-i",
        inv,
        str(REPO / "playbooks/os.yml"),
        "-e",
        f"@{extra}",
    ]

    times: dict[str, list[float]] = {
        k: [] for k in ("tuner_first", "tuner_rerun", "plain_first", "plain_rerun")
    }
    loads: list[float] = []
    apply = [*tuner, "apply", "-p", "inference", "--layer", a.layer]
    try:
        for rep in range(a.reps):
            loads.append(round(os.getloadavg()[0], 1))
            # alternate which path goes first, so neither always runs on a warmer machine
            order = ("tuner", "plain") if rep % 2 == 0 else ("plain", "tuner")
            for who in order:
                sh([*tuner, "rollback"], env)
                for k in ("first", "rerun"):
                    cmd, e = (apply, env) if who == "tuner" else (plain, plain_env)
                    times[f"{who}_{k}"].append(sh(cmd, e, f"{who}_{k}"))
            print(
                f"rep {rep + 1} (load {loads[-1]}): "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
    finally:
        sh([*tuner, "sim", "down"], env)
    med = {k: round(statistics.median(v), 3) for k, v in times.items()}
    result = {
        "nodes": a.nodes,
        "reps": a.reps,
        "cores_per_socket": a.cores_per_socket,
        "layer": a.layer,
        "cpus": os.cpu_count(),
        "median_s": med,
        "speedup_first": round(med["plain_first"] / med["tuner_first"], 2),
        "speedup_rerun": round(med["plain_rerun"] / med["tuner_rerun"], 2),
        "all_s": times,
        "cpu_s": CPU,
        "load_avg_1min": loads,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in ("nodes", "median_s", "speedup_first", "speedup_rerun")},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
