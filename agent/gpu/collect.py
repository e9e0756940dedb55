"""Gather a node's GPU facts: every GPU amdsmi enumerates, the PCI bus view, host facts.

Host side, like agent/knobs.py: shipped to nodes as Ansible module_utils
(``playbooks/module_utils/tuner_gpu_collect.py`` links here), so it imports only the standard
library, the real ``amdsmi`` package (imported lazily, after ``ROCM_PATH`` is set), and
optionally pyudev / psutil. It returns plain JSON-able dicts; the controller validates them
into ``agent.gpu.model.NodeFacts`` and evaluates checks there (pure).

Every amdsmi call is recorded: a value, ``NOT_SUPPORTED`` (unknown, not failed), or an error
with the amdsmi status, so a check can fail closed on exactly the GPU whose query failed.
``gather(record=[...])`` also keeps every call's raw answer (function, arguments, status,
value) in that list: what ``tuner capture`` puts in a bundle (docs/capture.md). It is a hook on
this collector, not a second one: the calls and their order are the gate's.
"""

from __future__ import annotations

import glob
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

AMD_VENDOR = "0x1002"
# PCI classes of AMD GPUs: display controllers (0x03xxxx) and processing accelerators
# (0x12xxxx, what MI300/MI350 OAM modules report).
GPU_CLASSES = ("0x03", "0x12")
NOT_SUPPORTED = 2


class RocmNotFound(Exception):
    """The amdsmi package or libamd_smi.so could not be loaded."""


def _load_amdsmi(rocm_path: str | None) -> Any:
    if rocm_path:
        os.environ["ROCM_PATH"] = rocm_path
    try:
        import amdsmi
    except ImportError as e:
        raise RocmNotFound(
            f"the amdsmi Python package is not installed ({e}) in {sys.executable}: not "
            "provisioned: run tuner provision (it installs the amdsmi package of this node's "
            "ROCm into /opt/tuner/venv)"
        ) from e
    except AttributeError as e:
        # The wrapper binds every C symbol at import: a library without one of them is older
        # than the Python package (a ROCm upgrade half-way), not a missing library.
        raise RocmNotFound(_version_mismatch(e)) from e
    except Exception as e:  # the wrapper raises KeyError('libamd_smi.so') without the library
        where = os.environ.get("ROCM_PATH") or os.environ.get("ROCM_HOME") or "/opt/rocm"
        raise RocmNotFound(
            f"the ROCm library libamd_smi.so was not found (looked in {where}/lib, the linker "
            f"path and /opt/rocm/lib: {type(e).__name__}: {e}); install ROCm's amd-smi-lib or "
            "set ROCM_PATH to the ROCm folder that holds lib/libamd_smi.so"
        ) from e
    return amdsmi


def _package_version() -> str:
    """The amdsmi package's version, without importing it (its import may be what failed)
    and without importlib.metadata (0.1 s of imports on every node)."""
    import sys

    mod = sys.modules.get("amdsmi")
    if mod is not None and getattr(mod, "__version__", None):
        return str(mod.__version__)
    try:
        import importlib.util
        import re

        spec = importlib.util.find_spec("amdsmi")
        if spec and spec.origin:
            path = os.path.join(os.path.dirname(spec.origin), "_version.py")
            with open(path, encoding="utf-8") as f:
                m = re.search(r"__version__\s*=\s*[\"']([^\"']+)", f.read())
            if m:
                return m.group(1)
    except (OSError, ImportError, ValueError):
        pass
    return "unknown"


def _find_library() -> str | None:
    """The libamd_smi.so the wrapper would load first (ROCM_HOME/ROCM_PATH, then /opt/rocm)."""
    for base in (os.environ.get("ROCM_HOME"), os.environ.get("ROCM_PATH"), "/opt/rocm"):
        if base and os.path.isfile(os.path.join(base, "lib", "libamd_smi.so")):
            return os.path.join(base, "lib", "libamd_smi.so")
    return None


