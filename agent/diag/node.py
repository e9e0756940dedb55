"""Node side of the diagnostics (stdlib only): find AMD's tools, run one under a deadline.

A tool runs in its own session (process group); at its deadline the whole group gets
SIGTERM, then SIGKILL after a grace period, so nothing it started outlives the budget. The
output is kept (bounded) whatever happened: the controller parses it, and keeps what it
cannot parse as evidence. Commands are argument lists, never shell strings."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

MAX_OUTPUT = 4 * 1024 * 1024  # bytes of a tool's output read back
GRACE = 3.0  # seconds between SIGTERM and SIGKILL of a tool's group

# Where ROCm installs the tools (ROCm's install layout; RVS ships in /opt/rocm/bin, the
# rccl-tests binaries are built by the site, commonly under /opt/rccl-tests/build).
RVS_CANDIDATES = ("opt/rocm/bin/rvs", "opt/rocm/extras-7/bin/rvs", "usr/bin/rvs")
RCCL_CANDIDATES = (
    "opt/rccl-tests/build/all_reduce_perf",
    "opt/rocm/bin/all_reduce_perf",
    "usr/local/bin/all_reduce_perf",
)
# TransferBench: the ROCm package installs /opt/rocm/bin/TransferBench; a source build
# (cmake -DCMAKE_INSTALL_PREFIX=/opt/transferbench) installs /opt/transferbench/bin.
TB_CANDIDATES = (
    "opt/rocm/bin/TransferBench",
    "opt/transferbench/bin/TransferBench",
    "opt/TransferBench/TransferBench",
)
# mpirun for the cross-node all-reduce (Open MPI; ROCm's multi-node RCCL docs build it
# under /opt/ompi)
MPI_CANDIDATES = ("opt/ompi/bin/mpirun", "usr/bin/mpirun", "usr/local/bin/mpirun")


def find_tool(root: str, candidates: tuple[str, ...], override: str | None = None) -> str | None:
    """The tool's path under the node root `root`, or None. `override`: a path the
    inventory gives (host variable), used as is when executable."""
    base = Path(root)
    paths = [override] if override else []
    paths += [str(base / c) for c in candidates]
    for p in paths:
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    if not override and root in ("", "/"):
        found = shutil.which(Path(candidates[0]).name)
        if found:
            return found
    return None


def run_tool(
    argv: list[str], deadline: float, env: dict[str, str] | None = None, cwd: str | None = None
) -> dict[str, object]:
    """Run `argv` for at most `deadline` seconds: {rc, seconds, timed_out, output}."""
    start = time.monotonic()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        p = subprocess.Popen(  # noqa: S603 - an argument list from tuner's own plan
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        return {"rc": None, "seconds": 0.0, "timed_out": False, "output": "", "missing": str(e)}
    timed_out = False
    try:
        out, _ = p.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(p)
        out, _ = p.communicate()
    text = (out or b"")[-MAX_OUTPUT:].decode("utf-8", "replace")
    return {
        "rc": p.returncode,
        "seconds": round(time.monotonic() - start, 3),
        "timed_out": timed_out,
        "output": text,
    }


def kill_group(p: subprocess.Popen[bytes], grace: float = GRACE) -> None:
    """End a process started with a session of its own, and its whole group: SIGTERM, then
    SIGKILL after `grace` seconds, and SIGKILL for what is left of the group once the leader
    is gone (agent/runner.py ends a canceled Ansible run with it too)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            # the leader is gone; its group may not be: SIGKILL what is left
            if sig == signal.SIGTERM:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        except subprocess.TimeoutExpired:
            continue


