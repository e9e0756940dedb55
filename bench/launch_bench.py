"""Benchmark: `tuner launch --template probe`, launch to all engines registered, on N
simulated nodes (8 GPUs each, one sshd per node, engines over real loopback TCP).

    .venv/bin/python bench/launch_bench.py [--nodes 8 32 64] [--reps 1]

Per N: `tuner sim up`, `tuner check --output`, then the launch (`--no-recheck`). Reported:
`register_s` = the head's "all engines registered" time minus the launch's start (before
the first SSH handshake; same clock, one machine), and `launch_s` = the whole launch (SSH,
probe start-up with amdsmi on every node, work, stop, cleanup). Medians go to
bench/results/launch.json; docs/performance.md records them.
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
TUNER = str(Path(sys.executable).parent / "tuner")


def tuner(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    r = subprocess.run([TUNER, *args], env=env, capture_output=True, text=True, cwd=REPO)
    if check and r.returncode != 0:
        raise SystemExit(f"tuner {' '.join(args)}: {r.stderr[-3000:]}")
    return r


def free_pair() -> int:
    """A port P with P+1 free too (the machine is shared: fixed ports collide)."""
    import socket

    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65000:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise SystemExit("no free port pair")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "bench/results/launch.json"))
    a = ap.parse_args()
    results = {}
    for n in a.nodes:
        state = Path(tempfile.mkdtemp(prefix=f"tuner-bench-launch-{n}-")) / "state"
        t = time.perf_counter()
        tuner(
            state,
            "sim",
            "up",
            "--nodes",
            str(n),
            "--cores-per-socket",
            "2",
            "--bmc-vendor",
            "none",
            "--connection",
            "ssh",
            "--runtime",
            "controller",  # nodes borrow this Python: no `tuner provision` in the figure
        )
        up_s = time.perf_counter() - t
        try:
            report = state / "report.json"
            tuner(state, "check", "--output", str(report), "--deadline", "600")
            reg, total = [], []
            for _ in range(a.reps):
                r = tuner(
                    state,
                    "launch",
                    "--from",
                    str(report),
                    "--template",
                    "probe",
                    "--no-recheck",
                    "--port",
                    str(free_pair()),
                    "--json",
                    "--probe-deadline",
                    "300",
                )
                doc = json.loads(r.stdout)
                p = doc["probe"]
                assert p["ok"] and len(p["engines"]) == 8 * n, p["reasons"]
                reg.append(p["all_registered_at"] - doc["started_at"])
                total.append(doc["seconds"])
            results[str(n)] = {
                "engines": 8 * n,
                "register_s": round(statistics.median(reg), 2),
                "launch_s": round(statistics.median(total), 2),
                "sim_up_s": round(up_s, 1),
            }
            print(n, results[str(n)], flush=True)
        finally:
            tuner(state, "sim", "down", check=False)
    load = os.getloadavg()
    Path(a.out).write_text(json.dumps({"results": results, "loadavg": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
