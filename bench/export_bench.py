"""Benchmark: `tuner export` of a 10,000-node report to every format (goal: each < 2 s).

    .venv/bin/python bench/export_bench.py [--nodes 10000] [--runs 3]

The report is the captured mlperf-llama2-70b report (tests/data/reports/) with its nodes
repeated and renamed up to N nodes (8 GPUs each, every 11th node with one excluded GPU).
Timed per format, in-process: load and validate the report, render, write atomically (the
whole `tuner export` minus interpreter start-up, with the collector paused as the CLI does),
and the whole CLI once as a subprocess. Wall and CPU time (the process's, user + system;
the CLI's: its child's) with the 1-minute load average next to each: on a shared machine
CPU is the figure to compare. Medians go to bench/results/export.json; docs/performance.md
records them.
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
sys.path.insert(0, str(REPO))


def big_report(n: int, path: Path) -> None:
    base = json.loads((REPO / "tests/data/reports/mlperf-llama2-70b.json").read_text())
    width = len(str(n))
    nodes = []
    for i in range(n):
        src = json.loads(json.dumps(base["nodes"][i % len(base["nodes"])]))
        src["name"] = f"gpu{i + 1:0{width}d}"
        nodes.append(src)
    base["nodes"] = nodes
    base["nodes_total"] = n
    base["nodes_usable"] = n
    base["usable_gpus"] = sum(len(x["usable"]) for x in nodes)
    base["installed_gpus"] = 8 * n
    base["excluded_gpus"] = sum(len(x["excluded"]) for x in nodes)
    path.write_text(json.dumps(base))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench/results/export.json"))
    a = ap.parse_args()
    from agent import export as ex
    from agent.export import prometheus
    from agent.loaders import gc_paused

    tmp = Path(tempfile.mkdtemp(prefix="tuner-bench-export-"))
    report = tmp / "report.json"
    big_report(a.nodes, report)
    results: dict[str, dict[str, float]] = {}
    t, c = time.perf_counter(), time.process_time()
    inv = ex.load_report(str(report))
    load_s, load_cpu = time.perf_counter() - t, time.process_time() - c
    for fmt in [*ex.FORMATS, "ansible-json"]:
        times, cpus = [], []
        for _ in range(a.runs):
            del inv
            t, c = time.perf_counter(), time.process_time()
            with gc_paused():
                inv = ex.load_report(str(report))
                if fmt == "prometheus":
                    prometheus.write(inv, str(tmp / "out.prom"))
                else:
                    real = fmt.removesuffix("-json")
                    text = ex.render(inv, real, as_json=fmt.endswith("-json"))
                    ex.write_text(str(tmp / f"out.{fmt}"), text)
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        load_avg = os.getloadavg()[0]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(
            [
                str(Path(sys.executable).parent / "tuner"),
                "export",
                "--from",
                str(report),
                "--format",
                fmt.removesuffix("-json"),
                "-o",
                str(tmp / (f"cli.{fmt}" + (".json" if fmt.endswith("-json") else ""))),
            ],
            capture_output=True,
            text=True,
        )
        cli = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        results[fmt] = {
            "in_process_s": round(statistics.median(times), 3),
            "in_process_cpu_s": round(statistics.median(cpus), 3),
            "cli_s": round(cli, 3),
            "cli_cpu_s": round(cli_cpu, 3),
            "load_avg_1min": round(load_avg, 1),
        }
        x = results[fmt]
        print(
            f"{fmt:<14} in-process {x['in_process_s']:.3f} s (cpu {x['in_process_cpu_s']:.3f})"
            f"   CLI {cli:.3f} s (cpu {cli_cpu:.3f})   load {load_avg:.1f}",
            flush=True,
        )
    t = time.perf_counter()
    with gc_paused():
        prometheus.write_per_node(inv, str(tmp / "per-node"))
    per_node = time.perf_counter() - t
    print(f"prometheus --per-node ({a.nodes} files) {per_node:.3f} s; load alone {load_s:.3f} s")
    doc = {
        "nodes": a.nodes,
        "gpus": inv.usable_gpus,
        "load_s": round(load_s, 3),
        "load_cpu_s": round(load_cpu, 3),
        "formats": results,
        "prometheus_per_node_s": round(per_node, 3),
        "report_bytes": report.stat().st_size,
    }
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