def library_version(path: str | None) -> str | None:
    """``amdsmi_get_lib_version`` of the library at ``path``, read with ctypes alone."""
    if not path:
        return None
    try:
        import ctypes

        class _V(ctypes.Structure):
            _pack_ = 1
            _fields_ = [
                ("major", ctypes.c_uint32),
                ("minor", ctypes.c_uint32),
                ("release", ctypes.c_uint32),
                ("pad", ctypes.c_uint32),
                ("build", ctypes.c_char_p),
            ]

        lib = ctypes.CDLL(path)
        v = _V()
        if lib.amdsmi_get_lib_version(ctypes.byref(v)) != 0:
            return None
        return f"{v.major}.{v.minor}.{v.release}"
    except Exception:
        return None


def _version_mismatch(e: Exception) -> str:
    lib = _find_library()
    ver = library_version(lib)
    missing = str(e).split(":")[-1].strip() or str(e)
    return (
        f"libamd_smi.so at {lib or 'the linker path'} (library version {ver or 'unknown'}) "
        f"lacks {missing}, which the amdsmi Python package {_package_version()} binds: the "
        "library is older than the package (a ROCm upgrade half-way?); install the amdsmi "
        "package that matches ROCm's amd-smi-lib on this node, or upgrade amd-smi-lib"
    )


class _Calls:
    """Runs amdsmi calls for one GPU and records what failed or was unsupported."""

    def __init__(self, amdsmi: Any) -> None:
        self.amdsmi = amdsmi
        self.errors: dict[str, str] = {}
        self.unsupported: list[str] = []

    def __call__(self, key: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self.amdsmi.AmdSmiLibraryException as e:
            code = int(getattr(e, "err_code", -1))
            if code == NOT_SUPPORTED:
                self.unsupported.append(key)
            else:
                self.errors[key] = f"{fn.__name__}: {_status_name(self.amdsmi, code)} ({code})"
        except Exception as e:  # the wrapper's own bugs (KeyError, TypeError, ValueError)
            self.errors[key] = f"{getattr(fn, '__name__', key)}: {type(e).__name__}: {e}"
        return None


def _status_name(amdsmi: Any, code: int) -> str:
    try:
        names = amdsmi.amdsmi_wrapper.amdsmi_status_t__enumvalues
        return str(names.get(code, f"status {code}"))
    except AttributeError:
        return f"status {code}"


def _na(v: Any) -> Any:
    return None if v in ("N/A", None) else v


def jsonable(v: Any, depth: int = 0) -> Any:
    """An amdsmi answer as plain JSON: enums by name, bytes as hex, anything else as text."""
    if depth > 12:
        return repr(v)
    name = getattr(v, "name", None)
    if isinstance(name, str) and hasattr(v, "value") and type(v).__module__ != "builtins":
        return name  # an enum member (IntEnum included)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, depth + 1) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


class _Recorder:
    """The amdsmi module with every ``amdsmi_*`` call written to ``calls``.

    Each entry: ``{"fn", "args", "status", "code", "value"}`` (status ``AMDSMI_STATUS_SUCCESS``
    and the answer, or the library's status and code, or the wrapper's own exception). A
    processor handle is written as ``gpu[i]`` (its index in ``amdsmi_get_processor_handles``).
    """

    def __init__(self, amdsmi: Any, calls: list[dict[str, Any]]) -> None:
        self._m = amdsmi
        self._calls = calls
        self._handles: list[Any] = []

    def _arg(self, a: Any) -> Any:
        for i, h in enumerate(self._handles):
            if a is h:
                return f"gpu[{i}]"
        return jsonable(a)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._m, name)
        if not name.startswith("amdsmi_") or not callable(fn):
            return fn

        def call(*args: Any) -> Any:
            entry: dict[str, Any] = {"fn": name, "args": [self._arg(a) for a in args]}
            self._calls.append(entry)
            try:
                v = fn(*args)
            except self._m.AmdSmiLibraryException as e:
                code = int(getattr(e, "err_code", -1))
                entry.update(status=_status_name(self._m, code), code=code, value=None)
                raise
            except Exception as e:
                entry.update(status=f"{type(e).__name__}: {e}", code=None, value=None)
                raise
            if name == "amdsmi_get_processor_handles" and isinstance(v, list):
                self._handles = list(v)
                entry["value"] = [f"gpu[{i}]" for i in range(len(v))]
            else:
                entry["value"] = jsonable(v)
            entry.update(status="AMDSMI_STATUS_SUCCESS", code=0)
            return v

        call.__name__ = name
        return call


