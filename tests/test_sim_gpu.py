"""The simulated libamd_smi.so, driven through the real, unmodified amdsmi package.

A loaded library cannot be unloaded, so every scenario runs the real ``amdsmi`` in its own
subprocess (PROBE below) with ROCM_PATH pointing at a simulated node root.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.sim.gpu import (
    BadPage,
    BadPageStatus,
    BuildError,
    CperEntry,
    EccCounts,
    GpuProcess,
    NodeGpuState,
    build_library,
    gen_stubs,
    install_node,
    write_state,
)
from agent.sim.gpu.build import find_compiler
from agent.sim.gpu.state import Status

PROBE = r'''
import json, os, shutil, sys
plan = json.loads(sys.argv[1])
import amdsmi as a

def js(v):
    if isinstance(v, dict):
        return {str(k): js(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [js(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if hasattr(v, "name") and hasattr(v, "value"):
        return v.name
    return v

def call(fn, *args):
    try:
        return js(fn(*args))
    except a.AmdSmiLibraryException as e:
        return {"error": e.get_error_code()}

T, M = a.AmdSmiTemperatureType, a.AmdSmiTemperatureMetric

def probe():
    out = {}
    hs = a.amdsmi_get_processor_handles()
    for h in hs:
        bdf = a.amdsmi_get_gpu_device_bdf(h)
        g = {}
        for name in ["amdsmi_get_gpu_device_uuid", "amdsmi_get_gpu_enumeration_info",
                     "amdsmi_get_gpu_kfd_info", "amdsmi_get_gpu_asic_info",
                     "amdsmi_get_gpu_board_info", "amdsmi_get_gpu_total_ecc_count",
                     "amdsmi_get_gpu_ras_block_features_enabled",
                     "amdsmi_get_gpu_bad_page_info", "amdsmi_get_gpu_bad_page_threshold",
                     "amdsmi_get_pcie_info", "amdsmi_get_gpu_xgmi_link_status",
                     "amdsmi_gpu_xgmi_error_status", "amdsmi_get_xgmi_info",
                     "amdsmi_get_fw_info", "amdsmi_get_gpu_vbios_info",
                     "amdsmi_get_gpu_driver_info", "amdsmi_get_gpu_process_list",
                     "amdsmi_get_gpu_compute_partition", "amdsmi_get_gpu_memory_partition",
                     "amdsmi_get_gpu_metrics_info", "amdsmi_get_violation_status"]:
            g[name] = call(getattr(a, name), h)
        g["ecc_blocks"] = {b.name: call(a.amdsmi_get_gpu_ecc_count, h, b)
                           for b in a.AmdSmiGpuBlock if b.name not in ("INVALID", "RESERVED")}
        g["temps"] = {f"{t}.{m}": call(a.amdsmi_get_temp_metric, h, T[t], M[m])
                      for t in ("HOTSPOT", "VRAM", "EDGE")
                      for m in ("CURRENT", "MAX", "CRITICAL", "EMERGENCY")}
        g["cper"] = call(lambda x: a.amdsmi_get_gpu_cper_entries(x, 0x7)[0], h)
        g["link_type_to_first"] = call(a.amdsmi_topo_get_link_type, h, hs[0])
        out[bdf] = g
    return out

results = []
for step in plan:
    if "state" in step:
        os.environ["TUNER_SIM_GPU_STATE"] = step["state"]
    if "copy" in step:
        shutil.copyfile(*step["copy"])
    try:
        a.amdsmi_init(a.AmdSmiInitFlags.INIT_AMD_GPUS)
    except a.AmdSmiLibraryException as e:
        results.append({"init_error": e.get_error_code()})
        continue
    try:
        res = {"gpus": probe()} if step.get("probe", True) else {}
    except a.AmdSmiLibraryException as e:
        res = {"enum_error": e.get_error_code()}
    a.amdsmi_shut_down()
    results.append(res)
print(json.dumps(results))
'''


@pytest.fixture(scope="session")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        find_compiler()
    except BuildError as exc:
        pytest.skip(str(exc))
    return build_library(tmp_path_factory.mktemp("simlib"))


def run(rocm: Path, plan: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Run PROBE in a fresh interpreter against the node at ``rocm``."""
    drop = ("ROCM_HOME", "TUNER_SIM_GPU_STATE")
    full_env = {k: v for k, v in os.environ.items() if k not in drop}
    full_env["ROCM_PATH"] = str(rocm)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(plan or [{}])],
        capture_output=True, text=True, env=full_env, cwd=rocm, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def scenario() -> NodeGpuState:
    """A node with one of every kind of fault."""
    s = NodeGpuState.healthy(node_index=5)
    g = s.gpus
    g[0].ecc = {"UMC": EccCounts(correctable=7, uncorrectable=2, deferred=1),
                "gfx": EccCounts(correctable=3)}
    g[0].ras_features = {"SDMA": "DISABLED"}
    g[0].bad_pages = [BadPage(address=0x3F000, status=BadPageStatus.RESERVED),
                      BadPage(address=0x4F000, size=8192, status=BadPageStatus.PENDING),
                      BadPage(address=0x5F000, status=BadPageStatus.UNRESERVABLE)]
    g[0].bad_page_threshold = 3
    g[1].pcie.width = 8
    g[1].pcie.speed = 16000
    g[1].pcie.replay_count = 12
    g[1].pcie.l0_to_recovery_count = 150
    g[1].pcie.nak_sent_count = 101
    g[1].pcie.nak_received_count = 102
    g[2].xgmi.link_status = ["U", "D", "U", "X", "U", "U", "U"]
    g[2].xgmi.error_status = 2
    g[3].temperatures.hotspot.current = 107
    g[3].temperatures.vram.current = 96
    g[3].temperatures.edge.current = 50
    g[4].processes = [GpuProcess(pid=4242, name="python3", vram=17179869184, cu_occupancy=3)]
    g[4].cper = [CperEntry(severity="FATAL", timestamp=dt.datetime(2025, 6, 1, 12, 34, 56),
                           notify_type="MCE"),
                 CperEntry(severity="NON_FATAL_CORRECTED", notify_type="CMC", record_id="r2")]
    g[5].firmware = {"PSP_SOSDRV": 0x00370040, "PM": 0x00550F00}
    g[5].vbios.version = "022.040.003.099.000001"
    g[5].driver.version = "6.12.0"
    g[5].compute_partition = "CPX"
    g[5].memory_partition = "NPS4"
    g[6].fail = {"amdsmi_get_gpu_asic_info": "DRIVER_NOT_LOADED",
                 "amdsmi_get_gpu_bad_page_info": 12,
                 "amdsmi_get_violation_status": "AMDSMI_STATUS_BUSY"}
    g[7].enumerated = False
    return s


