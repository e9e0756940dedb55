"""Vendor personalities of the simulated BMC: BIOS attribute names, value sets, dependencies.

Every personality describes one vendor's Redfish BIOS model the way the reference table
(tuning-settings.md, "Vendor BIOS attribute names") lists it:

* the attribute names and allowed values (plus a few read-only / Integer / String /
  Boolean attributes so that clients meet every registry ``Type``),
* the factory defaults (NPS1, SMT on, CPB on, APBDIS 0, DF C-states auto/enabled,
  determinism performance/auto, global C-states on, default power profile),
* the dependencies ("gate" attribute must hold a value before the target may change) and
  *when* a violation is detected: ``reject`` (PATCH answers 400) or ``at_reset`` (the PATCH
  is accepted, the reset leaves the value unapplied and reports ``SettingsFailed``),
* where the settings object lives and how it is shown,
* how the vendor's values map to the OS-visible topology ``(nps, smt)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

AttrValue = str | int | bool
AttrType = Literal["Enumeration", "Integer", "String", "Boolean"]
DependencyMode = Literal["reject", "at_reset"]


@dataclass(frozen=True)
class AttrDef:
    """One BIOS attribute as published in the attribute registry."""

    name: str
    type: AttrType
    default: AttrValue
    display_name: str
    values: tuple[str, ...] = ()
    value_display: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    reset_required: bool = True
    lower_bound: int | None = None
    upper_bound: int | None = None
    max_length: int | None = None
    help_text: str = ""


@dataclass(frozen=True)
class Dependency:
    """``target`` may only be changed while ``gate`` holds ``gate_value``.

    ``lock`` is the registry property the dependency sets while the gate does not hold
    (``ReadOnly`` or, as HPE does for some settings, ``GrayOut``).
    """

    target: str
    gate: str
    gate_value: str
    lock: str = "ReadOnly"


@dataclass(frozen=True)
class Personality:
    """Everything vendor-specific about a simulated BMC."""

    vendor: str
    manufacturer: str
    model: str
    product: str
    system_id: str
    bios_version: str
    registry_id: str
    registry_version: str
    owning_entity: str
    registry_path: str
    settings_path: str
    settings_id: str
    settings_shows_full: bool
    dependency_mode: DependencyMode
    menu_name: str
    menu_display: str
    attributes: tuple[AttrDef, ...]
    dependencies: tuple[Dependency, ...]
    nps_attr: str
    nps_map: Mapping[str, int]
    smt_attr: str
    smt_map: Mapping[str, bool]
    # Real behaviours per vendor (docs/sim-bmc.md "Vendor behaviours" names the sources).
    registry_file_id: str | None = None  # Registries member name, when not the registry's Id
    settings_time: bool = True  # @Redfish.Settings.Time shown (iDRAC9 leaves it out)
    settings_link: bool = True  # Bios carries @Redfish.Settings (AMI: only Bios/Settings)
    success_message: bool = False  # iLO: Base.1.0.Success in Messages after an apply
    etag_required: bool = False  # AMI: PATCH without If-Match -> 428
    apply_times: tuple[str, ...] = ("OnReset",)  # SupportedApplyTimes advertised
    apply_time_unknown: bool = False  # Supermicro: @Redfish.SettingsApplyTime -> 400
    jobs: bool = False  # iDRAC: PATCH with an apply time -> 202 + a BIOS job
    # iDRAC: DELETE of a Scheduled BIOS job drops it and the pending values it holds, and the
    # settings object offers Actions/Oem/DellManager.ClearPending (docs/sim-bmc.md)
    clear_pending: bool = False
    dependency_style: Literal["neq", "equ"] = "neq"  # how the registry writes dependencies
    busy_message: str = "Base.1.16.ServiceTemporarilyUnavailable"
    busy_during_post: bool = False  # iLO: a settings PATCH during POST -> 400, retry later
    extra_systems: tuple[str, ...] = ()  # Systems without a Bios on the same BMC
    # A BMC built from a capture (agent/sim/bmc/captured.py): the captured URIs
    system_uri: str | None = None
    bios_uri: str | None = None

    @property
    def system_path(self) -> str:
        return self.system_uri or f"/redfish/v1/Systems/{self.system_id}"

    @property
    def bios_path(self) -> str:
        return self.bios_uri or f"{self.system_path}/Bios"

    def attr(self, name: str) -> AttrDef | None:
        for a in self.attributes:
            if a.name == name:
                return a
        return None

    def defaults(self) -> dict[str, AttrValue]:
        return {a.name: a.default for a in self.attributes}

    def dependencies_for(self, target: str) -> list[Dependency]:
        return [d for d in self.dependencies if d.target == target]

    def topology(self, attrs: Mapping[str, AttrValue]) -> tuple[int, bool]:
        """Map the vendor's BIOS values to the OS-visible ``(nps, smt)``.

        ``nps`` is 0, 1, 2 or 4 (0 = NPS0, one NUMA node for the whole machine).
        """
        nps = self.nps_map.get(str(attrs.get(self.nps_attr)), 1)
        smt = self.smt_map.get(str(attrs.get(self.smt_attr)), True)
        return nps, smt


def _enum(
    name: str,
    display: str,
    values: tuple[str, ...],
    default: str,
    *,
    help_text: str = "",
    value_display: Mapping[str, str] | None = None,
) -> AttrDef:
    assert default in values, (name, default)
    return AttrDef(
        name=name,
        type="Enumeration",
        default=default,
        display_name=display,
        values=values,
        value_display=dict(value_display or {}),
        help_text=help_text,
    )


_ED = ("Enabled", "Disabled")
_AED = ("Auto", "Enabled", "Disabled")
_NPS = ("NPS0", "NPS1", "NPS2", "NPS4", "Auto")
_NPS_MAP = {"NPS0": 0, "NPS1": 1, "NPS2": 2, "NPS4": 4, "Auto": 1}
_SMT_AED = {"Auto": True, "Enabled": True, "Disabled": False}


# --------------------------------------------------------------------------- Dell iDRAC
def dell(build: str | None = None) -> Personality:
    version = build or "1.3.2"
    gated = ("ProcPwrPerf", "ProcCStates", "ProcTurboMode", "DeterminismSlider", "DfCState")
    attrs = (
        _enum(
            "SysProfile",
            "System Profile",
            (
                "PerfPerWattOptimizedOs",
                "PerfPerWattOptimizedDapc",
                "PerfOptimized",
                "PerfWorkStationOptimized",
                "Custom",
            ),
            "PerfPerWattOptimizedDapc",
            help_text="Must be Custom before the power settings of the profile can change.",
        ),
        _enum("ProcPwrPerf", "CPU Power Management", ("MaxPerf", "OsDbpm", "SysDbpm"), "SysDbpm"),
        _enum("ProcCStates", "C States", _ED, "Enabled"),
        _enum("ProcTurboMode", "Turbo Boost", _ED, "Enabled"),
        _enum(
            "DeterminismSlider",
            "Determinism Slider",
            ("PowerDeterminism", "PerfDeterminism"),
            "PerfDeterminism",
        ),
        _enum("DfCState", "Data Fabric C-State", _ED, "Enabled"),
        _enum("ApbDis", "Algorithm Performance Boost Disable (ApbDis)", _ED, "Disabled"),
        _enum("NumaNodesPerSocket", "NUMA Nodes Per Socket", ("0", "1", "2", "4"), "1"),
        _enum("LogicalProc", "Logical Processor", _ED, "Enabled"),
        AttrDef(
            "AcPwrRcvryUserDelay",
            "Integer",
            60,
            "User Defined Delay (60s to 600s)",
            lower_bound=60,
            upper_bound=600,
        ),
        AttrDef("SystemBiosVersion", "String", version, "System BIOS Version", read_only=True),
        AttrDef("SystemServiceTag", "String", "SIMTAG1", "System Service Tag", read_only=True),
    )
    return Personality(
        vendor="dell",
        manufacturer="Dell Inc.",
        model="PowerEdge XE9785",
        product="Integrated Dell Remote Access Controller",
        system_id="System.Embedded.1",
        bios_version=version,
        registry_id="BiosAttributeRegistry.v1_0_3",
        registry_version="1.0.3",
        owning_entity="Dell",
        registry_path="/redfish/v1/Systems/System.Embedded.1/Bios/BiosRegistry",
        settings_path="/redfish/v1/Systems/System.Embedded.1/Bios/Settings",
        settings_id="Settings",
        settings_shows_full=False,
        dependency_mode="reject",
        menu_name="SysProfileSettings",
        menu_display="System Profile Settings",
        attributes=attrs,
        dependencies=tuple(Dependency(t, "SysProfile", "Custom") for t in gated),
        nps_attr="NumaNodesPerSocket",
        nps_map={"0": 0, "1": 1, "2": 2, "4": 4},
        smt_attr="LogicalProc",
        smt_map={"Enabled": True, "Disabled": False},
        registry_file_id="BiosAttributeRegistry",
        settings_time=False,
        apply_times=(
            "Immediate",
            "OnReset",
            "AtMaintenanceWindowStart",
            "InMaintenanceWindowOnReset",
        ),
        jobs=True,
        clear_pending=True,
        busy_message="IDRAC.2.9.SYS518",
    )


# --------------------------------------------------------------------------- HPE iLO 6/7
def hpe(build: str | None = None) -> Personality:
    version = build or "A55 v1.52 (07/18/2025)"
    gated = (
        "PowerRegulator",
        "MinProcIdlePower",
        "DataFabricCStateEnable",
        "ApplicationPowerBoost",
        "InfinityFabricPstate",
        "DeterminismControl",
        "PerformanceDeterminism",
    )
    deps = [
        Dependency(
            t, "WorkloadProfile", "Custom", "GrayOut" if t == "InfinityFabricPstate" else "ReadOnly"
        )
        for t in (*gated, "ProcAMDBoost")
    ]
    deps.append(Dependency("PerformanceDeterminism", "DeterminismControl", "DeterminismCtrlManual"))
    deps.append(Dependency("InfinityFabricPstate", "ApplicationPowerBoost", "Disabled", "GrayOut"))
    attrs = (
        _enum(
            "WorkloadProfile",
            "Workload Profile",
            (
                "GeneralPowerEfficientCompute",
                "GeneralPeakFrequencyCompute",
                "GeneralThroughputCompute",
                "VirtualizationPowerEfficient",
                "VirtualizationMaxPerformance",
                "LowLatency",
                "MissionCritical",
                "TransactionalApplicationProcessing",
                "HighPerformanceCompute",
                "DecisionSupport",
                "GraphicProcessing",
                "IOThroughput",
                "Custom",
            ),
            "GeneralPowerEfficientCompute",
            help_text="Must be Custom before the settings the profile governs can change.",
        ),
        _enum(
            "PowerRegulator",
            "Power Regulator",
            ("DynamicPowerSavings", "StaticLowPower", "StaticHighPerf", "OsControl"),
            "DynamicPowerSavings",
        ),
        _enum(
            "MinProcIdlePower",
            "Minimum Processor Idle Power Core C-State",
            ("C6", "NoCStates"),
            "C6",
        ),
        _enum(
            "DataFabricCStateEnable",
            "Data Fabric C-State Enable",
            ("Auto", "ForceEnabled", "Disabled"),
            "Auto",
        ),
        _enum("ApplicationPowerBoost", "Application Power Boost", _ED, "Enabled"),
        _enum(
            "InfinityFabricPstate",
            "Infinity Fabric Power State",
            ("Auto", "P0", "P1", "P2", "P3"),
            "Auto",
        ),
        _enum(
            "DeterminismControl",
            "Determinism Control",
            ("DeterminismCtrlAuto", "DeterminismCtrlManual"),
            "DeterminismCtrlAuto",
        ),
        _enum(
            "PerformanceDeterminism",
            "Performance Determinism",
            ("PerformanceDeterministic", "PowerDeterministic"),
            "PerformanceDeterministic",
        ),
        _enum(
            "NumaMemoryDomainsPerSocket",
            "NUMA Memory Domains per Socket",
            (
                "Auto",
                "OneMemoryDomainPerSocket",
                "TwoMemoryDomainsPerSocket",
                "FourMemoryDomainsPerSocket",
            ),
            "OneMemoryDomainPerSocket",
        ),
        _enum("ProcSMT", "AMD SMT Option", _ED, "Enabled"),
        _enum("ProcAMDBoost", "AMD Core Performance Boost", _ED, "Enabled"),
        AttrDef("ServerAssetTag", "String", "", "Server Asset Tag", max_length=32),
        AttrDef("RomVersion", "String", version, "System ROM Version", read_only=True),
    )
    return Personality(
        vendor="hpe",
        manufacturer="HPE",
        model="ProLiant Compute XD685",
        product="ProLiant Compute XD685",
        system_id="1",
        bios_version=version,
        registry_id="BiosAttributeRegistryA55.v1_1_52",
        registry_version="1.1.52",
        owning_entity="HPE",
        registry_path="/redfish/v1/registrystore/registries/en/biosattributeregistrya55.v1_1_52",
        settings_path="/redfish/v1/systems/1/bios/settings",
        settings_id="settings",
        settings_shows_full=True,
        dependency_mode="at_reset",
        menu_name="PowerAndPerformanceOptions",
        menu_display="Power and Performance Options",
        attributes=attrs,
        dependencies=tuple(deps),
        nps_attr="NumaMemoryDomainsPerSocket",
        nps_map={
            "Auto": 1,
            "OneMemoryDomainPerSocket": 1,
            "TwoMemoryDomainsPerSocket": 2,
            "FourMemoryDomainsPerSocket": 4,
        },
        smt_attr="ProcSMT",
        smt_map={"Enabled": True, "Disabled": False},
        success_message=True,
        dependency_style="equ",
        busy_message="iLO.2.14.InvalidOperationForSystemState",
        busy_during_post=True,
    )


# --------------------------------------------------------------------------- Supermicro H13
SUPERMICRO_DEFAULT_BUILD = "H13DSG-O-CPU 3.4 (20250612)"
_SMC_DEFAULT_SUFFIXES = {
    "NUMANodesPerSocket": "703E",
    "APBDIS": "A1C4",
    "FixedSOCPstate": "B27F",
    "DFCstates": "5D02",
    "SMTControl": "0A91",
    "CorePerformanceBoost": "3F6B",
    "DeterminismControl": "E448",
    "DeterminismEnable": "C90D",
    "GlobalC_stateControl": "7B15",
    "PowerProfileSelection": "62DA",
    "PowerOnDelay": "19F0",
    "BIOSVersion": "4E87",
}


def supermicro_suffix(build: str, base: str) -> str:
    """The hex suffix Supermicro's registry gives ``base`` in BIOS build ``build``."""
    if build == SUPERMICRO_DEFAULT_BUILD and base in _SMC_DEFAULT_SUFFIXES:
        return _SMC_DEFAULT_SUFFIXES[base]
    return hashlib.sha1(f"{build}\0{base}".encode()).hexdigest()[:4].upper()


