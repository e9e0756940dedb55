#!/usr/bin/env python3
"""Stand-ins for AMD's diagnostic tools on a simulated node (stdlib only; docs/sim-diag.md).

Installed as `R/opt/rocm/bin/rvs` and `R/opt/rccl-tests/build/all_reduce_perf`; which tool
it is comes from the name it is run under. Both print the tools' real output formats
(RVS: src/rvsliblogger.cpp's `[RESULT] [secs.usecs] ...` lines and the module messages of
gst/iet/babel/pebb/pbqt, the summary box; rccl-tests: src/common.cu's header, rows and
`# Avg bus bandwidth`), with numbers from the node's diagnostics state
`R/opt/rocm/share/tuner-sim/diag-state.json`: the GPUs (BDF, RVS gpu_id, HIP index) and
per-GPU and per-link factors that make a GPU slow, a link degraded or a tool hang. Healthy
figures are those of RVS's published MI355X samples (docs/ug1main.md); the all-reduce model
(a ring is as fast as its slowest GPU and link) is ours, said so in docs/sim-diag.md."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HEALTHY = {
    "link_gbps": 61.37,  # pbqt p2p unidirectional, RVS MI355X sample
    "h2d_gbps": 57.70,  # pebb host-to-device, own socket, RVS MI355X sample
    "h2d_far_gbps": 54.03,  # the other socket
    "triad_mbps": 6031416.066,  # babel Triad, RVS MI355X sample
    "gflops_fp16": 1003000.0,  # above gst's 946 TFLOPS target (ours: no public measurement)
    "power_w": 1399.0,  # iet 1400 W stress, RVS MI355X sample
    "busbw_8gpu": 341.0,  # ours: above the 304 GB/s acceptance line
    # TransferBench p2p, MI350X acceptance log (docs/sim-diag.md): copy peaks in GB/s
    "tb_cpu_gpu": 45.0,
    "tb_gpu_cpu": 55.3,
    "tb_gpu_gpu": 57.5,
    "tb_cpu_cpu": 103.7,
    "tb_local": 2150.0,
    "tb_bi_gpu_gpu": 109.4,
    "tb_bi_cpu_gpu": 99.7,
    # across nodes, 8 x 400G NICs per node: ours, above the 350 GB/s two-node acceptance line
    "busbw_cluster": 370.0,
}


def _root() -> Path:
    # R/opt/rocm/bin/rvs or R/opt/rccl-tests/build/all_reduce_perf -> R
    return Path(os.path.realpath(sys.argv[0])).parents[3]


def _state() -> dict:  # type: ignore[type-arg]
    p = _root() / "opt/rocm/share/tuner-sim/diag-state.json"
    return json.loads(p.read_text())


def _ticks() -> str:
    t = time.monotonic()
    return f"{int(t):6d}.{int((t % 1) * 1e6):<6d}"


def _say(msg: str, level: str = "RESULT") -> None:
    print(f"[{level}] [{_ticks()}] {msg}", flush=True)


def _hang_if(st: dict, name: str) -> None:  # type: ignore[type-arg]
    if name in st.get("hang", []):
        print("ramping up", flush=True)
        time.sleep(3600)


def _conf(path: str) -> tuple[str, str, list[str]]:
    """The action name, module and device list of a tuner-written RVS conf (YAML subset)."""
    name = module = ""
    devices: list[str] = []
    for line in Path(path).read_text().splitlines():
        s = line.strip().lstrip("- ").strip()
        if s.startswith("name:") and not name:
            name = s.split(":", 1)[1].strip()
        elif s.startswith("module:"):
            module = s.split(":", 1)[1].strip()
        elif s.startswith("device:"):
            devices = s.split(":", 1)[1].split()
    return name, module, devices


def _f(st: dict, kind: str, key: str) -> float:  # type: ignore[type-arg]
    return float(st.get(kind, {}).get(key, 1.0))


def _gpu_tag(g: dict) -> str:  # type: ignore[type-arg]
    return f"[GPU:: {g['node']} - {g['gpu_id']:5d} - {g['bdf']}]"


def rvs(argv: list[str]) -> int:
    st = _state()
    if "-c" not in argv:
        print("RVS-ERROR [CLI] no configuration file (-c)", file=sys.stderr)
        return 1
    action, module, devices = _conf(argv[argv.index("-c") + 1])
    gpus = [g for g in st["gpus"] if devices in ([], ["all"]) or str(g["gpu_id"]) in devices]
    _say(f"Action name :{action}")
    _say(f"Module name :{module}")
    _hang_if(st, f"rvs.{module}")
    ok = True
    if module == "gst":
        for g in gpus:
            v = HEALTHY["gflops_fp16"] * _f(st, "gflops", g["bdf"])
            met = v >= 946000 * 0.95
            ok &= met
            _say(f"[{action}] [GPU:: {g['gpu_id']:5d}] Start of GPU ramp up")
            _say(f"[{action}] [GPU:: {g['gpu_id']:5d}] End of GPU ramp up")
            _say(f"[{action}] [GPU:: {g['gpu_id']:5d}] GFLOPS {int(v)}")
            _say(
                f"[{action}] [GPU:: {g['gpu_id']:5d}] GFLOPS {int(v)} Target GFLOPS: 946000 "
                f"met: {'TRUE' if met else 'FALSE'}"
            )
    elif module == "iet":
        for g in gpus:
            w = HEALTHY["power_w"] * _f(st, "power", g["bdf"])
            good = w >= 1400 * 0.95
            ok &= good
            _say(f"[{action}] [GPU:: {g['gpu_id']:5d}] Power(W) {w:.6f}")
            _say(f"[{action}] [GPU:: {g['gpu_id']:5d}] pass: {'TRUE' if good else 'FALSE'}")
    elif module == "babel":
        print(f"[RESULT] [{_ticks()}]")
        print("-" * 81)
        print("GPU Id      Function    MBytes/sec     Max MB/s       Min MB/s       Avg MB/s")
        print("-" * 81)
        for g in gpus:
            v = HEALTHY["triad_mbps"] * _f(st, "hbm", g["bdf"])
            for fn in ("Read", "Write", "Copy", "Mul", "Add", "Triad", "Dot"):
                print(f"{g['gpu_id']:<12d}{fn:<12s}{v:<15.3f}{v:<15.3f}{v * 0.95:<15.3f}{v:.3f}")
        print("-" * 81)
    elif module == "pebb":
        n = 0
        for g in gpus:
            for cpu in (0, 1):
                n += 1
                far = cpu != g.get("numa", 0)
                v = HEALTHY["h2d_far_gbps" if far else "h2d_gbps"] * _f(st, "h2d", g["bdf"])
                _say(
                    f"[{action}] pcie-bandwidth [{n:2d}/{2 * len(gpus)}] [CPU:: {cpu}] "
                    f"{_gpu_tag(g)} h2d::true d2h::false {v:.3f} GBps duration: 0.2 secs"
                )
    elif module == "pbqt":
        pairs = [(a, b) for a in gpus for b in gpus if a is not b]
        down = set(st.get("down_links", []))
        for i, (a, b) in enumerate(pairs, 1):
            key = f"{a['bdf']}>{b['bdf']}"
            if key in down or f"{b['bdf']}>{a['bdf']}" in down:
                continue  # no XGMI path: pbqt measures only peers
            v = HEALTHY["link_gbps"] * _link(st, a["bdf"], b["bdf"])
            _say(
                f"[{action}] p2p-bandwidth[{i}/{len(pairs)}] {_gpu_tag(a)} {_gpu_tag(b)} "
                f"bidirectional: false {v:.3f} GBps duration: 0.227 secs"
            )
    else:
        _say(f"[{action}] unknown module {module}", "ERROR")
        return 1
    print("+" + "=" * 69 + "+")
    print("|" + "ROCm Validation Suite (RVS) Summary".center(69) + "|")
    print("+" + "=" * 69 + "+")
    for i in range(0, len(gpus), 2):
        two = gpus[i : i + 2]
        names = [f"AMD Instinct MI355X - {g['gpu_id']}" for g in two]
        where = [f"{g['hip']} - {g['node']} - {g['bdf']}" for g in two]
        print("| " + " | ".join(f"{x:<32s}" for x in names) + " |")
        print("| " + " | ".join(f"{x:<32s}" for x in where) + " |")
        print("+" + "-" * 69 + "+")
    print(f"| {action:<32s} | {module.upper():<14s} | {'PASS' if ok else 'FAIL':<15s} |")
    return 0


def _link(st: dict, a: str, b: str) -> float:  # type: ignore[type-arg]
    links = st.get("links", {})
    f = float(links.get(f"{a}>{b}", links.get(f"{b}>{a}", 1.0)))
    return f * min(_f(st, "gpu_links", a), _f(st, "gpu_links", b))


def all_reduce_perf(argv: list[str]) -> int:
    st = _state()
    _hang_if(st, "rccl.all_reduce")
    n = int(argv[argv.index("-g") + 1]) if "-g" in argv else 1
    vis = os.environ.get("HIP_VISIBLE_DEVICES")
    by_hip = {g["hip"]: g for g in st["gpus"]}
    idx = [int(x) for x in vis.split(",")] if vis else sorted(by_hip)
    gpus = [by_hip[i] for i in idx if i in by_hip][:n]
    # a ring is as fast as its slowest GPU and its slowest link (our model, docs/sim-diag.md)
    slow = min(
        [_f(st, "collective", g["bdf"]) for g in gpus]
        + [_link(st, a["bdf"], b["bdf"]) for a in gpus for b in gpus if a is not b]
        + [1.0]
    )
    _rccl_report([(os.uname().nodename, g) for g in gpus], HEALTHY["busbw_8gpu"] * slow, {})
    return 0


def _rccl_report(ranks: list[tuple[str, dict]], peak: float, opts: dict[str, str]) -> None:  # type: ignore[type-arg]
    """rccl-tests' output (src/common.cu) for `ranks` [(host, gpu)] at bus bandwidth `peak`."""
    n = len(ranks)
    print(
        f"# nThread 1 nGpus {opts.get('-g', n)} minBytes 8 maxBytes 8589934592 step: 2(factor) "
        "warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0"
    )
    print("#\n# Using devices")
    per_host: dict[str, int] = {}
    for r, (host, g) in enumerate(ranks):
        dev = per_host.get(host, 0) if opts.get("-g") == "1" else r
        per_host[host] = per_host.get(host, 0) + 1
        print(
            f"#  Rank {r:2d} Group  0 Pid  {os.getpid():5d} on {host:>10s} "
            f"device {dev:2d} [{g['bdf'][:-2]}] AMD Instinct MI355X"
        )
    print("#")
    print(
        f"# {'':10s}  {'':12s}  {'':8s}  {'':6s}  {'':6s}           out-of-place"
        "                       in-place          "
    )
    print(
        "#       size         count      type   redop    root     time   algbw   busbw "
        "#wrong     time   algbw   busbw #wrong"
    )
    print(
        "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)"
        "            (us)  (GB/s)  (GB/s)       "
    )
    factor = 2 * (n - 1) / max(1, n)
    size, bws = 8, []
    while size <= 8589934592:
        t = 25.0 + size / (peak * 1e3 / max(factor, 1e-9))
        algbw = size / t / 1e3
        busbw = algbw * factor
        bws.append(busbw)
        print(
            f"{size:12d}  {size // 4:12d}     float     sum      -1  {t:7.2f}  {algbw:6.2f}  "
            f"{busbw:6.2f}      0  {t:7.2f}  {algbw:6.2f}  {busbw:6.2f}      0"
        )
        size *= 2
    print("# Errors with asterisks indicate errors that have exceeded the maximum threshold.")
    print("# Out of bounds values : 0 OK")
    print(f"# Avg bus bandwidth    : {sum(bws) / len(bws):g} ")
    print("#")