def test_scenario_round_trips(lib: Path, tmp_path: Path) -> None:
    state = scenario()
    rocm = install_node(tmp_path / "node", state, lib)
    [res], _ = run(rocm)
    gpus = res["gpus"]
    bdfs = [g.bdf for g in state.gpus]
    assert list(gpus) == bdfs[:7]  # GPU 7 hidden from amdsmi

    for i, g in enumerate(state.gpus[:7]):
        r = gpus[g.bdf]
        assert r["amdsmi_get_gpu_device_uuid"] == g.uuid
        assert r["amdsmi_get_gpu_enumeration_info"] == {
            "drm_render": g.drm_render, "drm_card": g.drm_card, "hsa_id": g.hsa_id,
            "hip_id": g.hip_id, "hip_uuid": g.hip_uuid}
        assert r["amdsmi_get_gpu_kfd_info"] == {
            "kfd_id": g.kfd_id, "node_id": g.kfd_node_id, "current_partition_id": 0}
        board = r["amdsmi_get_gpu_board_info"]
        assert board["product_serial"] == g.product_serial
        assert board["product_name"] == g.product_name
        xi = r["amdsmi_get_xgmi_info"]
        assert xi == {"xgmi_lanes": 16, "xgmi_hive_id": g.xgmi.hive_id, "xgmi_node_id": i,
                      "index": i}
        assert r["link_type_to_first"] == ({"hops": 0, "type": 0} if i == 0
                                           else {"hops": 1, "type": 2})
        if i == 6:
            continue
        asic = r["amdsmi_get_gpu_asic_info"]
        assert asic["market_name"] == "AMD Instinct MI355X"
        assert asic["vendor_id"] == "0x1002" and asic["device_id"] == "0x75a3"
        assert asic["asic_serial"] == f"0x{int(g.asic_serial or '', 16):016X}"
        assert asic["oam_id"] == i and asic["target_graphics_version"] == "gfx950"

    g0 = gpus[bdfs[0]]
    assert g0["amdsmi_get_gpu_total_ecc_count"] == {
        "correctable_count": 10, "uncorrectable_count": 2, "deferred_count": 1}
    assert g0["ecc_blocks"]["UMC"] == {
        "correctable_count": 7, "uncorrectable_count": 2, "deferred_count": 1}
    assert g0["ecc_blocks"]["GFX"]["correctable_count"] == 3
    assert g0["ecc_blocks"]["MPIO"]["correctable_count"] == 0
    ras = {x["block"]: x["status"] for x in g0["amdsmi_get_gpu_ras_block_features_enabled"]}
    assert len(ras) == 19 and ras["SDMA"] == "DISABLED" and ras["UMC"] == "ENABLED"
    assert [(p["page_address"], p["page_size"], p["status"])
            for p in g0["amdsmi_get_gpu_bad_page_info"]] == [
        (0x3F000, 4096, 0), (0x4F000, 8192, 1), (0x5F000, 4096, 2)]
    assert g0["amdsmi_get_gpu_bad_page_threshold"] == 3

    pcie = gpus[bdfs[1]]["amdsmi_get_pcie_info"]
    assert pcie["pcie_static"]["max_pcie_width"] == 16
    assert pcie["pcie_static"]["max_pcie_speed"] == 32000
    assert pcie["pcie_static"]["slot_type"] == "OAM"
    m = pcie["pcie_metric"]
    assert (m["pcie_width"], m["pcie_speed"], m["pcie_replay_count"]) == (8, 16000, 12)
    assert (m["pcie_l0_to_recovery_count"], m["pcie_nak_sent_count"],
            m["pcie_nak_received_count"]) == (150, 101, 102)
    assert gpus[bdfs[1]]["amdsmi_get_gpu_metrics_info"]["pcie_link_width"] == 8

    g2 = gpus[bdfs[2]]
    # total_links = the sockets amdsmi enumerates (7 here: GPU 7 is off the bus), at most 8, as
    # ROCm computes it; slots past the explicit list are derived (own slot X, a peer U).
    assert g2["amdsmi_get_gpu_xgmi_link_status"] == {
        "status": ["U", "D", "U", "X", "U", "U", "U"], "total_links": 7}
    assert g2["amdsmi_gpu_xgmi_error_status"] == 2
    assert gpus[bdfs[0]]["amdsmi_get_gpu_xgmi_link_status"]["status"] == ["X"] + ["U"] * 6
    # gpu_metrics keeps all 8 physical slots: the link to GPU 7 (off the bus) reads down (0)
    assert gpus[bdfs[0]]["amdsmi_get_gpu_metrics_info"]["xgmi_link_status"][7] == 0
    # MI355X (DF 4.x): the legacy XGMI error status answers INVAL (rocm-systems #11468)
    assert gpus[bdfs[0]]["amdsmi_gpu_xgmi_error_status"] == {"error": 1}  # AMDSMI_STATUS_INVAL

    t3 = gpus[bdfs[3]]["temps"]
    assert (t3["HOTSPOT.CURRENT"], t3["HOTSPOT.MAX"], t3["HOTSPOT.CRITICAL"]) == (107, 100, 105)
    assert (t3["VRAM.CURRENT"], t3["VRAM.MAX"], t3["VRAM.CRITICAL"]) == (96, 95, 100)
    assert t3["EDGE.CURRENT"] == 50
    assert gpus[bdfs[0]]["temps"]["EDGE.CURRENT"] == {"error": 2}  # not reported on MI3xx
    assert gpus[bdfs[0]]["temps"]["HOTSPOT.EMERGENCY"] == 110

    g4 = gpus[bdfs[4]]
    [proc] = g4["amdsmi_get_gpu_process_list"]
    assert (proc["pid"], proc["name"], proc["mem"], proc["cu_occupancy"]) == (
        4242, "python3", 17179869184, 3)
    assert gpus[bdfs[0]]["amdsmi_get_gpu_process_list"] == []
    cper = g4["cper"]
    assert [(e["error_severity"], e["notify_type"]) for e in cper.values()] == [
        ("fatal", "MCE"), ("non_fatal_corrected", "CMC")]
    assert cper["0"]["timestamp"] == "2025/06/01 12:34:56"
    assert cper["1"]["record_id"] == "r2"

    g5 = gpus[bdfs[5]]
    assert g5["amdsmi_get_fw_info"]["fw_list"] == [
        {"fw_name": "AMDSMI_FW_ID_PSP_SOSDRV", "fw_version": "00.37.00.40"},
        {"fw_name": "AMDSMI_FW_ID_PM", "fw_version": "00.85.15.00"}]
    assert g5["amdsmi_get_gpu_vbios_info"]["version"] == "022.040.003.099.000001"
    assert g5["amdsmi_get_gpu_driver_info"] == {
        "driver_name": "amdgpu", "driver_version": "6.12.0", "driver_date": "2015/01/01 00:00"}
    assert (g5["amdsmi_get_gpu_compute_partition"], g5["amdsmi_get_gpu_memory_partition"]) == (
        "CPX", "NPS4")
    assert gpus[bdfs[0]]["amdsmi_get_gpu_compute_partition"] == "SPX"
    assert len(gpus[bdfs[0]]["amdsmi_get_fw_info"]["fw_list"]) == 10

    g6 = gpus[bdfs[6]]  # per-function, per-GPU error injection
    assert g6["amdsmi_get_gpu_asic_info"] == {"error": 34}
    assert g6["amdsmi_get_gpu_bad_page_info"] == {"error": 12}
    assert g6["amdsmi_get_violation_status"] == {"error": 30}  # a stubbed function
    assert gpus[bdfs[0]]["amdsmi_get_violation_status"] == {"error": 2}  # NOT_SUPPORTED stub
    assert gpus[bdfs[5]]["amdsmi_get_gpu_asic_info"]["market_name"] == "AMD Instinct MI355X"