# RVS actions tuner runs, from RVS's own MI355X configurations (conf/MI355X/levels/
# rvs_level_2.conf: hbm_basic, xgmi_interface, pcie_interface; gst_single.conf:
# gst-946Tflops-8K8K16K-trig-fp16; iet_stress.conf), written as RVS reads them.
RVS_ACTIONS = {
    "rvs.pbqt": (
        "- name: xgmi_interface\n  device: all\n  module: pbqt\n  log_interval: 5000\n"
        "  duration: 20000\n  peers: all\n  test_bandwidth: true\n  bidirectional: false\n"
        "  parallel: true\n  block_size: 67108864\n  device_id: all\n"
    ),
    "rvs.pebb": (
        "- name: pcie_interface\n  device: all\n  module: pebb\n  duration: 20000\n"
        "  device_to_host: false\n  host_to_device: true\n  parallel: true\n"
        "  block_size: 67108864\n  link_type: 2\n"
    ),
    "rvs.babel": (
        "- name: hbm_basic\n  device: all\n  module: babel\n  parallel: true\n  count: 1\n"
        "  num_iter: 100\n  array_size: 865075200\n  test_type: 2\n  mibibytes: false\n"
        "  o/p_csv: false\n  read: true\n  write: true\n  subtest: 0\n  dwords_per_lane: 4\n"
        "  chunks_per_block: 1\n  tb_size: 512\n"
    ),
    "rvs.gst": (
        "- name: gst-946Tflops-8K8K16K-trig-fp16\n  device: all\n  module: gst\n"
        "  log_interval: 3000\n  ramp_interval: 5000\n  duration: 15000\n  hot_calls: 10000\n"
        "  copy_matrix: false\n  target_stress: 946000\n  matrix_size_a: 8192\n"
        "  matrix_size_b: 8192\n  matrix_size_c: 16384\n  matrix_init: trig\n"
        "  data_type: fp16_r\n  compute_type: fp32_r\n  transa: 1\n  transb: 0\n  alpha: 1\n"
        "  beta: 0\n  blas_source: hipblaslt\n"
    ),
    "rvs.iet": (
        "- name: iet-stress-1400W\n  device: all\n  module: iet\n  parallel: true\n"
        "  duration: 300000\n  ramp_interval: 10000\n  log_interval: 5000\n"
        "  target_power: 1400\n  matrix_size: 8640\n"
    ),
}


def _rccl_argv(tool: str, n: int) -> list[str]:
    # AMD's MI355X acceptance command: all_reduce_perf -b 8 -e 8G -f 2 -g 8
    return [tool, "-b", "8", "-e", "8G", "-f", "2", "-g", str(n)]


def run_plan(
    root: str,
    tests: list[dict[str, object]],
    gpus: list[dict[str, object]],
    narrow: dict[str, object] | None = None,
    budget: float | None = None,
    tools: dict[str, str] | None = None,
) -> list[dict[str, object]]:
    """Run the planned tests on this node, in order, each under its deadline; an
    all-reduce below `narrow['min_busbw']` at `narrow['message_bytes']` is rerun without
    each GPU in turn (`rccl.all_reduce/without/<bdf>`) while the budget lasts.
    `gpus`: [{bdf, hip}]; `tools`: overrides {rvs, all_reduce_perf} (host variables)."""
    import tempfile

    try:  # shipped to nodes beside this file as module_utils
        from ansible.module_utils.tuner_diag_parse import (  # type: ignore[import-not-found]
            parse_rccl,
        )
    except ImportError:
        from agent.diag.parse import parse_rccl

    tools = tools or {}
    start = time.monotonic()
    out: list[dict[str, object]] = []
    rvs = find_tool(root, RVS_CANDIDATES, tools.get("rvs"))
    rccl = find_tool(root, RCCL_CANDIDATES, tools.get("all_reduce_perf"))
    tb = find_tool(root, TB_CANDIDATES, tools.get("transferbench"))

    def left() -> float:
        return float("inf") if budget is None else budget - (time.monotonic() - start)

    def missing(name: str, tool: str) -> dict[str, object]:
        return {"test": name, "rc": None, "seconds": 0.0, "missing": f"{tool} not found"}

    with tempfile.TemporaryDirectory(prefix="tuner-diag-") as tmp:
        for t in tests:
            name, deadline = str(t["name"]), float(t["deadline"])  # type: ignore[arg-type]
            deadline = min(deadline, max(1.0, left()))
            if name.startswith("rvs."):
                if rvs is None:
                    out.append(missing(name, "rvs"))
                    continue
                conf = Path(tmp) / f"{name}.conf"
                # one-writer: exempt, a file in the 0700 temp folder this run made
                conf.write_text("actions:\n" + RVS_ACTIONS[name])  # one-writer: private
                r = run_tool([rvs, "-c", str(conf)], deadline)
            elif name == "rccl.all_reduce":
                if rccl is None:
                    out.append(missing(name, "all_reduce_perf (rccl-tests)"))
                    continue
                hips = ",".join(str(g["hip"]) for g in gpus)
                r = run_tool(_rccl_argv(rccl, len(gpus)), deadline, {"HIP_VISIBLE_DEVICES": hips})
            elif name == "transferbench.p2p":
                if tb is None:
                    out.append(missing(name, "TransferBench"))
                    continue
                # GPU k of TransferBench is the k-th visible device: gpus' order
                hips = ",".join(str(g["hip"]) for g in gpus)
                r = run_tool([tb, "p2p"], deadline, {"HIP_VISIBLE_DEVICES": hips})
            else:
                continue
            r["test"] = name
            out.append(r)
            if name == "rccl.all_reduce" and narrow and not r.get("timed_out") and len(gpus) > 2:
                bw = parse_rccl(str(r["output"])).busbw_at(int(narrow["message_bytes"]))  # type: ignore[call-overload]
                if bw is not None and bw < float(narrow["min_busbw"]):  # type: ignore[arg-type]
                    for g in gpus:
                        if left() < deadline:
                            break
                        rest = [x for x in gpus if x is not g]
                        hips = ",".join(str(x["hip"]) for x in rest)
                        s = run_tool(
                            _rccl_argv(str(rccl), len(rest)),
                            deadline,
                            {"HIP_VISIBLE_DEVICES": hips},
                        )
                        s["test"] = f"{name}/without/{g['bdf']}"
                        out.append(s)
    return out


