"""Published captures of real machines into capture bundles (test fixtures, docs/capture.md
"Public captures").

* ``from_mockup(folder)``: a Redfish mockup (DMTF's mockup layout: ``index.json`` per
  resource, the folder being ``/redfish/v1``) -> the bundle's ``bmc/redfish/v1/...`` files.
* ``calls_from_amd_smi_static(text)``: the text of ``amd-smi static`` (ROCm's CLI, as posted
  in public issues) -> the amdsmi calls that print it, in the order tuner's collector makes
  them; what the text shows as ``N/A`` is the call's NOT_SUPPORTED answer.
* ``bundle(host, files, source)``: the bundle's files with README and manifest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent.capture import bundle as b


def from_mockup(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for f in sorted(folder.rglob("index.json")):
        rel = f.parent.relative_to(folder).as_posix()
        doc = json.loads(f.read_text(encoding="utf-8"))
        path = "bmc/redfish/v1" + ("" if rel == "." else "/" + rel) + "/index.json"
        files[path] = b.jdump(doc)
    if "bmc/redfish/v1/index.json" not in files:
        raise ValueError(f"{folder}: no index.json (service root)")
    return files


def _sections(text: str) -> dict[int, dict[str, dict[str, str]]]:
    """``GPU: N`` / ``SECTION:`` / ``KEY: VALUE`` -> {gpu: {section: {key: value}}}."""
    out: dict[int, dict[str, dict[str, str]]] = {}
    gpu: int | None = None
    section = ""
    for line in text.splitlines():
        m = re.match(r"^GPU:\s*(\d+)\s*$", line)
        if m:
            gpu = int(m.group(1))
            out[gpu] = {}
            continue
        if gpu is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        if indent <= 4 and not value.strip():
            section = key.strip()
            out[gpu].setdefault(section, {})
        elif section:
            out[gpu][section][key.strip()] = value.strip()
    return out


def _ok(fn: str, args: list[Any], value: Any) -> dict[str, Any]:
    return {"fn": fn, "args": args, "status": "AMDSMI_STATUS_SUCCESS", "code": 0, "value": value}


def _na(fn: str, args: list[Any]) -> dict[str, Any]:
    return {
        "fn": fn,
        "args": args,
        "status": "AMDSMI_STATUS_NOT_SUPPORTED",
        "code": 2,
        "value": None,
    }


def _speed(v: str) -> int | str:
    m = re.match(r"^([\d.]+)\s*GT/s", v)
    return int(float(m.group(1)) * 1000) if m else "N/A"


def calls_from_amd_smi_static(text: str | dict[str, Any]) -> list[dict[str, Any]]:
    """From the printed text, or its sections already parsed ({"0": {"ASIC": {...}}})."""
    gpus = (
        _sections(text)
        if isinstance(text, str)
        else {int(k): v for k, v in text.items() if k.isdigit() and isinstance(v, dict)}
    )
    calls: list[dict[str, Any]] = [_ok("amdsmi_init", ["INIT_AMD_GPUS"], None)]
    n = len(gpus)
    calls.append(_ok("amdsmi_get_processor_handles", [], [f"gpu[{i}]" for i in range(n)]))
    for i, gpu in sorted(gpus.items()):
        h = [f"gpu[{i}]"]
        asic, bus, board = gpu.get("ASIC", {}), gpu.get("BUS", {}), gpu.get("BOARD", {})
        if bus.get("BDF"):
            calls.append(_ok("amdsmi_get_gpu_device_bdf", h, bus["BDF"].lower()))
        if asic:
            calls.append(
                _ok(
                    "amdsmi_get_gpu_asic_info",
                    h,
                    {
                        "market_name": asic.get("MARKET_NAME", "N/A"),
                        "vendor_id": asic.get("VENDOR_ID", "N/A"),
                        "vendor_name": asic.get("VENDOR_NAME", "N/A"),
                        "subvendor_id": asic.get("SUBVENDOR_ID", "N/A"),
                        "device_id": asic.get("DEVICE_ID", "N/A"),
                        "subsystem_id": asic.get("SUBSYSTEM_ID", "N/A"),
                        "rev_id": asic.get("REV_ID", "N/A"),
                        "asic_serial": asic.get("ASIC_SERIAL", "N/A"),
                        "oam_id": int(asic["OAM_ID"])
                        if asic.get("OAM_ID", "").isdigit()
                        else "N/A",
                        "num_compute_units": int(asic["NUM_COMPUTE_UNITS"])
                        if asic.get("NUM_COMPUTE_UNITS", "").isdigit()
                        else "N/A",
                        "target_graphics_version": asic.get("TARGET_GRAPHICS_VERSION", "N/A"),
                    },
                )
            )
        if board:
            calls.append(
                _ok(
                    "amdsmi_get_gpu_board_info",
                    h,
                    {
                        "model_number": board.get("MODEL_NUMBER", "N/A"),
                        "product_serial": board.get("PRODUCT_SERIAL", "N/A"),
                        "fru_id": board.get("FRU_ID", "N/A"),
                        "product_name": board.get("PRODUCT_NAME", "N/A"),
                        "manufacturer_name": board.get("MANUFACTURER_NAME", "N/A"),
                    },
                )
            )
        ras = gpu.get("RAS", {})
        if ras.get("BAD_PAGE_THRESHOLD") == "N/A":
            calls.append(_na("amdsmi_get_gpu_bad_page_threshold", h))
        elif ras.get("BAD_PAGE_THRESHOLD", "").isdigit():
            calls.append(
                _ok("amdsmi_get_gpu_bad_page_threshold", h, int(ras["BAD_PAGE_THRESHOLD"]))
            )
        if bus:
            w = bus.get("MAX_PCIE_WIDTH", "")
            calls.append(
                _ok(
                    "amdsmi_get_pcie_info",
                    h,
                    {
                        "pcie_static": {
                            "max_pcie_width": int(w) if w.isdigit() else "N/A",
                            "max_pcie_speed": _speed(bus.get("MAX_PCIE_SPEED", "")),
                        },
                        # amd-smi static does not print the link in use: the maximum
                        "pcie_metric": {
                            "pcie_width": int(w) if w.isdigit() else "N/A",
                            "pcie_speed": _speed(bus.get("MAX_PCIE_SPEED", "")),
                        },
                    },
                )
            )
        ifwi = gpu.get("IFWI") or gpu.get("VBIOS") or {}
        if ifwi:
            calls.append(
                _ok(
                    "amdsmi_get_gpu_vbios_info",
                    h,
                    {
                        "name": ifwi.get("NAME", "N/A"),
                        "build_date": ifwi.get("BUILD_DATE", "N/A"),
                        "part_number": ifwi.get("PART_NUMBER", "N/A"),
                        "version": ifwi.get("VERSION", "N/A"),
                    },
                )
            )
        drv = gpu.get("DRIVER", {})
        if drv:
            calls.append(
                _ok(
                    "amdsmi_get_gpu_driver_info",
                    h,
                    {
                        "driver_name": drv.get("NAME", "N/A"),
                        "driver_version": drv.get("VERSION", "N/A"),
                    },
                )
            )
    calls.append(_ok("amdsmi_shut_down", [], None))
    return calls


def bundle(
    host: str, files: dict[str, bytes], source: str, not_read: dict[str, str]
) -> dict[str, bytes]:
    meta = {
        "tuner_version": "converted",
        "created_at": None,
        "source": {"mode": "converted", "from": source, "root": None, "bmc_url": None},
    }
    return b.finish(host, files, meta, dict(not_read), False)


def write(dest: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)  # one-writer: a fixture folder the converting developer names
    return dest
