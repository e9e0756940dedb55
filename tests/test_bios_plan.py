"""The BIOS planner, a pure function: profile settings + registry + current values -> plan.

Registries and factory attribute values in tests/data/bios/ were read from the simulated BMCs
(agent/sim/bmc) with tuner's own Redfish client; `supermicro-b` is another BIOS build, whose
attribute names carry other hex suffixes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import DATA

from agent.bios.models import BiosAttribute
from agent.bios.plan import GLOBAL_CSTATES_WARNING, detect_family, plan, topology
from agent.bios.plan import Registry as Reg
from agent.profiles import load_profile

BIOS = DATA / "bios"
VENDORS = ("dell", "hpe", "supermicro", "supermicro-b", "amd")


def load(vendor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    reg = json.loads((BIOS / f"{vendor}-registry.json").read_text())["registry"]
    cur = json.loads((BIOS / f"{vendor}-bios.json").read_text())["Attributes"]
    return reg, cur


def inference(nps: int = 1) -> dict[str, Any]:
    p = load_profile("inference" if nps == 1 else "inference-nps4")
    return p.bios.model_dump(exclude_none=True)


# What the inference profile (NPS 1, SMT off, CPB on, APBDIS 1, DF C-states off, determinism
# power) must send to a factory-default BIOS of each vendor, gate attributes included.
EXPECTED_PATCH = {
    "dell": {
        "LogicalProc": "Disabled",
        "ApbDis": "Enabled",
        "DfCState": "Disabled",
        "DeterminismSlider": "PowerDeterminism",
        "SysProfile": "Custom",  # Dell: required before the power settings change
    },
    "hpe": {
        "ProcSMT": "Disabled",
        "ApplicationPowerBoost": "Disabled",
        "InfinityFabricPstate": "P0",
        "DataFabricCStateEnable": "Disabled",
        "DeterminismControl": "DeterminismCtrlManual",
        "PerformanceDeterminism": "PowerDeterministic",
        "WorkloadProfile": "Custom",  # HPE: required before the settings above
    },
    "supermicro": {
        "SMTControl_0A91": "Disabled",
        "APBDIS_A1C4": "1",
        "FixedSOCPstate_B27F": "P0",
        "DFCstates_5D02": "Disabled",
        "DeterminismControl_E448": "Manual",
        "DeterminismEnable_C90D": "Power",
    },
    "amd": {
        "CbsCpuSmtCtrl": "Disabled",
        "CbsCmnApbdis": "1",
        "CbsCmnFixedSocPstate": "P0",
        "CbsCmnGnbSmuDfCstates": "Disabled",
        "CbsCmnDeterminismCtl": "Manual",
        "CbsCmnDeterminismEnable": "Power",
    },
}


@pytest.mark.parametrize("vendor", ["dell", "hpe", "supermicro", "amd"])
def test_inference_plan_per_vendor(vendor: str) -> None:
    reg, cur = load(vendor)
    p = plan(inference(), reg, cur, {})
    assert p["vendor"] == vendor
    assert p["errors"] == []
    assert p["patch"] == EXPECTED_PATCH[vendor]
    assert p["reboot_needed"] is True
    for row in p["rows"]:
        BiosAttribute.model_validate(row)  # the report's schema
    # NPS 1 and CPB on are factory defaults: planned, but nothing to send
    st = {r["setting"]: r["status"] for r in p["rows"]}
    assert st["nps"] == "ok" and st["core_performance_boost"] == "ok"
    assert p["topology"] == {"nps": 1, "smt": True}


def test_supermicro_other_build_matched_by_prefix() -> None:
    reg, cur = load("supermicro-b")
    p = plan(inference(4), reg, cur, {})
    assert p["vendor"] == "supermicro" and p["errors"] == []
    names = {r["attribute"] for r in p["rows"]}
    assert any(
        n.startswith("NUMANodesPerSocket_") and n != "NUMANodesPerSocket_703E" for n in names
    )
    assert all(n in cur for n in p["patch"])


def test_supermicro_matched_by_display_name_when_suffix_is_odd() -> None:
    reg, cur = load("supermicro")
    for a in reg["RegistryEntries"]["Attributes"]:
        if a["AttributeName"] == "SMTControl_0A91":
            a["AttributeName"] = "SMTCtl_X"  # only the DisplayName "SMT Control" still matches
    cur = {("SMTCtl_X" if k == "SMTControl_0A91" else k): v for k, v in cur.items()}
    p = plan({"smt": False}, reg, cur, {})
    assert p["patch"] == {"SMTCtl_X": "Disabled"}


def test_vendor_is_recognised_from_names_not_from_inventory() -> None:
    for v in ("dell", "hpe", "supermicro", "amd"):
        assert detect_family(Reg(load(v)[0])) == v
    assert detect_family(Reg({"RegistryEntries": {"Attributes": []}})) is None


def test_converged_host_has_empty_patch_and_no_reboot() -> None:
    reg, cur = load("dell")
    cur = {**cur, **EXPECTED_PATCH["dell"]}
    p = plan(inference(), reg, cur, {})
    assert p["patch"] == {} and p["reboot_needed"] is False
    assert {r["status"] for r in p["rows"]} == {"ok"}
    assert p["topology"] == {"nps": 1, "smt": False}


def test_pending_values_are_not_sent_again_but_need_a_reboot() -> None:
    reg, cur = load("amd")
    pending = dict(EXPECTED_PATCH["amd"])
    p = plan(inference(), reg, cur, pending)
    assert p["patch"] == {} and p["reboot_needed"] is True
    assert {r["status"] for r in p["rows"] if r["attribute"] in pending} == {"pending"}
    # a different value pending is overwritten
    p = plan(inference(), reg, cur, {**pending, "CbsCpuSmtCtrl": "Enabled"})
    assert p["patch"] == {"CbsCpuSmtCtrl": "Disabled"}


def test_foreign_pending_values_warn() -> None:
    reg, cur = load("dell")
    p = plan({"nps": 4}, reg, cur, {"AcPwrRcvryUserDelay": 120})
    assert any("AcPwrRcvryUserDelay" in w for w in p["warnings"])


def test_verify_mode_reports_drift_and_pending() -> None:
    reg, cur = load("hpe")
    p = plan(inference(), reg, cur, {"ProcSMT": "Disabled"}, verify=True)
    st = {r["attribute"]: r for r in p["rows"]}
    assert st["ProcSMT"]["status"] == "drift" and "pending" in st["ProcSMT"]["message"]
    assert st["NumaMemoryDomainsPerSocket"]["status"] == "ok"
    assert p["patch"] == {} or p["errors"] == []


def test_global_cstates_disabled_warns() -> None:
    reg, cur = load("supermicro")
    p = plan({"global_cstates": False}, reg, cur, {})
    assert GLOBAL_CSTATES_WARNING in p["warnings"]
    assert p["patch"] == {"GlobalC_stateControl_7B15": "Disabled"}
    assert plan({"global_cstates": True}, reg, cur, {})["warnings"] == []


def test_setting_the_host_cannot_take_is_an_error_and_nothing_is_sent() -> None:
    reg, cur = load("amd")
    p = plan({"power_profile": "maximum_performance", "smt": False}, reg, cur, {})
    assert p["patch"] == {} and p["reboot_needed"] is False
    assert any("power_profile" in e and "amd" in e for e in p["errors"])


def test_vendor_attributes_checked_against_registry() -> None:
    reg, cur = load("dell")
    ok = plan({"vendor_attributes": {"AcPwrRcvryUserDelay": 120}}, reg, cur, {})
    assert ok["errors"] == [] and ok["patch"] == {"AcPwrRcvryUserDelay": 120}
    cases = {
        "AcPwrRcvryUserDelay": 5,  # outside 60..600
        "SystemServiceTag": "X",  # read-only
        "NoSuchAttr": "1",  # unknown
        "LogicalProc": "Maybe",  # not an allowed value
    }
    for name, value in cases.items():
        p = plan({"vendor_attributes": {name: value}}, reg, cur, {})
        assert p["patch"] == {} and len(p["errors"]) == 1, (name, p["errors"])
        assert name in p["errors"][0]
    # an int for an enumeration of numbers is sent as the registry's string
    p = plan({"vendor_attributes": {"NumaNodesPerSocket": 2}}, reg, cur, {})
    assert p["patch"] == {"NumaNodesPerSocket": "2"}


def test_gate_conflict_with_profile_is_an_error() -> None:
    reg, cur = load("dell")
    p = plan({"df_cstates": False, "vendor_attributes": {"SysProfile": "PerfOptimized"}}, reg, cur)
    assert p["patch"] == {}
    assert any("SysProfile" in e for e in p["errors"])


def test_power_profile_per_vendor() -> None:
    reg, cur = load("hpe")
    p = plan({"power_profile": "maximum_performance"}, reg, cur, {})
    assert p["patch"] == {"WorkloadProfile": "Custom", "PowerRegulator": "StaticHighPerf"}
    reg, cur = load("dell")
    p = plan({"power_profile": "maximum_performance"}, reg, cur, {})
    assert p["patch"] == {"SysProfile": "Custom", "ProcPwrPerf": "MaxPerf"}
    reg, cur = load("supermicro")
    p = plan({"power_profile": "maximum_performance"}, reg, cur, {})
    assert p["patch"] == {"PowerProfileSelection_62DA": "High Performance Mode"}


@pytest.mark.parametrize("vendor", VENDORS)
def test_topology_follows_values_in_effect(vendor: str) -> None:
    reg, cur = load(vendor)
    p = plan(inference(4), reg, cur, {})
    after = {**cur, **p["patch"]}
    assert topology(reg, after) == {"nps": 4, "smt": False}


# ----------------------------------------------------------------------------- registry-driven
# ami-coded-*.json is a small registry written for these tests in the shape AMI-based BIOSes
# publish (coded names like `Rome0059` whose meaning is only in DisplayName/HelpText, values
# `Enable`/`Disable`, EQU/OR, GrayOut, Hidden, GTR and CurrentValue maps): see the sources in
# docs/sim-bmc.md "Vendor behaviours" (dsx-ai-factory/libredfish PR #34 lists such names).


def test_ami_coded_names_resolved_by_display_name_and_values_by_spelling() -> None:
    reg, cur = load("ami-coded")
    p = plan({"smt": False, "df_cstates": False, "nps": 4}, reg, cur, {})
    assert p["vendor"] == "amd" and p["errors"] == [], p["errors"]
    # SMT Control -> Rome0039, "Disabled" sent as the registry spells it: "Disable";
    # CbsCmnGnbSmuDfCstates -> its short variant CbsCmnGnbSmuDfCstatesRs
    assert p["patch"] == {
        "Rome0039": "Disable",
        "CbsCmnGnbSmuDfCstatesRs": "Disable",
        "Rome0059": "NPS4",
    }


def test_locked_values_get_their_unlocking_setting() -> None:
    reg, cur = load("ami-coded")
    p = plan({"apbdis": 1, "determinism": "power"}, reg, cur, {})
    assert p["errors"] == []
    # Fixed SOC Pstate is GrayOut while APBDIS=0 or Auto: the profile sets APBDIS 1 itself;
    # Determinism Enable is Hidden while Determinism Control != Manual: Manual is added
    assert p["patch"] == {
        "Rome0162": "1",
        "Rome0163": "P0",
        "Rome0141": "Manual",
        "Rome0142": "Power",
    }

    reg, cur = load("hpe")  # EQU lists joined with OR, one per locking workload profile
    p = plan({"core_performance_boost": False}, reg, cur, {})
    assert p["patch"] == {"ProcAMDBoost": "Disabled", "WorkloadProfile": "Custom"}
    row = next(r for r in p["rows"] if r["attribute"] == "WorkloadProfile")
    assert row["setting"] == "required by ProcAMDBoost" and "ReadOnly while" in row["message"]


def test_locked_value_without_a_safe_unlock_is_refused() -> None:
    reg, cur = load("ami-coded")
    p = plan({"vendor_attributes": {"Rome0163": "P0", "Rome0162": "0"}}, reg, cur, {})
    assert p["patch"] == {} and p["forbidden"]
    assert any("Rome0163 is GrayOut while Rome0162=0 or Rome0162=Auto" in e for e in p["errors"])
    # a gate whose unlocking value is not a safe choice (several, none Custom/Manual)
    reg2 = json.loads(json.dumps(reg))
    reg2["RegistryEntries"]["Dependencies"][0]["Dependency"]["MapFrom"] = [
        {"MapFromAttribute": "Rome0039", "MapFromCondition": "EQU", "MapFromValue": "Auto"}
    ]
    p = plan({"vendor_attributes": {"Rome0163": "P0"}}, reg2, cur, {})
    assert p["patch"] == {} and "no safe value of Rome0039 unlocks it" in p["errors"][0]


def test_map_to_value_that_would_overwrite_a_wanted_value_is_refused() -> None:
    reg, cur = load("ami-coded")
    p = plan({"global_cstates": False, "vendor_attributes": {"Rome0200": 450}}, reg, cur, {})
    assert p["patch"] == {} and p["forbidden"]
    assert "the registry sets Rome0070=Enable while Rome0200>450" not in p["errors"][0]
    assert "Rome0070=Enable while Rome0200>400" in p["errors"][0]
    ok = plan({"global_cstates": False, "vendor_attributes": {"Rome0200": 300}}, reg, cur, {})
    assert ok["errors"] == [] and ok["patch"]["Rome0070"] == "Disable"