def transferbench(argv: list[str]) -> int:
    """`TransferBench p2p`: client/include/Presets/PeerToPeer.hpp's print format."""
    st = _state()
    _hang_if(st, "transferbench.p2p")
    if not argv or argv[0] != "p2p":
        print("[ERROR] the stand-in runs the p2p preset only")
        return 1
    vis = os.environ.get("HIP_VISIBLE_DEVICES")
    by_hip = {g["hip"]: g for g in st["gpus"]}
    idx = [int(x) for x in vis.split(",")] if vis else sorted(by_hip)
    gpus = [by_hip[i] for i in idx if i in by_hip]
    devs = [("CPU", i, None) for i in range(2)] + [("GPU", k, g) for k, g in enumerate(gpus)]
    print("TransferBench v1.62.00")
    print("Bytes Per Direction 268435456")

    def bw(src: tuple, dst: tuple, bi: bool = False) -> float | None:  # type: ignore[type-arg]
        (sk, si, sg), (dk, di, dg) = src, dst
        if sk == dk and si == di:
            return None if bi else HEALTHY["tb_local" if sk == "GPU" else "tb_cpu_cpu"]
        if sk == dk == "CPU":
            return HEALTHY["tb_cpu_cpu"] * (1.7 if bi else 1)
        if sk == dk == "GPU":
            f = _link(st, sg["bdf"], dg["bdf"])
            return HEALTHY["tb_bi_gpu_gpu" if bi else "tb_gpu_gpu"] * f
        g = sg if sk == "GPU" else dg
        f = _f(st, "h2d", g["bdf"])
        if bi:
            return HEALTHY["tb_bi_cpu_gpu"] * f
        return HEALTHY["tb_gpu_cpu" if sk == "GPU" else "tb_cpu_gpu"] * f

    def cell(v: float | None) -> str:
        return f"{'N/A':>10s}" if v is None else f"{v:10.2f}"

    def header(title: str) -> None:
        print(title)
        cols = ""
        for k, i, _ in devs:
            cols += f"{k:>7s} {i:02d}" + ("   " if k == "CPU" and i == 1 else "")
        corner = "SRC\\DST" if title.startswith("Bi") else "SRC+EXE\\DST"
        print(f"{corner:>12s}{cols}")

    def row(src: tuple, arrow: str, vals: list[float | None]) -> None:  # type: ignore[type-arg]
        cells = ""
        for (k, i, _), v in zip(devs, vals, strict=True):
            cells += cell(v) + ("   " if k == "CPU" and i == 1 else "")
        print(f"{src[0]:>5s} {src[1]:02d} {arrow:>3s}{cells}")

    header(
        "Unidirectional copy peak bandwidth GB/s [Local read / Remote write] (GPU-Executor: GFX)"
    )
    for src in devs:
        if src[0] == "GPU" and src[1] == 0:
            print()
        row(src, " ->", [bw(src, d) for d in devs])
    print("                           CPU->CPU  CPU->GPU  GPU->CPU  GPU->GPU")
    print(
        f"Averages (During UniDir):{HEALTHY['tb_cpu_cpu']:10.2f}{HEALTHY['tb_cpu_gpu']:10.2f}"
        f"{HEALTHY['tb_gpu_cpu']:10.2f}{HEALTHY['tb_gpu_gpu']:10.2f}"
    )
    print()
    header("Bidirectional copy peak bandwidth GB/s [Local read / Remote write] (GPU-Executor: GFX)")
    for src in devs:
        fwd = [bw(src, d) if src != d else None for d in devs]
        back = [bw(d, src) if src != d else None for d in devs]
        summed = [bw(src, d, True) if src != d else None for d in devs]
        row(src, " ->", fwd)
        row(src, "<- ", back)
        row(src, "<->", summed)
        print()
    print("                           CPU->CPU  CPU->GPU  GPU->CPU  GPU->GPU")
    print("Averages (During  BiDir):     88.84     49.67     49.66     54.32")
    return 0


