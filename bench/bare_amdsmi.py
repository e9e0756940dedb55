"""The floor for `tuner check --local`: a bare script making the same amdsmi calls as
agent/gpu/collect.py (init, enumerate, every per-GPU query, shut down) and nothing else.

    ROCM_PATH=<node root>/opt/rocm python bench/bare_amdsmi.py
"""

from __future__ import annotations

import amdsmi


def _try(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except amdsmi.AmdSmiLibraryException:  # INVAL / NOT_SUPPORTED / NO_PERM, as on MI355X
        return None


def main() -> None:
    amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    T, M = amdsmi.AmdSmiTemperatureType, amdsmi.AmdSmiTemperatureMetric
    n = 0
    for h in amdsmi.amdsmi_get_processor_handles():
        amdsmi.amdsmi_get_gpu_device_bdf(h)
        amdsmi.amdsmi_get_gpu_device_uuid(h)
        amdsmi.amdsmi_get_gpu_enumeration_info(h)
        amdsmi.amdsmi_get_gpu_asic_info(h)
        amdsmi.amdsmi_get_gpu_board_info(h)
        amdsmi.amdsmi_get_gpu_total_ecc_count(h)
        for block in amdsmi.AmdSmiGpuBlock:
            if block.name in ("INVALID", "RESERVED", "LAST", "FIRST"):
                continue
            try:
                amdsmi.amdsmi_get_gpu_ecc_count(h, block)
            except amdsmi.AmdSmiLibraryException:
                pass
        amdsmi.amdsmi_get_gpu_bad_page_info(h)
        _try(amdsmi.amdsmi_get_gpu_bad_page_threshold, h)
        amdsmi.amdsmi_get_pcie_info(h)
        amdsmi.amdsmi_get_gpu_xgmi_link_status(h)
        _try(amdsmi.amdsmi_gpu_xgmi_error_status, h)
        amdsmi.amdsmi_get_xgmi_info(h)
        amdsmi.amdsmi_get_link_metrics(h)
        for block in amdsmi.AmdSmiGpuBlock:
            if block.name not in ("INVALID", "RESERVED", "LAST", "FIRST"):
                _try(amdsmi.amdsmi_get_gpu_ecc_status, h, block)
        amdsmi.amdsmi_get_gpu_memory_total(h, amdsmi.AmdSmiMemoryType.VRAM)
        amdsmi.amdsmi_get_gpu_memory_usage(h, amdsmi.AmdSmiMemoryType.VRAM)
        amdsmi.amdsmi_get_power_cap_info(h)
        amdsmi.amdsmi_get_gpu_metrics_info(h)
        for t in (T.HOTSPOT, T.VRAM):
            for m in (M.CURRENT, M.MAX, M.CRITICAL):
                amdsmi.amdsmi_get_temp_metric(h, t, m)
        amdsmi.amdsmi_get_fw_info(h)
        amdsmi.amdsmi_get_gpu_vbios_info(h)
        amdsmi.amdsmi_get_gpu_driver_info(h)
        amdsmi.amdsmi_get_gpu_process_list(h)
        amdsmi.amdsmi_get_gpu_compute_partition(h)
        amdsmi.amdsmi_get_gpu_memory_partition(h)
        _try(
            amdsmi.amdsmi_get_gpu_cper_entries, h, 1 << amdsmi.amdsmi_wrapper.AMDSMI_CPER_SEV_FATAL
        )
        n += 1
    amdsmi.amdsmi_shut_down()
    print(n)


if __name__ == "__main__":
    main()
