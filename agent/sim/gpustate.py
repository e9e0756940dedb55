"""A simulated node's GPU state (agent/sim/gpu/state.py) from captured amdsmi answers.

The answers are those of a capture bundle's ``amdsmi/calls.json`` (the GPU collector's
recording hook): each call's function, arguments (``gpu[i]``), status and raw value. What
the answers show is set; a call that answered an error makes the simulated library answer
the same status for that function (``fail.<function>``, docs/sim-gpu-state.md); what the
capture never asked keeps the state file's documented default, and is named in the notes.
"""

from __future__ import annotations

import re
from typing import Any

from agent.sim.gpu.state import (
    BadPage,
    Clock,
    EccCounts,
    GpuState,
    NodeGpuState,
    TempSensor,
)

_GPU = re.compile(r"^gpu\[(\d+)\]$")


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return None
    return None


def _status(c: dict[str, Any]) -> str | int:
    s = str(c.get("status") or "")
    if s.startswith("AMDSMI_STATUS_"):
        return s[len("AMDSMI_STATUS_") :]
    code = c.get("code")
    return int(code) if isinstance(code, int) else "UNKNOWN_ERROR"


def state_from_calls(calls: list[dict[str, Any]]) -> tuple[NodeGpuState, list[str]]:
    notes: list[str] = []
    node = NodeGpuState(gpus=[], nics={}, uptime_s=None)
    count = 0
    for c in calls:
        if c.get("fn") == "amdsmi_init" and c.get("code") not in (0, None):
            node.fail["amdsmi_init"] = _status(c)
        if c.get("fn") == "amdsmi_get_processor_handles" and c.get("code") == 0:
            count = len(c.get("value") or [])
    gpus = [GpuState() for _ in range(count)]
    asked: set[str] = set()
    for c in calls:
        args = c.get("args") or []
        m = _GPU.match(str(args[0])) if args else None
        if m is None or int(m.group(1)) >= count:
            continue
        g = gpus[int(m.group(1))]
        fn, v = str(c.get("fn")), c.get("value")
        asked.add(fn)
        if c.get("code") != 0:
            if fn == "amdsmi_get_clock_info" and len(args) > 1 and c.get("code") == 2:
                g.clocks[str(args[1]).upper()] = None  # that clock: NOT_SUPPORTED
            elif fn not in (
                "amdsmi_get_gpu_ecc_count",
                "amdsmi_get_gpu_ecc_status",
                "amdsmi_get_temp_metric",
            ):
                g.fail[fn] = _status(c)
            elif fn == "amdsmi_get_gpu_ecc_status" and len(args) > 1:
                g.ras_features[str(args[1])] = "NONE"
            continue
        _apply(g, fn, args, v)
    node.gpus = gpus
    for i, g in enumerate(gpus):
        g.fill_identity(i, 0)
    for fn, what in (
        ("amdsmi_get_gpu_asic_info", "ASIC"),
        ("amdsmi_get_pcie_info", "PCIe"),
        ("amdsmi_get_gpu_xgmi_link_status", "XGMI links"),
        ("amdsmi_get_fw_info", "firmware"),
    ):
        if count and fn not in asked:
            notes.append(f"GPUs: {what}: the state file's defaults (no {fn} answer captured)")
    if count:
        notes.append(
            "GPUs: what the collector does not ask (clocks other than GFX and MEM, fan, "
            "voltages) keeps the state file's defaults"
        )
    else:
        notes.append("GPUs: none (amdsmi enumerated no GPU)")
    return node, notes