def mpirun(argv: list[str]) -> int:
    """Open MPI's mpirun launching rccl-tests over several nodes (`-np N --host a:8,b:8
    [options] prog args`): the stand-in prints what the ranks' rank 0 prints, one
    `# Rank` line per rank on its host, with a bus bandwidth from every host's state
    (the slowest node's `net` factor and its GPUs' collective factors: ours)."""
    hosts: list[tuple[str, int]] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--host", "-H"):
            for h in argv[i + 1].split(","):
                name, _, slots = h.partition(":")
                hosts.append((name, int(slots or 1)))
            i += 2
        elif a in ("-np", "-n", "-x", "--mca"):
            i += 2 if a != "--mca" else 3
        elif a.startswith("-"):
            i += 1
        else:
            break
    prog = argv[i:]
    if not prog or Path(prog[0]).name != "all_reduce_perf":
        print("the stand-in mpirun launches all_reduce_perf only", file=sys.stderr)
        return 1
    fleet = json.loads((_root() / "opt/rocm/share/tuner-sim/fleet.json").read_text())
    factors = []
    ranks: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    for name, n in hosts:
        root = fleet.get(name)
        if root is None:
            print(
                f"ORTE was unable to reliably start one or more daemons ({name})", file=sys.stderr
            )
            return 1
        st = json.loads((Path(root) / "opt/rocm/share/tuner-sim/diag-state.json").read_text())
        _hang_if(st, "rccl.all_reduce.cluster")
        gpus = st["gpus"][:n]
        factors.append(float(st.get("net", 1.0)))
        factors += [_f(st, "collective", g["bdf"]) for g in gpus]
        ranks += [(name, g) for g in gpus]
    peak = HEALTHY["busbw_cluster"] * min(factors + [1.0])
    _rccl_report(ranks, peak, {"-g": "1"})
    return 0


def main() -> int:
    tool = Path(sys.argv[0]).name
    if tool == "rvs":
        return rvs(sys.argv[1:])
    if tool == "all_reduce_perf":
        return all_reduce_perf(sys.argv[1:])
    if tool == "TransferBench":
        return transferbench(sys.argv[1:])
    if tool == "mpirun":
        return mpirun(sys.argv[1:])
    print(f"unknown tool {tool}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