def run_cluster(
    root: str, cluster: dict[str, object], tools: dict[str, str] | None = None
) -> list[dict[str, object]]:
    """Level 3 across nodes, from this (the launching) node: the all-reduce under mpirun
    over `cluster['hosts']`, bisected over the hosts while the runs last
    (agent/diag/cluster.py). Each run: {test: rccl.all_reduce.cluster/<a,b,...>, rc,
    seconds, timed_out, output}."""
    try:  # shipped to nodes beside this file as module_utils
        from ansible.module_utils.tuner_diag_cluster import (  # type: ignore[import-not-found]
            bisect_nodes,
            mpi_argv,
        )
        from ansible.module_utils.tuner_diag_parse import (  # type: ignore[import-not-found]
            parse_rccl,
        )
    except ImportError:
        from agent.diag.cluster import bisect_nodes, mpi_argv
        from agent.diag.parse import parse_rccl

    tools = tools or {}
    test = "rccl.all_reduce.cluster"
    hosts = [str(h) for h in cluster["hosts"]]  # type: ignore[attr-defined]
    mpirun = find_tool(root, MPI_CANDIDATES, tools.get("mpirun"))
    rccl = find_tool(root, RCCL_CANDIDATES, tools.get("all_reduce_perf"))
    if mpirun is None or rccl is None:
        what = "mpirun (Open MPI)" if mpirun is None else "all_reduce_perf (rccl-tests)"
        return [{"test": test, "rc": None, "seconds": 0.0, "missing": f"{what} not found"}]
    slots = {str(k): int(v) for k, v in dict(cluster.get("slots") or {}).items()}  # type: ignore[call-overload]
    size = int(cluster.get("message_bytes", 8 * 2**30))  # type: ignore[call-overload]
    deadline = float(cluster.get("deadline", 240))  # type: ignore[arg-type]
    budget = cluster.get("budget")
    start = time.monotonic()
    extra = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    runs: list[dict[str, object]] = []

    def measure(subset: list[str]) -> float | None:
        left = None if budget is None else float(budget) - (time.monotonic() - start)  # type: ignore[arg-type]
        if left is not None and left < 1:
            raise TimeoutError
        r = run_tool(
            mpi_argv(str(mpirun), str(rccl), subset, slots, extra),
            deadline if left is None else min(deadline, left),
        )
        r["test"] = f"{test}/{','.join(subset)}"
        runs.append(r)
        if r.get("timed_out"):
            return None
        return parse_rccl(str(r["output"])).busbw_at(size)

    try:
        bisect_nodes(
            hosts,
            measure,
            float(cluster.get("relative", 0.25)),  # type: ignore[arg-type]
            cluster.get("floor"),  # type: ignore[arg-type]
            int(cluster.get("max_runs", 12)),  # type: ignore[call-overload]
        )
    except TimeoutError:
        pass  # the budget ran out: the controller's replay leaves the rest unresolved
    return runs
