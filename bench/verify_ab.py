"""`tuner verify --profile inference` on one simulated fleet, this tree against another
(A/B, alternating), every layer (kernel command line, BIOS through the simulated BMCs, OS).

    .venv/bin/python bench/verify_ab.py --other /tmp/tuner-before --nodes 16 --reps 3

`--other DIR` is another source tree (e.g. `git archive <commit> | tar -x -C DIR`), run as
`python -m agent.cli` with this venv. The fleet is made once (`sim up --runtime controller`,
full-size nodes unless `--cores-per-socket`), both trees verify it in turn (ABAB... then
BABA... so a load change hits both alike), then it is taken down. Wall and CPU time (user +
system of the command and its children: Ansible, the modules, the BIOS module's Redfish
calls; the sshds and the BMC simulator are not children) are printed with the load average.
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


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--other", required=True, help="the other source tree")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cores-per-socket", type=int, default=64)
    ap.add_argument("--profile", default="inference")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="tuner-bench-verify-"))
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    this = [str(Path(sys.executable).parent / "tuner")]
    variants = {
        "this": (this, REPO),
        "other": ([sys.executable, "-m", "agent.cli"], Path(args.other)),
    }
    up = [*this, "sim", "up", "-n", str(args.nodes), "--runtime", "controller"]
    up += ["--cores-per-socket", str(args.cores_per_socket), "--json"]
    subprocess.run(up, env=env, check=True, capture_output=True)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    loads = [os.getloadavg()[0]]
    try:
        for k in variants:  # warm-up: SSH masters, compiled bytecode
            timed([*variants[k][0], "verify", "-p", args.profile, "--json"], env, variants[k][1])
        for i in range(args.reps):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for k in order:
                cmd = [*variants[k][0], "verify", "-p", args.profile, "--json"]
                w, c, _ = timed(cmd, env, variants[k][1])
                walls[k].append(w)
                cpus[k].append(c)
                loads.append(os.getloadavg()[0])
    finally:
        subprocess.run([*this, "sim", "down"], env=env, capture_output=True)
    out = {
        k: {
            "wall_median": round(statistics.median(walls[k]), 2),
            "wall": [round(x, 2) for x in walls[k]],
            "cpu_median": round(statistics.median(cpus[k]), 2),
        }
        for k in variants
    }
    print(
        json.dumps(
            {"nodes": args.nodes, "reps": args.reps, "load": [round(x, 1) for x in loads], **out},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