def test_hidden_gpu_is_on_the_pci_bus(lib: Path, tmp_path: Path) -> None:
    state = scenario()
    root = tmp_path / "node"
    install_node(root, state, lib)
    devices = root / "sys/bus/pci/devices"
    assert sorted(p.name for p in devices.iterdir()) == sorted(g.bdf or "" for g in state.gpus)
    hidden = devices / (state.gpus[7].bdf or "")
    assert (hidden / "vendor").read_text() == "0x1002\n"
    assert (hidden / "device").read_text() == "0x75a3\n"
    assert (hidden / "class").read_text() == "0x120000\n"
    assert not (hidden / "driver").exists()
    down = devices / (state.gpus[1].bdf or "")
    assert (down / "current_link_width").read_text() == "8\n"
    assert (down / "max_link_width").read_text() == "16\n"
    assert (down / "current_link_speed").read_text() == "16.0 GT/s PCIe\n"
    assert (down / "max_link_speed").read_text() == "32.0 GT/s PCIe\n"
    assert (down / "numa_node").read_text() == "0\n"
    assert (down / "driver").resolve() == (root / "sys/bus/pci/drivers/amdgpu").resolve()


def test_init_and_enumeration_injection_and_reread(lib: Path, tmp_path: Path) -> None:
    """State is re-read at every amdsmi_init; init/enumeration failures are injectable."""
    healthy = NodeGpuState.healthy(gpu_count=2)
    rocm = install_node(tmp_path / "node", healthy, lib)
    state_file = rocm / "share/tuner-sim/gpu-state"
    variants = {}
    cases: list[tuple[str, dict[str, Status], dict[str, Status]]] = [
        ("no_driver", {"amdsmi_init": "AMDSMI_STATUS_DRIVER_NOT_LOADED"}, {}),
        ("sockets", {"amdsmi_get_socket_handles": 7}, {}),
        ("procs", {}, {"amdsmi_get_processor_handles": "NOT_INIT"}),
    ]
    for name, fail, gpu_fail in cases:
        s = NodeGpuState.healthy(gpu_count=2)
        s.fail = fail
        s.gpus[1].fail = gpu_fail
        variants[name] = write_state(tmp_path / f"{name}.state", s)
    plan = [
        {"copy": [str(variants["no_driver"]), str(state_file)]},
        {"copy": [str(variants["sockets"]), str(state_file)]},
        {"copy": [str(variants["procs"]), str(state_file)]},
        {"copy": [str(tmp_path / "healthy.state"), str(state_file)]},
    ]
    write_state(tmp_path / "healthy.state", healthy)
    results, _ = run(rocm, plan)
    assert results[0] == {"init_error": 34}
    assert results[1] == {"enum_error": 7}
    assert results[2] == {"enum_error": 32}
    assert len(results[3]["gpus"]) == 2


