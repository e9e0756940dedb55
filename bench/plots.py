"""The figures of docs/performance.md, drawn from the raw results in bench/results/.

    python3 bench/plots.py            # writes docs/img/*.svg

matplotlib is not a dependency of tuner: when it cannot be imported, the script makes its
own virtual environment (.venv-plots/ in the repository, ignored by git), installs
matplotlib there with pip, and runs itself again with that Python. The figures are SVG
with their text kept as text (small, diffable, searchable).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results"
IMG = REPO / "docs/img"
PLOT_VENV = REPO / ".venv-plots"


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        if os.environ.get("TUNER_PLOTS_REEXEC"):
            raise SystemExit("bench/plots.py: matplotlib did not install") from None
        py = PLOT_VENV / "bin/python"
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PLOT_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "matplotlib"], check=True)
        env = dict(os.environ, TUNER_PLOTS_REEXEC="1")
        os.execve(str(py), [str(py), __file__, *sys.argv[1:]], env)
    matplotlib.use("Agg")
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text
            "svg.hashsalt": "tuner",  # stable ids: a re-run without new data is no diff
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    import matplotlib.pyplot as plt

    return plt


def _load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text())


def _save(fig: Any, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / name
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {path.relative_to(REPO)}")


def fanout(plt: Any) -> None:
    """Verify and the gate at 64 nodes: tuner, plain ansible-playbook, tuner's settings."""
    variants = [
        ("tuner", "tuner"),
        ("plain", "plain ansible-playbook"),
        ("tuned", "tuned playbook"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), sharey=False)
    for ax, key, label in (
        (axes[0], "wall_s", "wall (s)"),
        (axes[1], "cpu_s", "controller CPU (s)"),
    ):
        for k, cmd in enumerate(("verify", "check")):
            data = _load(f"fanout-{cmd}-64.json")
            for j, (v, vlabel) in enumerate(variants):
                x = k * 4 + j
                runs = data[key][v]
                med = sorted(runs)[len(runs) // 2] if len(runs) % 2 else sum(runs) / len(runs)
                ax.bar(x, med, color=f"C{j}", label=vlabel if k == 0 else None)
                ax.plot([x] * len(runs), runs, "k.", markersize=5)
        ax.set_xticks([1, 5], ["verify", "check (gate)"])
        ax.set_ylabel(label)
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle("64 simulated nodes, 2 shared cores: bars median, dots each repetition")
    _save(fig, "fanout-64.svg")


def launch(plt: Any) -> None:
    data = _load("launch.json")["results"]
    nodes = sorted(int(n) for n in data)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(
        nodes, [data[str(n)]["register_s"] for n in nodes], "o-", label="all engines registered"
    )
    ax.plot(nodes, [data[str(n)]["launch_s"] for n in nodes], "s-", label="whole launch")
    for n in nodes:
        ax.annotate(f"{data[str(n)]['engines']} engines", (n, data[str(n)]["launch_s"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    ax.set_xlabel("nodes (8 GPUs each)")
    ax.set_ylabel("seconds")
    ax.set_xticks(nodes)
    ax.legend(frameon=False)
    ax.set_title("tuner launch --template probe (load 10-35 on 2 cores)", fontsize=10)
    _save(fig, "launch-scaling.svg")


def export(plt: Any) -> None:
    """CPU time where the results have it (wall times on a loaded machine say little), the
    wall times as dots beside the bars."""
    data = _load("export.json")
    fmts = list(data["formats"])
    cpu = "in_process_cpu_s" in data["formats"][fmts[0]]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    y = range(len(fmts))
    for off, key, label in ((-0.2, "in_process", "in-process"), (0.2, "cli", "CLI")):
        f = data["formats"]
        ax.barh([i + off for i in y], [f[n][f"{key}_cpu_s" if cpu else f"{key}_s"] for n in fmts],
                0.4, label=label + (" CPU" if cpu else ""))  # fmt: skip
        if cpu:
            ax.plot([f[n][f"{key}_s"] for n in fmts], [i + off for i in y], "k.", markersize=4,
                    label="wall" if off > 0 else None)  # fmt: skip
    load = data.get("load_cpu_s" if cpu else "load_s", data["load_s"])
    ax.axvline(load, color="k", ls=":", lw=1, label=f"loading it ({load} s)")
    ax.axvline(2, color="C3", ls="--", lw=1, label="the 2 s goal")
    ax.set_yticks(list(y), fmts)
    ax.invert_yaxis()
    ax.set_xlabel("seconds" + (" (bars CPU, dots wall)" if cpu else ""))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    loads = [f[n].get("load_avg_1min") for f in [data["formats"]] for n in fmts]
    shown = [x for x in loads if x is not None]
    where = f", load {min(shown):.0f}-{max(shown):.0f}" if shown else ""
    ax.set_title(f"tuner export of a {data['nodes']:,}-node report ({data['gpus']:,} GPUs)"
                 f"{where}", fontsize=10)  # fmt: skip
    _save(fig, "export-10000.svg")


def report(plt: Any) -> None:
    data = _load("report.json")
    nodes = sorted(int(n) for n in data)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    get = lambda n, *k: data[str(n)][k[0]] if len(k) == 1 else data[str(n)][k[0]][k[1]]  # noqa: E731
    ax.plot(nodes, [get(n, "in_process", "total") for n in nodes], "o-", label="in-process, wall")
    ax.plot(nodes, [get(n, "in_process", "cpu") for n in nodes], "o--", label="in-process, CPU")
    ax.plot(nodes, [get(n, "cli_s") for n in nodes], "s-", label="whole CLI, wall")
    ax.plot(nodes, [get(n, "cli_cpu_s") for n in nodes], "s--", label="whole CLI, CPU")
    ax.set_xscale("log")
    ax.set_xticks(nodes, [f"{n}\n({8 * n:,} GPUs)" for n in nodes])
    ax.minorticks_off()
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds")
    ax.legend(frameon=False, fontsize=8)
    loads = ", ".join(f"{data[str(n)]['load_average']:.0f}" for n in nodes)
    ax.set_title(f"tuner report --from check --from verify --since both (load {loads})",
                 fontsize=9)  # fmt: skip
    _save(fig, "report-scaling.svg")


def executors(plt: Any) -> None:
    """How `tuner verify`'s cost grows with the fleet, alone and through two executors
    (bench/executors.py; docs/performance.md "Execution nodes"): one run of 64, 256 and
    1,000 nodes (executors-scale.json)."""
    runs: dict[str, dict[int, dict[str, Any]]] = {"alone": {}, "executors": {}}
    for size in _load("executors-scale.json")["sizes"]:
        for r in size["runs"]:
            runs[r["mode"]][size["nodes"]] = r
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    series = (
        ("alone", "o-", "controller alone"),
        ("executors", "s-", "controller, 2 executors"),
    )

    def each(ax: Any, key: Any, ylabel: str) -> None:
        for mode, style, label in series:
            nodes = sorted(runs[mode])
            ax.plot(nodes, [key(runs[mode][n]) for n in nodes], style, label=label)
        ax.set_xscale("log")
        every = sorted(set(runs["alone"]) | set(runs["executors"]))
        ax.set_xticks(every, [str(n) for n in every])
        ax.minorticks_off()
        ax.set_xlabel("nodes")
        ax.set_ylabel(ylabel)

    each(axes[0], lambda r: r["seconds"], "wall time (s)")
    each(axes[1], lambda r: r["controller_cpu_s"], "CPU (s)")
    ex = sorted(runs["executors"])
    axes[1].plot(ex, [max(e["cpu_s"] for e in runs["executors"][n]["executors"]) for n in ex],
                 "^--", label="each executor")  # fmt: skip
    axes[1].set_yscale("log")
    each(axes[2], lambda r: r["controller_sockets_peak"], "sockets (peak)")
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.legend(frameon=False, fontsize=8)
    loads = ", ".join(
        f"{n}: {max(r['load_avg'][0] for m in runs if n in runs[m] for r in [runs[m][n]]):.0f}"
        for n in sorted(set(runs["alone"]) | set(runs["executors"]))
    )
    fig.suptitle(
        f"tuner verify, OS layer, small simulated nodes on one 2-core machine (load {loads})",
        fontsize=10,
    )
    _save(fig, "executors-scaling.svg")


def main() -> None:
    plt = _matplotlib()
    for draw in (fanout, launch, export, report, executors):
        draw(plt)
        plt.close("all")


if __name__ == "__main__":
    main()