def _gpu(amdsmi: Any, h: Any, index: int) -> dict[str, Any]:
    c = _Calls(amdsmi)
    g: dict[str, Any] = {"index": index}
    g["bdf"] = c("bdf", amdsmi.amdsmi_get_gpu_device_bdf, h)
    g["uuid"] = c("uuid", amdsmi.amdsmi_get_gpu_device_uuid, h)
    enum = c("enumeration", amdsmi.amdsmi_get_gpu_enumeration_info, h) or {}
    g["hip_id"] = _na(enum.get("hip_id"))
    g["drm_render"] = _na(enum.get("drm_render"))
    g["hip_uuid"] = _na(enum.get("hip_uuid")) or None  # what ROCR_VISIBLE_DEVICES accepts
    kfd = c("kfd", amdsmi.amdsmi_get_gpu_kfd_info, h) or {}
    g["partition_id"] = _na(kfd.get("current_partition_id"))
    asic = c("asic", amdsmi.amdsmi_get_gpu_asic_info, h) or {}
    g["market_name"] = asic.get("market_name")
    g["device_id"] = _na(asic.get("device_id"))
    board = c("board", amdsmi.amdsmi_get_gpu_board_info, h) or {}
    g["serial"] = _na(board.get("product_serial")) or _na(asic.get("asic_serial"))

    tot = c("ecc", amdsmi.amdsmi_get_gpu_total_ecc_count, h)
    g["ecc"] = (
        None
        if tot is None
        else {
            "correctable": tot["correctable_count"],
            "uncorrectable": tot["uncorrectable_count"],
            "deferred": tot["deferred_count"],
        }
    )
    blocks: dict[str, dict[str, int]] = {}
    for block in amdsmi.AmdSmiGpuBlock:
        if block.name in ("INVALID", "RESERVED", "LAST", "FIRST"):
            continue
        try:
            v = amdsmi.amdsmi_get_gpu_ecc_count(h, block)
        except amdsmi.AmdSmiLibraryException:
            continue  # per-block counts are evidence only; the total is what checks read
        except Exception:
            continue
        if any(v.get(k) for k in ("correctable_count", "uncorrectable_count", "deferred_count")):
            blocks[block.name] = {
                "correctable": v.get("correctable_count", 0),
                "uncorrectable": v.get("uncorrectable_count", 0),
                "deferred": v.get("deferred_count", 0),
            }
    g["ecc_blocks"] = blocks

    pages = c("bad_pages", amdsmi.amdsmi_get_gpu_bad_page_info, h)
    g["bad_pages"] = (
        None
        if pages is None
        else [
            {
                "address": _na(p.get("page_address")),
                "size": _na(p.get("page_size")),
                "status": _page_status(p.get("status")),
            }
            for p in pages
        ]
    )
    g["bad_page_threshold"] = c("bad_page_threshold", amdsmi.amdsmi_get_gpu_bad_page_threshold, h)

    pcie = c("pcie", amdsmi.amdsmi_get_pcie_info, h)
    if pcie is None:
        g["pcie"] = None
    else:
        s, m = pcie["pcie_static"], pcie["pcie_metric"]
        g["pcie"] = {
            "max_width": _na(s.get("max_pcie_width")),
            "max_speed": _na(s.get("max_pcie_speed")),
            "width": _na(m.get("pcie_width")),
            "speed": _na(m.get("pcie_speed")),
            "replay_count": _na(m.get("pcie_replay_count")),
            "l0_to_recovery_count": _na(m.get("pcie_l0_to_recovery_count")),
            "nak_sent_count": _na(m.get("pcie_nak_sent_count")),
            "nak_received_count": _na(m.get("pcie_nak_received_count")),
        }

    links = c("xgmi_links", amdsmi.amdsmi_get_gpu_xgmi_link_status, h)
    g["xgmi_links"] = None if links is None else list(links.get("status", []))
    g["xgmi_error_status"] = c("xgmi_errors", amdsmi.amdsmi_gpu_xgmi_error_status, h)
    xinfo = c("xgmi_info", amdsmi.amdsmi_get_xgmi_info, h) or {}
    g["xgmi_hive_id"] = _na(xinfo.get("xgmi_hive_id"))
    g["xgmi_index"] = _na(xinfo.get("index"))
    # Which GPU each link slot reaches (newer ROCm fills the peer BDF; all-ones = none).
    lm = c("link_metrics", amdsmi.amdsmi_get_link_metrics, h)
    g["xgmi_peers"] = (
        None
        if lm is None
        else [
            None
            if not isinstance(x.get("bdf"), str)
            or x["bdf"].lower().startswith("ffff")
            or x["bdf"] == "0000:00:00.0"
            else x["bdf"].lower()
            for x in lm.get("links", [])
        ]
    )
    # Bit rate (Gb/s) and bandwidth (bit rate x lanes) of each link slot
    g["xgmi_bit_rates"] = None if lm is None else [_na(x.get("bit_rate")) for x in lm["links"]]
    g["xgmi_bandwidths"] = (
        None if lm is None else [_na(x.get("max_bandwidth")) for x in lm["links"]]
    )
    # RAS (ECC) state per block, one call each: the package's all-blocks call raises as a
    # whole when any one block answers NOT_SUPPORTED.
    ras: dict[str, str] = {}
    for block in amdsmi.AmdSmiGpuBlock:
        if block.name in ("INVALID", "RESERVED", "LAST", "FIRST"):
            continue
        try:
            st = amdsmi.amdsmi_get_gpu_ecc_status(h, block)
            ras[block.name] = str(getattr(st, "name", st)).replace("AMDSMI_RAS_ERR_STATE_", "")
        except amdsmi.AmdSmiLibraryException as e:
            code = int(getattr(e, "err_code", -1))
            ras[block.name] = f"unknown: {_status_name(amdsmi, code)}"
        except Exception as e:  # the wrapper's own bugs
            ras[block.name] = f"unknown: {type(e).__name__}"
    if ras and all(v.startswith("unknown") for v in ras.values()):
        c.errors["ras"] = f"amdsmi_get_gpu_ecc_status: {next(iter(ras.values()))}"
        g["ras_features"] = None
    else:
        g["ras_features"] = ras or None
    vram_t = getattr(amdsmi.AmdSmiMemoryType, "VRAM", None)
    if vram_t is not None:
        g["vram_total"] = c("vram_total", amdsmi.amdsmi_get_gpu_memory_total, h, vram_t)
        g["vram_used"] = c("vram_used", amdsmi.amdsmi_get_gpu_memory_usage, h, vram_t)
    cap = c("power_cap", amdsmi.amdsmi_get_power_cap_info, h) or {}
    g["power_cap"] = _na(cap.get("power_cap"))
    g["power_cap_default"] = _na(cap.get("default_power_cap"))
    metrics = c("metrics", amdsmi.amdsmi_get_gpu_metrics_info, h) or {}
    g["throttle_status"] = _na(metrics.get("throttle_status"))
    g["num_partitions"] = _na(metrics.get("num_partition"))
    g["xgmi_link_width"] = _na(metrics.get("xgmi_link_width"))
    g["xgmi_link_speed"] = _na(metrics.get("xgmi_link_speed"))
    vinfo = c("vram_info", amdsmi.amdsmi_get_gpu_vram_info, h) or {}
    g["vram_vendor"] = _na(vinfo.get("vram_vendor")) or None
    vt = vinfo.get("vram_type")
    try:
        g["vram_type"] = None if vt is None else amdsmi.AmdSmiVramType(vt).name
    except (AttributeError, ValueError, TypeError):
        g["vram_type"] = None if vt is None else str(vt)

    # Idle state (AMD's acceptance guides: `amd-smi monitor -putm` on an idle node): engine
    # activity, clocks, socket power and the performance level.
    act = c("activity", amdsmi.amdsmi_get_gpu_activity, h)
    g["activity"] = (
        None if act is None else {k: _na(act.get(f"{k}_activity")) for k in ("gfx", "umc", "mm")}
    )
    clocks: dict[str, dict[str, Any]] = {}
    clk_type = getattr(amdsmi, "AmdSmiClkType", None)
    for name in ("GFX", "MEM"):
        t = getattr(clk_type, name, None) if clk_type is not None else None
        if t is None:
            continue
        ci = c(f"clock.{name.lower()}", amdsmi.amdsmi_get_clock_info, h, t)
        if ci is not None:
            clocks[name.lower()] = {
                "current": _na(ci.get("clk")),
                "min": _na(ci.get("min_clk")),
                "max": _na(ci.get("max_clk")),
                "deep_sleep": _na(ci.get("clk_deep_sleep")),
            }
    g["clocks"] = clocks
    pinfo = c("power_info", amdsmi.amdsmi_get_power_info, h) or {}
    cur = _na(pinfo.get("current_socket_power"))
    g["power_w"] = cur if cur is not None else _na(pinfo.get("average_socket_power"))
    perf = c("perf_level", amdsmi.amdsmi_get_gpu_perf_level, h)
    g["perf_level"] = None if perf is None else str(perf).replace("AMDSMI_DEV_PERF_LEVEL_", "")

    temps: dict[str, dict[str, int | None]] = {}
    T, M = amdsmi.AmdSmiTemperatureType, amdsmi.AmdSmiTemperatureMetric
    for sensor, ttype in (("hotspot", T.HOTSPOT), ("vram", T.VRAM)):
        temps[sensor] = {
            metric: c(f"temperature.{sensor}.{metric}", amdsmi.amdsmi_get_temp_metric, h, ttype, m)
            for metric, m in (("current", M.CURRENT), ("max", M.MAX), ("critical", M.CRITICAL))
        }
    g["temperatures"] = temps

    fw = c("firmware", amdsmi.amdsmi_get_fw_info, h)
    g["firmware"] = (
        None
        if fw is None
        else {
            str(getattr(f["fw_name"], "name", f["fw_name"])).replace("AMDSMI_FW_ID_", ""): str(
                f["fw_version"]
            )
            for f in fw.get("fw_list", [])
        }
    )
    vb = c("vbios", amdsmi.amdsmi_get_gpu_vbios_info, h) or {}
    g["vbios_version"] = vb.get("version")
    drv = c("driver", amdsmi.amdsmi_get_gpu_driver_info, h) or {}
    g["driver_version"] = drv.get("driver_version")

    procs = c("processes", amdsmi.amdsmi_get_gpu_process_list, h)
    g["processes"] = (
        None if procs is None else [{"pid": p.get("pid"), "name": p.get("name")} for p in procs]
    )
    g["compute_partition"] = c("compute_partition", amdsmi.amdsmi_get_gpu_compute_partition, h)
    g["memory_partition"] = c("memory_partition", amdsmi.amdsmi_get_gpu_memory_partition, h)

    fatal = 1 << int(getattr(amdsmi.amdsmi_wrapper, "AMDSMI_CPER_SEV_FATAL", 1))
    cper = c("cper", amdsmi.amdsmi_get_gpu_cper_entries, h, fatal)
    g["cper_fatal"] = (
        None
        if cper is None
        else [
            {"timestamp": e.get("timestamp"), "notify_type": e.get("notify_type")}
            for e in cper[0].values()
            if e.get("error_severity") == "fatal"
        ]
    )
    g["errors"] = c.errors
    g["unsupported"] = c.unsupported
    return g


