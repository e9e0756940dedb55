"""Benchmark: the parallelism-aware launch plan of 10,000 nodes (goal: <= 1 s per plan).

    .venv/bin/python bench/launch_plan_bench.py [--nodes 10000] [--runs 3]

The report is the captured mlperf-llama2-70b check with its XGMI link graph
(tests/data/reports/mlperf-llama2-70b-xgmi.json) with its nodes repeated and renamed up to N
nodes (8 MI355X each, every 11th with one excluded GPU); every 50th node also has one XGMI link
down (the exact placement search runs there). Timed in-process: make_plan with the vLLM
template for TP 1, 2, 4, 8, plus the Slurm script and the Kubernetes manifests of the TP 2 plan
(loading the report is `tuner export`'s benchmark). Medians go to
bench/results/launch_plan.json; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def big_inventory(n: int):  # type: ignore[no-untyped-def]
    from agent.gpu.gate import GpuInventory

    base = GpuInventory.model_validate_json(
        (REPO / "tests/data/reports/mlperf-llama2-70b-xgmi.json").read_text()
    )
    width = len(str(n))
    nodes = []
    for i in range(n):
        src = base.nodes[i % len(base.nodes)].model_copy(deep=True)
        src.name = f"gpu{i + 1:0{width}d}"
        if i % 50 == 0:
            src.xgmi_down = [[1, 2]]
        nodes.append(src)
    base.nodes = nodes
    return base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="default bench/results/launch_plan.json")
    a = ap.parse_args()
    from agent.launch.backends import LEADER_ADDRESS, k8s_manifests, slurm_script
    from agent.launch.plan import load_template, make_plan

    inv = big_inventory(a.nodes)
    c = time.process_time()
    x = 0
    for i in range(10_000_000):  # calibration: this machine's speed now (CPU seconds)
        x += i
    calibration = round(time.process_time() - c, 3)
    vllm = load_template("vllm")
    out: dict[str, object] = {"nodes": a.nodes, "runs": a.runs}
    for tp in (1, 2, 4, 8):
        times, cpu = [], []
        for _ in range(a.runs):
            t, c = time.perf_counter(), time.process_time()
            p = make_plan(
                inv, "r.json", ["vllm", "serve", "M"], head=None, port=29500,
                policy="equal", template=vllm, tp=tp,
            )  # fmt: skip
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[f"plan_tp{tp}_s"] = round(statistics.median(times), 3)
        out[f"plan_tp{tp}_cpu_s"] = round(statistics.median(cpu), 3)
        out[f"engines_tp{tp}"] = p.data_parallel_size
    p = make_plan(
        inv, "r.json", ["vllm", "serve", "M"], head=None, port=29500, policy="equal",
        template=vllm, tp=2, head_value=LEADER_ADDRESS,
    )  # fmt: skip
    for name, fn in (
        ("slurm_script_s", lambda: slurm_script(p)),
        ("k8s_manifests_s", lambda: k8s_manifests(p, "img")),
    ):
        times, cpu = [], []
        for _ in range(a.runs):
            t, c = time.perf_counter(), time.process_time()
            fn()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[name] = round(statistics.median(times), 3)
        out[name[:-2] + "_cpu_s"] = round(statistics.median(cpu), 3)
    out["calibration_10M_adds_cpu_s"] = calibration
    out["load_average"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=1))
    res = Path(a.out) if a.out else REPO / "bench" / "results" / "launch_plan.json"
    res.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
