"""Benchmark: `tuner report` for big fleets (the issue's measure: 1,000 nodes).

    .venv/bin/python bench/report_bench.py [--nodes 64 256 1000] [--runs 3] [--screenshots DIR]

The fleet is made from the lab-captured reports (tests/data/reports/lab): the 87-GPU
mlperf-llama2-70b gate report and the verify report with node03 drifted, their nodes
repeated and renamed up to N nodes (8 GPUs each, every 11th node with one excluded GPU, every
11th host drifted); the older side is the healthy 11-node gate, repeated the same way. Timed
in-process per N (median of --runs): load and validate both sides, build the page's model,
render, write atomically (the whole command minus interpreter start-up); and the whole CLI
once as a subprocess. With --screenshots, chromium renders each page (to judge readability).
Medians go to bench/results/report.json; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LAB = REPO / "tests/data/reports/lab"


def _names(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"gpu{i + 1:0{width}d}" for i in range(n)]


def big_inventory(src: Path, n: int, path: Path) -> None:
    base = json.loads(src.read_text())
    nodes = []
    for i, name in enumerate(_names(n)):
        node = json.loads(json.dumps(base["nodes"][i % len(base["nodes"])]))
        node["name"] = name
        nodes.append(node)
    base["nodes"] = nodes
    base["nodes_total"] = base["nodes_usable"] = n
    base["usable_gpus"] = sum(len(x["usable"]) for x in nodes)
    base["excluded_gpus"] = sum(len(x["excluded"]) for x in nodes)
    base["installed_gpus"] = base["usable_gpus"] + base["excluded_gpus"]
    base["summary"] = f"{base['usable_gpus']} of {base['installed_gpus']} GPUs usable"
    path.write_text(json.dumps(base))


def big_verify(src: Path, n: int, path: Path) -> None:
    base = json.loads(src.read_text())
    hosts = []
    for i, name in enumerate(_names(n)):
        h = json.loads(json.dumps(base["hosts"][i % len(base["hosts"])]))
        h["host"] = name
        hosts.append(h)
    base["hosts"] = hosts
    by: dict[str, int] = {}
    for h in hosts:
        by[h["status"]] = by.get(h["status"], 0) + 1
    base["summary"] = {"hosts": n, "by_status": by}
    path.write_text(json.dumps(base))


def one(frm: list[str], since: list[str], out: Path) -> dict[str, float]:
    from agent import htmlreport
    from agent.export import write_text
    from agent.htmlreport.render import render

    c0, t0 = time.process_time(), time.perf_counter()
    fleet = htmlreport.build(frm, since)
    t1 = time.perf_counter()
    page = render(fleet)
    t2 = time.perf_counter()
    write_text(str(out), page)
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    return {
        "load_build": t1 - t0, "render": t2 - t1, "write": t3 - t2, "total": t3 - t0, "cpu": cpu
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[64, 256, 1000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--screenshots", default=None, help="folder for chromium screenshots")
    ap.add_argument("--out", default=str(REPO / "bench/results/report.json"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tuner-bench-report-"))
    results: dict[str, Any] = {}
    try:
        for n in a.nodes:
            check, old, verify, old_verify = (tmp / f"{k}-{n}.json" for k in ("c", "o", "v", "ov"))
            big_inventory(LAB / "llama2-70b-check.json", n, check)
            big_inventory(LAB / "healthy-11-check.json", n, old)
            big_verify(LAB / "llama2-70b-verify-drift.json", n, verify)
            big_verify(LAB / "llama2-70b-verify-ok.json", n, old_verify)
            frm, since = [str(check), str(verify)], [str(old), str(old_verify)]
            page = tmp / f"fleet-{n}.html"
            runs = [one(frm, since, page) for _ in range(a.runs)]
            med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
            cmd = [str(Path(sys.executable).parent / "tuner"), "report"]
            for f in frm:
                cmd += ["--from", f]
            for f in since:
                cmd += ["--since", f]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            r = subprocess.run([*cmd, "--html", str(page)], capture_output=True, text=True)
            cli = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cli_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            assert r.returncode == 0, r.stderr
            size = page.stat().st_size
            inputs = sum(Path(f).stat().st_size for f in frm + since)
            results[str(n)] = {
                "nodes": n, "gpus": 8 * n, "in_process": med, "cli_s": round(cli, 3),
                "cli_cpu_s": round(cli_cpu, 3), "load_average": os.getloadavg()[0],
                "page_bytes": size, "input_bytes": inputs,
            }  # fmt: skip
            print(
                f"{n:5d} nodes ({8 * n} GPUs): in-process {med['total']:.2f} s "
                f"(load+build {med['load_build']:.2f}, render {med['render']:.2f}, "
                f"write {med['write']:.3f}; CPU {med['cpu']:.2f}); CLI {cli:.2f} s "
                f"(CPU {cli_cpu:.2f}); page {size / 1e6:.2f} MB "
                f"from {inputs / 1e6:.1f} MB of reports",
                flush=True,
            )
            if a.screenshots:
                browser = shutil.which("chromium")
                if browser:
                    d = Path(a.screenshots)
                    d.mkdir(parents=True, exist_ok=True)
                    subprocess.run(
                        [browser, "--headless", "--no-sandbox", "--disable-gpu",
                         "--hide-scrollbars", f"--user-data-dir={tmp / 'prof'}",
                         "--window-size=1600,1400", f"--screenshot={d / f'report-{n}.png'}",
                         page.as_uri()],
                        capture_output=True, timeout=300, check=False,
                    )  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