def test_state_env_var_and_defaults_match_python(lib: Path, tmp_path: Path) -> None:
    """$TUNER_SIM_GPU_STATE wins; a hand-written file of empty sections == healthy()."""
    rocm = install_node(tmp_path / "node", NodeGpuState.healthy(gpu_count=1), lib)
    hand = tmp_path / "hand.state"
    hand.write_text("# minimal\n[node]\nindex = 3\n" + "".join(f"[gpu.{i}]\n" for i in range(8)))
    full = write_state(tmp_path / "full.state", NodeGpuState.healthy(node_index=3))
    results, _ = run(rocm, [{"state": str(hand)}, {"state": str(full)}])
    assert len(results[0]["gpus"]) == 8
    assert results[0] == results[1]


def test_bad_state_file_fails_init_loudly(lib: Path, tmp_path: Path) -> None:
    rocm = install_node(tmp_path / "node", NodeGpuState.healthy(gpu_count=1), lib)
    bad = tmp_path / "bad.state"
    bad.write_text("[gpu.0]\npcie.widht = 8\n")
    results, err = run(rocm, [{"state": str(bad)}, {"state": str(tmp_path / "missing")}])
    assert results == [{"init_error": 18}, {"init_error": 18}]
    assert "bad.state:2: unknown key 'pcie.widht'" in err
    assert "cannot open GPU state file" in err


