"""Benchmark: `tuner export` of a 10,000-node report to every format (goal: each < 2 s).

    .venv/bin/python bench/export_bench.py [--nodes 10000] [--runs 3]

The report is the captured mlperf-llama2-70b report (tests/data/reports/) with its nodes
repeated and renamed up to N nodes (8 GPUs each, every 11th node with one excluded GPU).
Timed per format, in-process: load and validate the report, render, write atomically (the
whole `tuner export` minus interpreter start-up), and the whole CLI once as a subprocess.
Medians go to bench/results/export.json; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
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

    tmp = Path(tempfile.mkdtemp(prefix="tuner-bench-export-"))
    report = tmp / "report.json"
    big_report(a.nodes, report)
    results: dict[str, dict[str, float]] = {}
    t = time.perf_counter()
    inv = ex.load_report(str(report))
    load_s = time.perf_counter() - t
    for fmt in [*ex.FORMATS, "ansible-json"]:
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            inv = ex.load_report(str(report))
            if fmt == "prometheus":
                prometheus.write(inv, str(tmp / "out.prom"))
            else:
                real = fmt.removesuffix("-json")
                text = ex.render(inv, real, as_json=fmt.endswith("-json"))
                ex.write_text(str(tmp / f"out.{fmt}"), text)
            times.append(time.perf_counter() - t)
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
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        results[fmt] = {"in_process_s": round(statistics.median(times), 3), "cli_s": round(cli, 3)}
        print(
            f"{fmt:<14} in-process {results[fmt]['in_process_s']:.3f} s   CLI {cli:.3f} s",
            flush=True,
        )
    t = time.perf_counter()
    prometheus.write_per_node(inv, str(tmp / "per-node"))
    per_node = time.perf_counter() - t
    print(f"prometheus --per-node ({a.nodes} files) {per_node:.3f} s; load alone {load_s:.3f} s")
    doc = {
        "nodes": a.nodes,
        "gpus": inv.usable_gpus,
        "load_s": round(load_s, 3),
        "formats": results,
        "prometheus_per_node_s": round(per_node, 3),
        "report_bytes": report.stat().st_size,
    }
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