def _apply(g: GpuState, fn: str, args: list[Any], v: Any) -> None:
    d = v if isinstance(v, dict) else {}
    if fn == "amdsmi_get_gpu_device_bdf" and isinstance(v, str):
        g.bdf = v.lower()
    elif fn == "amdsmi_get_gpu_device_uuid" and isinstance(v, str):
        g.uuid = v
    elif fn == "amdsmi_get_gpu_enumeration_info":
        for k in ("drm_render", "drm_card", "hsa_id", "hip_id"):
            if _int(d.get(k)) is not None:
                setattr(g, k, _int(d.get(k)))
        if isinstance(d.get("hip_uuid"), str) and d["hip_uuid"] != "N/A":
            g.hip_uuid = d["hip_uuid"]
    elif fn == "amdsmi_get_gpu_asic_info":
        if isinstance(d.get("market_name"), str):
            g.market_name = d["market_name"]
        for k in (
            "vendor_id",
            "subvendor_id",
            "device_id",
            "rev_id",
            "oam_id",
            "num_compute_units",
        ):
            if _int(d.get(k)) is not None:
                setattr(g, k, _int(d.get(k)))
        s = d.get("asic_serial")
        if isinstance(s, str) and re.fullmatch(r"(0x)?[0-9A-Fa-f]*", s):
            g.asic_serial = s[2:] if s.lower().startswith("0x") else s
        if isinstance(d.get("target_graphics_version"), str):
            g.target_graphics_version = d["target_graphics_version"]
    elif fn == "amdsmi_get_gpu_board_info":
        for src, dst in (
            ("model_number", "model_number"),
            ("product_serial", "product_serial"),
            ("product_name", "product_name"),
            ("manufacturer_name", "manufacturer_name"),
        ):
            if isinstance(d.get(src), str) and d[src] != "N/A":
                setattr(g, dst, d[src])
    elif fn == "amdsmi_get_gpu_ecc_count" and len(args) > 1:
        counts = EccCounts(
            correctable=_int(d.get("correctable_count")) or 0,
            uncorrectable=_int(d.get("uncorrectable_count")) or 0,
            deferred=_int(d.get("deferred_count")) or 0,
        )
        if counts != EccCounts():
            g.ecc[str(args[1]).upper()] = counts
    elif fn == "amdsmi_get_gpu_ecc_status" and len(args) > 1 and isinstance(v, str):
        g.ras_features[str(args[1]).upper()] = v.replace("AMDSMI_RAS_ERR_STATE_", "")
    elif fn == "amdsmi_get_gpu_bad_page_info" and isinstance(v, list):
        g.bad_pages = [
            BadPage(
                address=_int(p.get("page_address")) or 0,
                size=_int(p.get("page_size")) or 4096,
                status=_page_status(p.get("status")),
            )
            for p in v
            if isinstance(p, dict)
        ]
    elif fn == "amdsmi_get_gpu_bad_page_threshold" and _int(v) is not None:
        g.bad_page_threshold = _int(v) or 0
    elif fn == "amdsmi_get_pcie_info":
        s, m = d.get("pcie_static") or {}, d.get("pcie_metric") or {}
        for src, dst, part in (
            ("max_pcie_width", "max_width", s),
            ("max_pcie_speed", "max_speed", s),
            ("pcie_width", "width", m),
            ("pcie_speed", "speed", m),
            ("pcie_replay_count", "replay_count", m),
            ("pcie_l0_to_recovery_count", "l0_to_recovery_count", m),
            ("pcie_nak_sent_count", "nak_sent_count", m),
            ("pcie_nak_received_count", "nak_received_count", m),
        ):
            if _int(part.get(src)) is not None:
                setattr(g.pcie, dst, _int(part.get(src)))
    elif fn == "amdsmi_get_gpu_xgmi_link_status":
        st = d.get("status")
        if isinstance(st, list) and all(x in ("U", "D", "X") for x in st):
            g.xgmi.link_status = list(st)[:8]
    elif fn == "amdsmi_gpu_xgmi_error_status" and _int(v) is not None:
        g.xgmi.error_status = _int(v) or 0
    elif fn == "amdsmi_get_xgmi_info":
        if _int(d.get("xgmi_hive_id")) is not None:
            g.xgmi.hive_id = _int(d.get("xgmi_hive_id"))
        if _int(d.get("index")) is not None:  # partitions share their GPU's index
            g.xgmi.index = _int(d.get("index"))
        if _int(d.get("xgmi_node_id")) is not None:
            g.xgmi.node_id = _int(d.get("xgmi_node_id"))
    elif fn == "amdsmi_get_gpu_memory_total" and _int(v) is not None:
        g.vram_total = _int(v) or 0
    elif fn == "amdsmi_get_gpu_memory_usage" and _int(v) is not None:
        g.vram_used = _int(v) or 0
    elif fn == "amdsmi_get_power_cap_info":
        for src, dst in (
            ("power_cap", "power_cap"),
            ("default_power_cap", "power_cap_default"),
            ("max_power_cap", "power_cap_max"),
        ):
            if _int(d.get(src)) is not None:
                setattr(g, dst, _int(d.get(src)))
    elif fn == "amdsmi_get_gpu_metrics_info":
        if _int(d.get("throttle_status")) is not None:
            g.throttle_status = _int(d.get("throttle_status")) or 0
        parts = _int(d.get("num_partition"))
        if parts is not None and 1 <= parts <= 8:
            g.num_partition = parts
    elif fn == "amdsmi_get_temp_metric" and len(args) > 2 and _int(v) is not None:
        sensor = {"HOTSPOT": "hotspot", "VRAM": "vram", "EDGE": "edge"}.get(str(args[1]).upper())
        metric = {"CURRENT": "current", "MAX": "max", "CRITICAL": "critical"}.get(
            str(args[2]).upper()
        )
        if sensor and metric:
            t: TempSensor = getattr(g.temperatures, sensor)
            setattr(t, metric, _int(v))
    elif fn == "amdsmi_get_gpu_vbios_info":
        for k in ("name", "build_date", "part_number", "version"):
            if isinstance(d.get(k), str):
                setattr(g.vbios, k, d[k])
    elif fn == "amdsmi_get_gpu_driver_info":
        if isinstance(d.get("driver_version"), str):
            g.driver.version = d["driver_version"]
        if isinstance(d.get("driver_name"), str):
            g.driver.name = d["driver_name"]
    elif fn == "amdsmi_get_gpu_kfd_info":
        if _int(d.get("current_partition_id")) is not None:
            g.current_partition_id = _int(d.get("current_partition_id")) or 0
        if _int(d.get("kfd_id")) is not None:
            g.kfd_id = _int(d.get("kfd_id"))
        if _int(d.get("node_id")) is not None:
            g.kfd_node_id = _int(d.get("node_id"))
    elif fn == "amdsmi_get_gpu_activity":
        for k in ("gfx", "umc", "mm"):
            val = d.get(f"{k}_activity")
            setattr(g, f"activity_{k}", _int(val) if _int(val) is not None else None)
    elif fn == "amdsmi_get_clock_info" and len(args) > 1:
        cur, lo, hi = (_int(d.get(k)) for k in ("clk", "min_clk", "max_clk"))
        if cur is not None and lo is not None and hi is not None:
            g.clocks[str(args[1]).upper()] = Clock(current=cur, min=lo, max=hi)
    elif fn == "amdsmi_get_power_info":
        g.power_current = _int(d.get("current_socket_power"))
        g.power_average = _int(d.get("average_socket_power"))
    elif fn == "amdsmi_get_gpu_perf_level" and isinstance(v, str):
        g.perf_level = v
    elif fn == "amdsmi_get_gpu_vram_info" and isinstance(d.get("vram_vendor"), str):
        g.vram_vendor = d["vram_vendor"]
    elif fn == "amdsmi_get_link_metrics":
        links = [x for x in d.get("links") or [] if isinstance(x, dict)][:8]
        rates = [_int(x.get("bit_rate")) or 0 for x in links]
        bws = [_int(x.get("max_bandwidth")) or 0 for x in links]
        if links:
            g.xgmi.bit_rate = rates
            g.xgmi.width = [bw // r if r else 0 for r, bw in zip(rates, bws, strict=True)]
    elif fn == "amdsmi_get_gpu_compute_partition" and isinstance(v, str):
        g.compute_partition = v
    elif fn == "amdsmi_get_gpu_memory_partition" and isinstance(v, str):
        g.memory_partition = v
    elif fn == "amdsmi_get_fw_info":
        fw: dict[str, int] = {}
        for f in d.get("fw_list") or []:
            if isinstance(f, dict):
                name = str(f.get("fw_name", "")).replace("AMDSMI_FW_ID_", "")
                ver = _fw_int(name, str(f.get("fw_version", "")))
                if name and ver is not None:
                    fw[name] = ver
        if fw:
            g.firmware = fw


def _fw_int(name: str, raw: str) -> int | None:
    """The integer amdsmi's wrapper printed (amdsmi_interface.amdsmi_get_fw_info): PM and
    PLDM_BUNDLE as dotted decimal bytes (00.85.14.00 = 0x00550E00), a set of others as dotted
    hex bytes (01.11.00.0E = 0x0111000E), the rest in decimal."""
    parts = raw.split(".")
    if len(parts) == 4 and all(re.fullmatch(r"[0-9A-Fa-f]{1,3}", p) for p in parts):
        if name in ("PM", "PLDM_BUNDLE"):
            try:
                b = [int(p, 10) for p in parts]
            except ValueError:
                return None
            return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] if all(x < 256 for x in b) else None
        return int("".join(p.zfill(2) for p in parts), 16)
    return _int(raw)


def _page_status(v: Any) -> Any:
    s = str(v).lower()
    for name in ("reserved", "pending", "unreservable"):
        if name in s:
            return name
    return "reserved"