def test_library_exports_every_bound_symbol(lib: Path) -> None:
    info = gen_stubs.load_wrapper()
    assert len(info.functions) >= 184
    handle = ctypes.CDLL(str(lib))
    for fn in info.functions:
        assert hasattr(handle, fn.name), fn.name


def test_struct_layouts_match_ctypes(lib: Path, tmp_path: Path) -> None:
    """Compile a program printing sizeof/offsetof of every generated struct; compare."""
    info = gen_stubs.load_wrapper()
    gen_stubs.write_generated(tmp_path, info)
    namer = gen_stubs._TypeNamer()
    for fn in info.functions:
        for arg in [fn.restype, *fn.argtypes]:
            namer.visit(arg)
    checks: list[tuple[str, str, int]] = []
    record: Any
    for record in namer.order:
        name = namer.names[record]
        checks.append((name, f"sizeof({name})", ctypes.sizeof(record)))
        for f in record._fields_:
            if len(f) == 2:
                field = gen_stubs.c_field_name(f[0])
                checks.append((f"{name}.{field}", f"offsetof({name}, {field})",
                               getattr(record, f[0]).offset))
    names = {"struct_amdsmi_asic_info_t", "struct_amdsmi_pcie_info_t",
             "struct_amdsmi_fw_info_t", "struct_amdsmi_retired_page_record_t",
             "struct_amdsmi_xgmi_link_status_t", "struct_amdsmi_proc_info_t",
             "struct_amdsmi_cper_hdr_t", "union_amdsmi_bdf_t", "struct_amdsmi_gpu_metrics_t"}
    assert names <= set(namer.names.values())
    body = "".join(f'    printf("%s %zu\\n", "{label}", (size_t){expr});\n'
                   for label, expr, _ in checks)
    src = tmp_path / "layout.c"
    src.write_text('#include <stdio.h>\n#include "amdsmi_sim_gen.h"\nint main(void) {\n'
                   + body + "    return 0;\n}\n")
    exe = tmp_path / "layout"
    subprocess.run([find_compiler(), f"-I{tmp_path}", "-o", str(exe), str(src)], check=True)
    got = dict(line.rsplit(" ", 1) for line in
               subprocess.run([str(exe)], capture_output=True, text=True,
                              check=True).stdout.splitlines())
    assert {k: int(v) for k, v in got.items()} == {label: want for label, _, want in checks}


