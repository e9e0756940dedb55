"""Idle state: a GPU that should be idle is idle (AMD's acceptance guides).

AMD's system-acceptance guide (ROCm/system-acceptance-docs, docs/common/health-checks.md,
"Monitor utilization metrics", referenced by the MI355X acceptance table) runs
`amd-smi monitor -putm` on the idle node: "GPU and memory utilization should be 0%, clocks
should be low, and temperature should be well under 85 C"; outside that range the result is
FAILED. The gate runs before a job, on GPUs that should be idle, so the same reading applies:
engine activity (``amdsmi_get_gpu_activity``), the GFX clock against its range
(``amdsmi_get_clock_info``), socket power against the cap (``amdsmi_get_power_info``), hotspot
and VRAM temperature, and optionally the performance level (``amdsmi_get_gpu_perf_level``).
Pure: facts and policy in, a CheckResult out. Thresholds are policy (checks/default.yml).
"""

from __future__ import annotations

from typing import Any

from agent.gpu.checks import CheckResult, unknown
from agent.gpu.model import GpuFacts
from agent.gpu.policy import IdleCheck

KEYS = ("activity", "clock.gfx", "power_info", "perf_level")


def idle(gpu: GpuFacts, p: IdleCheck) -> CheckResult:
    c = "gpu.idle"
    ev: dict[str, Any] = {}
    problems: list[str] = []
    read = 0
    act = gpu.activity or {}
    for engine in ("gfx", "umc"):
        v = act.get(engine)
        if v is None:
            continue
        read += 1
        ev[f"{engine}_activity_pct"] = v
        if p.max_activity_pct is not None and v > p.max_activity_pct:
            what = "GFX" if engine == "gfx" else "memory (UMC)"
            problems.append(f"{what} activity {v}% at idle (max {p.max_activity_pct}%)")
    gfx = gpu.clocks.get("gfx")
    if gfx is not None and gfx.current is not None:
        read += 1
        ev["gfx_clock_mhz"] = gfx.current
        ev["gfx_clock_max_mhz"] = gfx.max
        ev["gfx_deep_sleep"] = gfx.deep_sleep
        if p.max_gfx_clock_fraction is not None and gfx.max and not gfx.deep_sleep:
            limit = gfx.max * p.max_gfx_clock_fraction
            if gfx.current > limit:
                problems.append(
                    f"GFX clock {gfx.current} MHz at idle (max {limit:.0f} MHz, "
                    f"{p.max_gfx_clock_fraction:g} of {gfx.max} MHz)"
                )
    if gpu.power_w is not None:
        read += 1
        ev["power_w"] = gpu.power_w
        cap_w = gpu.power_cap / 1e6 if gpu.power_cap else None
        ev["power_cap_w"] = cap_w
        if p.max_power_fraction is not None and cap_w:
            limit = cap_w * p.max_power_fraction
            if gpu.power_w > limit:
                problems.append(
                    f"socket power {gpu.power_w} W at idle (max {limit:.0f} W, "
                    f"{p.max_power_fraction:g} of the {cap_w:g} W cap)"
                )
    for sensor in ("hotspot", "vram"):
        t = gpu.temperatures.get(sensor)
        if t is None or t.current is None:
            continue
        ev[f"{sensor}_c"] = t.current
        if p.max_temperature_c is not None and t.current >= p.max_temperature_c:
            problems.append(f"{sensor} {t.current} C at idle (max {p.max_temperature_c:g} C)")
    if gpu.perf_level is not None:
        ev["perf_level"] = gpu.perf_level
        if p.perf_level is not None and gpu.perf_level.upper() not in p.perf_level:
            problems.append(
                f"performance level {gpu.perf_level} (expected {', '.join(p.perf_level)})"
            )
    if read == 0:
        asked = any(k in gpu.errors or k in gpu.unsupported for k in KEYS)
        if not asked and not p.required:
            # facts from a collector older than these readings: nothing to judge, say so
            return CheckResult(
                check=c, status="pass", required=p.required, evidence={"collected": False}
            )
        return unknown(c, gpu, KEYS, p.required)
    if not problems:
        return CheckResult(check=c, status="pass", required=p.required, evidence=ev)
    return CheckResult(
        check=c,
        status=p.severity,
        required=p.required,
        evidence=ev,
        message="not idle: " + "; ".join(problems),
    )
