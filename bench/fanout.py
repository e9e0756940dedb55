"""Benchmark: fleet fan-out of `tuner verify` / `tuner check` / an idempotent `tuner apply`
against the same work through plain `ansible-playbook` with Ansible's defaults, and the
accelerators evaluated for issue 11 (Mitogen), all interleaved in one run.

    .venv/bin/python bench/fanout.py --command check --nodes 64 --reps 3
    .venv/bin/python bench/fanout.py --command verify --nodes 64 --reps 3
    .venv/bin/python bench/fanout.py --command verify --nodes 16 --variants tuned,mitogen,plain
    .venv/bin/python bench/fanout.py --command check --nodes 256 --cores-per-socket 2 --reps 1

Variants (`--variants`, in this order each repetition, the order reversed every other one):
- `tuner`: the tuner command itself (CLI start-up, the run, the report);
- `plain`: `ansible-playbook` on the same playbook and variables with no ANSIBLE_* setting
  (Ansible's defaults: 5 forks, no pipelining, ControlPersist 60 s in ~/.ansible/cp);
- `tuned`: `ansible-playbook` with tuner's settings (agent/runner.py `tuned_envvars`);
- `mitogen`: `tuned` plus Mitogen's `mitogen_linear` strategy (needs `pip install mitogen`).

Every figure is printed with the 1-minute load average and the CPU time (user + system of
the command and its children on the controller; the nodes' sshd and module processes are
not its children). Results: bench/results/fanout-<command>-<nodes>.json.
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


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return wall, cpu, p.returncode, p.stdout[-1500:] + p.stderr[-1500:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--command", choices=("check", "verify", "apply"), default="verify")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cores-per-socket", type=int, default=2)
    ap.add_argument("--variants", default="tuner,plain")
    ap.add_argument("--deadline", type=int, default=600, help="check: seconds a node may take")
    ap.add_argument("--state-dir", help="use the fleet already up in this state folder")
    ap.add_argument("--out")
    a = ap.parse_args()
    variants = a.variants.split(",")
    sys.path.insert(0, str(REPO))
    from agent.runner import MAX_FORKS, tuned_envvars

    own = not a.state_dir
    state = Path(a.state_dir or tempfile.mkdtemp(prefix="tuner-bench-fanout-"))
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    tuner = str(BIN / "tuner")
    if own:
        up = [tuner, "sim", "up", "-n", str(a.nodes), "--connection", "ssh"]
        up += ["--cores-per-socket", str(a.cores_per_socket), "--bmc-vendor", "none"]
        up += ["--runtime", "controller"]  # nodes borrow this Python: no tuner provision
        w, c, rc, out = timed(up, env)
        if rc:
            sys.exit(f"sim up failed: {out}")
        print(f"sim up {a.nodes}: {w:.1f} s (cpu {c:.1f} s)", flush=True)
    inv = str(state / "sim/inventory.yml")
    nodes = len(json.loads((state / "sim/fleet.json").read_text())["nodes"])

    if a.command == "check":
        # a long deadline: on a loaded machine a node's collector can take over the
        # default 60 s, and a node past its deadline fails (the figure would be a failure)
        playbook, extra = "gpu.yml", {"tuner_deadline": a.deadline}
        tuner_cmd = [tuner, "check", "--deadline", str(a.deadline)]
    else:
        from agent.profiles import load_profile

        prof = load_profile("inference")
        extra = {
            "tuner_mode": a.command,
            "tuner_settings": prof.os_settings(),
            "tuner_persist": prof.os.persist,
        }
        playbook = "os.yml"
        tuner_cmd = [tuner, a.command, "-p", "inference", "--layer", "os"]
        if a.command == "apply":  # idempotent: bring the nodes to the profile once
            timed(tuner_cmd, env)
    xfile = state / f"bench-extra-{a.command}.json"
    xfile.write_text(json.dumps(extra))
    book = [str(BIN / "ansible-playbook"), "-i", inv, str(REPO / "playbooks" / playbook)]
    book += ["-e", f"@{xfile}"]
    if a.command == "verify":  # what tuner verify runs (agent/layers/os.py): the same playbook
        book += ["--skip-tags", "tuner_lock"]
    base = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    tuned = {**base, **tuned_envvars(min(nodes, MAX_FORKS))}
    site = next((REPO / ".venv/lib").glob("python3*/site-packages"), None)
    mito = str(site / "ansible_mitogen/plugins/strategy") if site else ""
    runs = {
        "tuner": (tuner_cmd, env),
        "plain": (book, base),
        "tuned": (book, tuned),
        # tuned plus tuner's own event callback (agent/ansible_plugins/callback/tuner_events.py)
        "lean": (
            book,
            {
                **tuned,
                "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "agent/ansible_plugins/callback"),
                "ANSIBLE_STDOUT_CALLBACK": "tuner_events",
            },
        ),
        "mitogen": (
            book,
            {**tuned, "ANSIBLE_STRATEGY_PLUGINS": mito, "ANSIBLE_STRATEGY": "mitogen_linear"},
        ),
    }
    walls: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    loads: list[float] = []
    try:
        for rep in range(a.reps):
            order = variants if rep % 2 == 0 else list(reversed(variants))
            row = []
            for v in order:
                loads.append(round(os.getloadavg()[0], 1))
                w, c, rc, out = timed(*runs[v])
                if rc not in (0, 1) or (rc == 1 and v != "tuner"):
                    sys.exit(f"{v} failed ({rc}): {out}")
                walls[v].append(round(w, 2))
                cpus[v].append(round(c, 2))
                row.append(f"{v} {w:.2f} s (cpu {c:.2f}, load {loads[-1]})")
            print(f"rep {rep + 1}: " + ", ".join(row), flush=True)
    finally:
        if own:
            w, c, _, _ = timed([tuner, "sim", "down"], env)
            print(f"sim down {nodes}: {w:.1f} s (cpu {c:.1f} s)", flush=True)
    med = {v: statistics.median(walls[v]) for v in variants}
    result = {
        "command": a.command,
        "nodes": nodes,
        "reps": a.reps,
        "cpus": os.cpu_count(),
        "median_wall_s": med,
        "median_cpu_s": {v: statistics.median(cpus[v]) for v in variants},
        "speedup_vs_plain": {
            v: round(med["plain"] / med[v], 2) for v in variants if "plain" in med and med[v]
        },
        "wall_s": walls,
        "cpu_s": cpus,
        "load_avg_1min": loads,
    }
    out_file = Path(a.out or REPO / f"bench/results/fanout-{a.command}-{nodes}.json")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("median_wall_s", "speedup_vs_plain")}, indent=1))


if __name__ == "__main__":
    main()