def supermicro(build: str | None = None) -> Personality:
    b = build or SUPERMICRO_DEFAULT_BUILD

    def n(base: str) -> str:
        return f"{base}_{supermicro_suffix(b, base)}"

    attrs = (
        _enum(n("NUMANodesPerSocket"), "NUMA nodes per socket", _NPS, "NPS1"),
        _enum(n("APBDIS"), "APBDIS", ("0", "1", "Auto"), "0"),
        _enum(n("FixedSOCPstate"), "Fixed SOC P-State", ("P0", "P1", "P2", "Auto"), "Auto"),
        _enum(n("DFCstates"), "DF C-states", _AED, "Auto"),
        _enum(n("SMTControl"), "SMT Control", _AED, "Auto"),
        _enum(n("CorePerformanceBoost"), "Core Performance Boost", ("Auto", "Disabled"), "Auto"),
        _enum(n("DeterminismControl"), "Determinism Control", ("Auto", "Manual"), "Auto"),
        _enum(
            n("DeterminismEnable"), "Determinism Enable", ("Power", "Performance"), "Performance"
        ),
        _enum(n("GlobalC_stateControl"), "Global C-state Control", _AED, "Enabled"),
        _enum(
            n("PowerProfileSelection"),
            "Power Profile Selection",
            (
                "High Performance Mode",
                "Efficiency Mode",
                "Maximum IO Performance Mode",
                "Balanced Memory Performance Mode",
            ),
            "Efficiency Mode",
        ),
        AttrDef(n("PowerOnDelay"), "Integer", 0, "Power On Delay", lower_bound=0, upper_bound=255),
        AttrDef(n("BIOSVersion"), "String", b, "BIOS Version", read_only=True),
    )
    deps = (
        Dependency(n("DeterminismEnable"), n("DeterminismControl"), "Manual"),
        Dependency(n("FixedSOCPstate"), n("APBDIS"), "1"),
    )
    return Personality(
        vendor="supermicro",
        manufacturer="Supermicro",
        model="AS -8126GS-TNMR",
        product="AS -8126GS-TNMR",
        system_id="1",
        bios_version=b,
        registry_id="BiosAttributeRegistry.v1_0_0",
        registry_version="1.0.0",
        owning_entity="Supermicro",
        registry_path="/redfish/v1/Registries/BiosAttributeRegistry.v1_0_0/BiosAttributeRegistry.json",
        settings_path="/redfish/v1/Systems/1/Bios/SD",
        settings_id="SD",
        settings_shows_full=False,
        dependency_mode="at_reset",
        menu_name="CPUConfiguration",
        menu_display="CPU Configuration",
        attributes=attrs,
        dependencies=deps,
        nps_attr=n("NUMANodesPerSocket"),
        nps_map=_NPS_MAP,
        smt_attr=n("SMTControl"),
        smt_map=_SMT_AED,
        apply_times=(),
        apply_time_unknown=True,
    )