def test_build_is_cached_and_reports_missing_compiler(lib: Path, tmp_path: Path) -> None:
    mtime = lib.stat().st_mtime_ns
    assert build_library(lib.parent) == lib
    assert lib.stat().st_mtime_ns == mtime
    with pytest.raises(BuildError, match="no C compiler"):
        build_library(tmp_path, cc="/nonexistent/cc")


def test_model_validation() -> None:
    s = NodeGpuState.healthy()
    assert len(s.gpus) == 8 and s.gpus[3].bdf == "0000:75:00.0"
    assert len({g.xgmi.hive_id for g in s.gpus}) == 1
    with pytest.raises(ValueError):
        s.gpus[0].asic_serial = "not-hex"
    with pytest.raises(ValueError):
        s.gpus[0].firmware = {"NOT_A_FW": 1}
    with pytest.raises(ValueError):
        s.gpus[0].ecc = {"BOGUS": EccCounts()}
    with pytest.raises(ValueError):
        s.gpus[0].fail = {"get_asic_info": 2}


IDLE_PROBE = r"""
import json, sys
import amdsmi as a
a.amdsmi_init(a.AmdSmiInitFlags.INIT_AMD_GPUS)
out = []
for h in a.amdsmi_get_processor_handles():
    def call(fn, *args):
        try:
            v = fn(h, *args)
            return v if not hasattr(v, "name") else v.name
        except a.AmdSmiLibraryException as e:
            return {"error": e.get_error_code()}
    m = a.amdsmi_get_gpu_metrics_info(h)
    out.append({
        "bdf": a.amdsmi_get_gpu_device_bdf(h),
        "kfd": call(a.amdsmi_get_gpu_kfd_info),
        "activity": call(a.amdsmi_get_gpu_activity),
        "gfx": call(a.amdsmi_get_clock_info, a.AmdSmiClkType.GFX),
        "pcie_clk": call(a.amdsmi_get_clock_info, a.AmdSmiClkType.PCIE),
        "power": call(a.amdsmi_get_power_info),
        "perf": call(a.amdsmi_get_gpu_perf_level),
        "vendor": call(a.amdsmi_get_gpu_vram_info)["vram_vendor"],
        "links": [(x["bit_rate"], x["max_bandwidth"])
                  for x in a.amdsmi_get_link_metrics(h)["links"]],
        "metrics": {k: m[k] for k in ("num_partition", "xgmi_link_width", "average_gfx_activity",
                                      "current_socket_power", "current_gfxclk")},
    })
print(json.dumps(out))
"""


