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
    print(
        f"# nThread 1 nGpus {len(gpus)} minBytes 8 maxBytes 8589934592 step: 2(factor) "
        "warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0"
    )
    print("#\n# Using devices")
    for r, g in enumerate(gpus):
        print(
            f"#  Rank {r:2d} Group  0 Pid  {os.getpid():5d} on {os.uname().nodename:>10s} "
            f"device {r:2d} [{g['bdf'][:-2]}] AMD Instinct MI355X"
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
    # a ring is as fast as its slowest GPU and its slowest link (our model, docs/sim-diag.md)
    slow = min(
        [_f(st, "collective", g["bdf"]) for g in gpus]
        + [_link(st, a["bdf"], b["bdf"]) for a in gpus for b in gpus if a is not b]
        + [1.0]
    )
    peak = HEALTHY["busbw_8gpu"] * slow
    factor = 2 * (len(gpus) - 1) / max(1, len(gpus))
    size, bws = 8, []
    while size <= 8589934592:
        t = 25.0 + size / (peak * 1e3 / factor)
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
    return 0


def main() -> int:
    tool = Path(sys.argv[0]).name
    if tool == "rvs":
        return rvs(sys.argv[1:])
    if tool == "all_reduce_perf":
        return all_reduce_perf(sys.argv[1:])
    print(f"unknown tool {tool}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