# --------------------------------------------------------------------------- AMD CBS tokens
def amd(build: str | None = None) -> Personality:
    version = build or "RMI1009B"
    attrs = (
        _enum("CbsDfCmnDramNps", "NUMA nodes per socket", _NPS, "NPS1"),
        _enum("CbsCmnApbdis", "APBDIS", ("0", "1", "Auto"), "0"),
        _enum("CbsCmnFixedSocPstate", "Fixed SOC P-state", ("P0", "P1", "P2", "Auto"), "Auto"),
        _enum("CbsCmnGnbSmuDfCstates", "DF C-states", _AED, "Auto"),
        _enum("CbsCpuSmtCtrl", "SMT Control", _AED, "Auto"),
        _enum("CbsCmnCpuCpb", "Core Performance Boost", ("Auto", "Disabled"), "Auto"),
        _enum("CbsCmnDeterminismCtl", "Determinism Control", ("Auto", "Manual"), "Auto"),
        _enum(
            "CbsCmnDeterminismEnable", "Determinism Enable", ("Power", "Performance"), "Performance"
        ),
        _enum("CbsCmnCpuGlobalCstateCtrl", "Global C-state Control", _AED, "Enabled"),
        AttrDef(
            "CbsCmncTDPLimit", "Integer", 0, "cTDP (W, 0 = auto)", lower_bound=0, upper_bound=500
        ),
        AttrDef("CbsCmnCpuSmee", "Boolean", False, "SMEE"),
        AttrDef("BiosVersion", "String", version, "BIOS Version", read_only=True),
    )
    deps = (
        Dependency("CbsCmnDeterminismEnable", "CbsCmnDeterminismCtl", "Manual"),
        Dependency("CbsCmnFixedSocPstate", "CbsCmnApbdis", "1"),
    )
    return Personality(
        vendor="amd",
        manufacturer="AMD",
        model="Instinct MI355X Platform",
        product="OpenBMC",
        system_id="system",
        bios_version=version,
        registry_id="BiosAttributeRegistry",
        registry_version="1.0.0",
        owning_entity="AMD",
        registry_path="/redfish/v1/Registries/BiosAttributeRegistry/BiosAttributeRegistry",
        settings_path="/redfish/v1/Systems/system/Bios/Settings",
        settings_id="Settings",
        settings_shows_full=False,
        dependency_mode="reject",
        menu_name="AMDCBS",
        menu_display="AMD CBS",
        attributes=attrs,
        dependencies=deps,
        nps_attr="CbsDfCmnDramNps",
        nps_map=_NPS_MAP,
        smt_attr="CbsCpuSmtCtrl",
        smt_map=_SMT_AED,
        settings_link=False,
        etag_required=True,
        extra_systems=("UBB",),
    )


_FACTORIES = {"dell": dell, "hpe": hpe, "supermicro": supermicro, "amd": amd}
_ALIASES = {
    "idrac": "dell",
    "ilo": "hpe",
    "smc": "supermicro",
    "amd_cbs": "amd",
    "amd-cbs": "amd",
    "cbs": "amd",
}
VENDORS: tuple[str, ...] = tuple(_FACTORIES)


def canonical_vendor(vendor: str) -> str:
    v = vendor.strip().lower()
    v = _ALIASES.get(v, v)
    if v not in _FACTORIES:
        raise ValueError(f"unknown BMC vendor personality {vendor!r}; choose one of {VENDORS}")
    return v


def get_personality(vendor: str, build: str | None = None) -> Personality:
    """The personality for ``vendor`` (dell, hpe, supermicro, amd) and BIOS ``build``."""
    return _FACTORIES[canonical_vendor(vendor)](build)