def device_access(root: str, gpu: dict[str, Any]) -> None:
    """The GPU's DRM render node and NUMA node (sysfs of its PCI device)."""
    render = gpu.get("drm_render")
    if render is not None:
        path = os.path.join(root, "dev/dri", f"renderD{render}")
        gpu["render_node"] = f"/dev/dri/renderD{render}"
        gpu["render_node_access"] = os.path.exists(path) and os.access(path, os.R_OK | os.W_OK)
        gpu["render_node_mode"] = _mode(path)
    bdf = gpu.get("bdf")
    if bdf:
        try:
            gpu["numa_node"] = int(
                _read(os.path.join(root, "sys/bus/pci/devices", bdf, "numa_node"))
            )
        except (OSError, ValueError):
            gpu["numa_node"] = None
        gpu["aer"] = pci_aer(root, bdf)
        if gpu["aer"] is None:
            gpu.setdefault("unsupported", []).append("aer")


AER_FILES = (
    ("correctable", "aer_dev_correctable"),
    ("nonfatal", "aer_dev_nonfatal"),
    ("fatal", "aer_dev_fatal"),
)


def parse_aer(text: str) -> dict[str, int]:
    """An ``aer_dev_*`` file -> {error name: count}. The kernel prints one ``<name> <count>``
    per line, the name may hold blanks (``Receiver Error 2``; newer kernels ``RxErr 2``), the
    last line is the TOTAL_ERR_* counter (Documentation/ABI/testing/
    sysfs-bus-pci-devices-aer_stats)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, count = line.strip().rpartition(" ")
        if name and count.isdigit():
            out[name.strip()] = int(count)
    return out


def pci_aer(root: str, bdf: str) -> dict[str, dict[str, int]] | None:
    """The AER counters since boot of a PCI device (None: the kernel shows none for it: no
    AER capability, CONFIG_PCIEAER off, or the firmware owns AER)."""
    out: dict[str, dict[str, int]] = {}
    for key, name in AER_FILES:
        try:
            out[key] = parse_aer(_read(os.path.join(root, "sys/bus/pci/devices", bdf, name)))
        except (OSError, UnicodeDecodeError):
            continue
    return out or None


# amdgpu lines kept for the gate: the kinds agent/gpu/checks/kernellog.py judges (ring
# timeouts, GPU resets, RAS uncorrectable errors) and their near relatives. The controller
# parses them; the node only narrows the log so the facts stay small.
EVENT_HINT = ("timeout", "reset", "uncorrectable", "fatal", "hang", "poison", "recover")
MAX_EVENT_LINES = 500


def kernel_events(root: str) -> dict[str, Any]:
    """The amdgpu/KFD kernel log lines since boot that may be events (read like ``tuner
    capture`` reads it: dmesg or journalctl on a live root, the tree's var/log/dmesg under
    another root) -> {source, error, amdgpu_lines, lines}."""
    try:  # on a host, as Ansible module_utils
        from ansible.module_utils.tuner_capture_node import (  # type: ignore[import-not-found,unused-ignore]
            kernel_log,
        )
    except ImportError:  # on the controller (tests, --local)
        from agent.capture.node import kernel_log
    text, how = kernel_log(root)
    if text is None:
        return {"source": None, "error": how, "amdgpu_lines": None, "lines": []}
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("# ")]
    hits = [ln for ln in lines if any(h in ln.lower() for h in EVENT_HINT)]
    return {
        "source": how,
        "error": None,
        "amdgpu_lines": len(lines),
        "lines": [ln[:400] for ln in hits[-MAX_EVENT_LINES:]],
        "cut": max(len(hits) - MAX_EVENT_LINES, 0),
    }


def _mode(path: str) -> str | None:
    """``0660 root:render``: who may open a device node (the job's user, not the collector)."""
    try:
        import grp
        import pwd
        import stat

        st = os.stat(path)
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
        return f"{stat.S_IMODE(st.st_mode):04o} {owner}:{group}"
    except OSError:
        return None


def node_access(root: str) -> dict[str, Any]:
    """Driver loaded, /dev/kfd, the collector's uid, NICs with their NUMA node."""
    kfd = os.path.join(root, "dev/kfd")
    nics = []
    for d in sorted(glob.glob(os.path.join(root, "sys/class/net/*/device/numa_node"))):
        try:
            nics.append({"name": d.split(os.sep)[-3], "numa_node": int(_read(d))})
        except (OSError, ValueError):
            continue
    return {
        "driver_loaded": os.path.isdir(os.path.join(root, "sys/module/amdgpu"))
        or os.path.isdir(os.path.join(root, "sys/bus/pci/drivers/amdgpu")),
        "kfd_present": os.path.exists(kfd),
        "kfd_access": os.path.exists(kfd) and os.access(kfd, os.R_OK | os.W_OK),
        "kfd_mode": _mode(kfd),
        "euid": os.geteuid(),
        "nics": nics,
        # the node agent (docs/agent.md) keeps the last gate verdict: `tuner check` sends it
        "agent_installed": os.path.exists(
            os.path.join(root, "etc/systemd/system/tuner-agent.service")
        ),
    }


def render_node(root: str, bdf: str | None, drm_render: Any) -> str | None:
    """The GPU's DRM render device: amdsmi's minor number, else the PCI device's drm/ folder."""
    if isinstance(drm_render, int) and drm_render > 0:
        return f"/dev/dri/renderD{drm_render}"
    if bdf:
        found = sorted(glob.glob(os.path.join(root, "sys/bus/pci/devices", bdf, "drm/renderD*")))
        if found:
            return "/dev/dri/" + os.path.basename(found[0])
    return None


def _page_status(v: Any) -> str:
    s = str(getattr(v, "name", v)).lower()
    for name in ("reserved", "pending", "unreservable"):
        if name in s:
            return name
    return {"0": "reserved", "1": "pending", "2": "unreservable"}.get(s, s)


def pci_gpus(root: str = "/") -> list[dict[str, Any]]:
    """AMD GPUs on the PCI bus: pyudev on a real host, the node root's sysfs in the simulator."""
    if root == "/":
        try:
            import pyudev

            out = []
            for d in pyudev.Context().list_devices(subsystem="pci"):
                vendor = (
                    d.attributes.asstring("vendor")
                    if "vendor" in d.attributes.available_attributes
                    else ""
                )
                cls = (
                    d.attributes.asstring("class")
                    if "class" in d.attributes.available_attributes
                    else ""
                )
                if vendor.lower() == AMD_VENDOR and cls.startswith(GPU_CLASSES):
                    out.append(
                        {
                            "bdf": d.sys_name,
                            "vendor": vendor,
                            "device": d.attributes.asstring("device"),
                            "class": cls,
                        }
                    )
            return sorted(out, key=lambda x: x["bdf"])
        except Exception:  # no libudev: fall back to reading sysfs directly
            pass
    out = []
    base = os.path.join(root, "sys/bus/pci/devices")
    for d in sorted(glob.glob(os.path.join(base, "*"))):
        try:
            vendor = _read(os.path.join(d, "vendor"))
            cls = _read(os.path.join(d, "class"))
        except OSError:
            continue
        if vendor.lower() == AMD_VENDOR and cls.startswith(GPU_CLASSES):
            out.append(
                {
                    "bdf": os.path.basename(d),
                    "vendor": vendor,
                    "device": _read(os.path.join(d, "device")),
                    "class": cls,
                }
            )
    return out


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def host_facts(root: str = "/") -> dict[str, Any]:
    """CPUs, NUMA nodes and memory: sysfs under the root, psutil for memory."""
    cpus = glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*"))
    nodes = glob.glob(os.path.join(root, "sys/devices/system/node/node[0-9]*"))
    mem: int | None = None
    try:
        import psutil

        if root == "/":
            mem = int(psutil.virtual_memory().total)
        else:
            meminfo = os.path.join(root, "proc/meminfo")
            if os.path.exists(meminfo):
                old = psutil.PROCFS_PATH
                psutil.PROCFS_PATH = os.path.join(root, "proc")
                try:
                    mem = int(psutil.virtual_memory().total)
                finally:
                    psutil.PROCFS_PATH = old
    except Exception:
        mem = None
    try:
        uptime: float | None = float(_read(os.path.join(root, "proc/uptime")).split()[0])
    except (OSError, ValueError, IndexError):
        uptime = None
    packages: dict[str, set[str]] = {}
    for c in cpus:
        try:
            pkg = _read(os.path.join(c, "topology/physical_package_id"))
            core = _read(os.path.join(c, "topology/core_id"))
        except OSError:
            continue
        packages.setdefault(pkg, set()).add(core)
    return {
        "logical_cpus": len(cpus),
        "numa_nodes": len(nodes),
        "memory_bytes": mem,
        "uptime_s": uptime,
        "sockets": len(packages) or None,
        "cores_per_socket": max((len(v) for v in packages.values()), default=0) or None,
        "cpu_model": _first(root, "proc/cpuinfo", "model name"),
        "os": _first(root, "etc/os-release", "PRETTY_NAME"),
        "kernel": _first(root, "proc/sys/kernel/osrelease", None),
    }


def _first(root: str, rel: str, key: str | None) -> str | None:
    """The first `key: value` / `KEY="value"` of a file (the whole first line when key is None)."""
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for line in f:
                if key is None:
                    return line.strip() or None
                k, sep, v = line.partition(":" if ":" in line and "=" not in line else "=")
                if sep and k.strip() == key:
                    return v.strip().strip('"') or None
    except OSError:
        return None
    return None


def gather(
    root: str = "/",
    rocm_path: str | None = None,
    name: str | None = None,
    record: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The node's facts. Raises RocmNotFound when amdsmi cannot be loaded at all.

    ``record``: a list that receives every amdsmi call with its raw answer (``_Recorder``)."""
    if rocm_path is None and root != "/" and "ROCM_PATH" not in os.environ:
        rocm_path = os.path.join(root, "opt/rocm")
    t0 = time.monotonic()
    amdsmi = _load_amdsmi(rocm_path)
    if record is not None:
        amdsmi = _Recorder(amdsmi, record)
    facts: dict[str, Any] = {
        "name": name or socket.gethostname(),
        "root": root,
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpus": [],
        "pci_gpus": pci_gpus(root),
        "host": host_facts(root),
        "errors": [],
        "kernel_log": kernel_events(root),
        "amdsmi_package": _package_version(),
        **node_access(root),
    }
    try:
        amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    except Exception as e:
        facts["errors"].append(f"amdsmi_init: {_describe(amdsmi, e)}")
        facts["seconds"] = round(time.monotonic() - t0, 3)
        return facts
    try:
        try:
            handles = amdsmi.amdsmi_get_processor_handles()
        except Exception as e:
            facts["errors"].append(f"amdsmi_get_processor_handles: {_describe(amdsmi, e)}")
            handles = []
        facts["gpus"] = [_gpu(amdsmi, h, i) for i, h in enumerate(handles)]
        for g in facts["gpus"]:
            g["render_node"] = render_node(root, g.get("bdf"), g.get("drm_render"))
            device_access(root, g)
        try:
            v = amdsmi.amdsmi_get_lib_version()
            facts["amdsmi_library"] = f"{v['major']}.{v['minor']}.{v['release']}"
        except Exception:
            facts["amdsmi_library"] = None
    finally:
        try:
            amdsmi.amdsmi_shut_down()
        except Exception:
            pass
    facts["seconds"] = round(time.monotonic() - t0, 3)
    return facts


def _describe(amdsmi: Any, e: Exception) -> str:
    code = getattr(e, "err_code", None)
    if code is not None:
        return f"{_status_name(amdsmi, int(code))} ({code})"
    return f"{type(e).__name__}: {e}"