def test_idle_state_partitions_and_xgmi_per_link(lib: Path, tmp_path: Path) -> None:
    """Issue 16 part 3 (GPU side): activity, clocks, power, performance level, VRAM vendor,
    XGMI bit rate and width per link and compute partitions, through the real amdsmi."""
    state = NodeGpuState.partitioned("DPX", gpu_count=2)
    busy = state.gpus[1]
    busy.activity_gfx, busy.power_current, busy.perf_level = 97, 1100, "MANUAL"
    busy.xgmi.bit_rate, busy.xgmi.width = [32, 16], [16, 16, 8]
    busy.clocks = {**busy.clocks, "GFX": None}
    busy.vram_vendor = "SAMSUNG"
    root = tmp_path / "node"
    rocm = install_node(root, state, lib)
    env = {**os.environ, "ROCM_PATH": str(rocm)}
    p = subprocess.run([sys.executable, "-c", IDLE_PROBE], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    idle, b = json.loads(p.stdout)[0], json.loads(p.stdout)[1]
    assert [g["bdf"] for g in json.loads(p.stdout)] == [
        "0000:05:00.0",
        "0000:05:00.1",
        "0000:15:00.0",
        "0000:15:00.1",
    ]
    assert sorted(d.name for d in (root / "sys/bus/pci/devices").iterdir()) == [
        "0000:05:00.0",
        "0000:15:00.0",
    ]  # one PCI device per physical GPU
    assert b["kfd"]["current_partition_id"] == 1 and idle["metrics"]["num_partition"] == 2
    assert idle["activity"] == {"gfx_activity": 0, "umc_activity": 0, "mm_activity": "N/A"}
    assert idle["gfx"]["clk"] == 144 and idle["gfx"]["clk_deep_sleep"] == 1
    assert idle["pcie_clk"] == {"error": 2}  # NOT_SUPPORTED, as a clock the GPU lacks
    assert idle["power"]["current_socket_power"] == 251
    assert idle["power"]["average_socket_power"] == "N/A" and idle["perf"].endswith("AUTO")
    assert idle["links"][0] == [32, 512] and idle["vendor"] == "HYNIX"
    assert b["activity"]["gfx_activity"] == 97 and b["metrics"]["average_gfx_activity"] == 97
    assert b["gfx"] == {"error": 2} and b["power"]["current_socket_power"] == 1100
    assert b["perf"].endswith("MANUAL") and b["vendor"] == "SAMSUNG"
    assert b["links"][:3] == [[32, 512], [16, 256], [16, 128]]
    assert b["metrics"]["xgmi_link_width"] == 16


def test_partitioned_node_from_its_amdsmi_answers_answers_the_same(
    lib: Path, tmp_path: Path
) -> None:
    """sim up --from-capture of a node in CPX: the state rebuilt from the recorded answers
    (agent/sim/gpustate.py) answers every call as recorded (partition ids, BDF functions,
    the XGMI index each logical device shares with its GPU, link peers, idle readings)."""
    from agent.sim.gpustate import state_from_calls

    code = (
        "import json, sys; from agent.gpu.collect import gather; r = []; "
        "gather(root=sys.argv[1], record=r); print(json.dumps(r))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ROCM_PATH"}

    def calls(root: Path) -> list[dict[str, Any]]:
        p = subprocess.run(
            [sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True
        )
        assert p.returncode == 0, p.stderr
        return list(json.loads(p.stdout))

    install_node(tmp_path / "a", NodeGpuState.partitioned("CPX", gpu_count=2), lib)
    first = calls(tmp_path / "a")
    state, _ = state_from_calls(first)
    install_node(tmp_path / "b", state, lib)
    again = calls(tmp_path / "b")
    assert len(first) == len(again) > 1000
    assert [c for c, d in zip(first, again, strict=True) if c != d] == []
