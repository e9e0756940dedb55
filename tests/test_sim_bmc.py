"""Tests of the simulated Redfish BMC (agent.sim.bmc): real HTTP(S) over loopback, no mocks."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import signal
import ssl
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.sim.bmc import BmcHandle, generate_self_signed, get_personality, start_bmcs
from agent.sim.bmc.config import load_config
from agent.sim.bmc.personalities import supermicro_suffix

USER = "root"
PASSWORD = "s3cret-Pa55word!"
CSDL = Path("/work/shared/redfish/csdl")
VALIDATOR = Path(sys.executable).parent / "rf_service_validator"
VENDORS = ("dell", "hpe", "supermicro", "amd")
DELAY = 0.2


# ----------------------------------------------------------------------------- helpers
@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: Any
    elapsed: float


class Client:
    """Tiny Redfish client over http.client (one connection per request)."""

    def __init__(self, url: str, cafile: Path | None = None) -> None:
        scheme, _, hostport = url.partition("://")
        host, _, port = hostport.partition(":")
        self.scheme, self.host, self.port = scheme, host, int(port)
        self.ctx: ssl.SSLContext | None = None
        if scheme == "https":
            self.ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        self.auth: tuple[str, str] | None = (USER, PASSWORD)
        self.token: str | None = None
        # PATCH without If-Match first reads the resource's ETag (AMI answers 428 without)
        self.auto_etag = True

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Reply:
        conn: http.client.HTTPConnection
        if self.ctx is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.ctx
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        hdrs = {"Accept": "application/json"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if auth and self.token:
            hdrs["X-Auth-Token"] = self.token
        elif auth and self.auth:
            cred = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            hdrs["Authorization"] = f"Basic {cred}"
        hdrs.update(headers or {})
        if method == "PATCH" and self.auto_etag and "If-Match" not in hdrs:
            etag = self.get(path).headers.get("ETag")
            if etag:
                hdrs["If-Match"] = etag
        start = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        elapsed = time.monotonic() - start
        parsed: Any = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload.decode()
        return Reply(resp.status, resp.headers, parsed, elapsed)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)


def _ids(reply: Reply) -> list[str]:
    return [m["MessageId"] for m in reply.body["error"]["@Message.ExtendedInfo"]]


def _node_cfg(tmp: Path, name: str, vendor: str, **extra: Any) -> dict[str, Any]:
    pw = tmp / "bmc-password"
    pw.write_text(PASSWORD + "\n")
    cfg: dict[str, Any] = {
        "name": name,
        "port": 0,
        "vendor": vendor,
        "username": USER,
        "password_file": str(pw),
        "reset_delay": DELAY,
        "request_log": str(tmp / f"{name}-requests.jsonl"),
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    handles: list[BmcHandle] = []

    def _start(vendor: str, name: str = "node1", **extra: Any) -> tuple[BmcHandle, Client]:
        h = start_bmcs({"nodes": [_node_cfg(tmp_path, name, vendor, **extra)]})
        handles.append(h)
        return h, Client(h.url(name), h.cert_path(name))

    yield _start
    for h in handles:
        h.stop()


def _system(vendor: str) -> str:
    return get_personality(vendor).system_path


def _settings_path(c: Client, vendor: str) -> str:
    bios = c.get(_system(vendor) + "/Bios").body
    if "@Redfish.Settings" not in bios:  # AMI: only the Bios/Settings path exists
        return get_personality(vendor).settings_path
    path: str = bios["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
    return path


def _bios_messages(c: Client, vendor: str) -> list[dict[str, Any]]:
    """Settings messages without iLO's Success (the transfer itself succeeded)."""
    bios = c.get(_system(vendor) + "/Bios").body
    msgs = (bios.get("@Redfish.Settings") or {}).get("Messages") or []
    return [m for m in msgs if not m["MessageId"].endswith(".Success")]


def _registry(c: Client, vendor: str) -> dict[str, Any]:
    # the registry file is named as the vendor names it: take the collection's member
    member = c.get("/redfish/v1/Registries").body["Members"][0]["@odata.id"]
    file_ = c.get(member).body
    reply = c.get(file_["Location"][0]["Uri"])
    assert reply.status == 200
    body: dict[str, Any] = reply.body
    return body


def _by_display(reg: dict[str, Any], display: str) -> str:
    for a in reg["RegistryEntries"]["Attributes"]:
        if a["DisplayName"] == display:
            name: str = a["AttributeName"]
            return name
    raise KeyError(display)


def _reset_and_wait(c: Client, vendor: str, reset_type: str = "ForceRestart") -> None:
    r = c.request(
        "POST", _system(vendor) + "/Actions/ComputerSystem.Reset", {"ResetType": reset_type}
    )
    assert r.status == 204, r.body
    sent = time.monotonic()
    state = c.get(_system(vendor)).body["PowerState"]
    if time.monotonic() - sent < DELAY / 2:  # not racing the boot timer on a loaded machine
        assert state == "Off"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if c.get(_system(vendor)).body["PowerState"] == "On":
            return
        time.sleep(0.05)
    raise AssertionError("system did not come back On")


# per vendor: (NPS attr display-independent name base, value for NPS4, SMT attr, SMT off value)
NPS_SMT = {
    "dell": ("NumaNodesPerSocket", "4", "LogicalProc", "Disabled"),
    "hpe": ("NumaMemoryDomainsPerSocket", "FourMemoryDomainsPerSocket", "ProcSMT", "Disabled"),
    "supermicro": ("NUMANodesPerSocket", "NPS4", "SMTControl", "Disabled"),
    "amd": ("CbsDfCmnDramNps", "NPS4", "CbsCpuSmtCtrl", "Disabled"),
}


def _name(vendor: str, base: str) -> str:
    attrs = get_personality(vendor).defaults()
    for n in attrs:
        if n == base or n.startswith(base + "_"):
            return n
    raise KeyError(base)


# ----------------------------------------------------------------------------- validator
@pytest.fixture(scope="module")
def validator_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One BMC per personality (AMD over TLS), validated concurrently by DMTF's validator."""
    assert VALIDATOR.exists(), "pip install redfish-service-validator into the venv"
    tmp = tmp_path_factory.mktemp("rfv")
    nodes = [_node_cfg(tmp, v, v, tls=(v == "amd")) for v in VENDORS]
    handle = start_bmcs({"nodes": nodes})

    def run(vendor: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(VALIDATOR),
            "-r", handle.url(vendor), "-u", USER, "-p", PASSWORD,
            # TLS node also exercises session login/logout
            "--authtype", "Session" if vendor == "amd" else "Basic",
            "--schema_directory", str(CSDL), "--skipschema",
            "--logdir", str(tmp / f"logs-{vendor}"),
        ]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    try:
        with ThreadPoolExecutor(len(VENDORS)) as pool:
            results = dict(zip(VENDORS, pool.map(run, VENDORS), strict=True))
        yield {"results": results, "handle": handle, "tmp": tmp}
    finally:
        handle.stop()


@pytest.mark.slow
@pytest.mark.parametrize("vendor", VENDORS)
def test_redfish_service_validator_passes(validator_runs: dict[str, Any], vendor: str) -> None:
    proc = validator_runs["results"][vendor]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # the whole tree was walked, including the attribute registry file
    p = get_personality(vendor)
    assert f"Validating {p.registry_path}..." in proc.stdout
    if p.settings_link:  # AMI-style (amd): no @Redfish.Settings link, nothing leads there
        assert f"Validating {p.settings_path}..." in proc.stdout
    log = Path(validator_runs["tmp"] / f"{vendor}-requests.jsonl").read_text()
    assert PASSWORD not in log


# ----------------------------------------------------------------------------- model
@pytest.mark.parametrize("vendor", VENDORS)
def test_defaults_registry_and_resources(start: Any, vendor: str) -> None:
    h, c = start(vendor)
    root = c.get("/redfish/v1/", auth=False)
    assert root.status == 200 and "@Redfish.Copyright" not in json.dumps(root.body)
    p = get_personality(vendor)
    systems = c.get("/redfish/v1/Systems").body
    assert systems["Members"] == [{"@odata.id": _system(vendor)}] + [
        {"@odata.id": f"/redfish/v1/Systems/{x}"} for x in p.extra_systems
    ]
    system = c.get(_system(vendor)).body
    assert system["PowerState"] == "On"
    action = system["Actions"]["#ComputerSystem.Reset"]
    assert set(action["ResetType@Redfish.AllowableValues"]) == {
        "GracefulRestart",
        "ForceRestart",
        "On",
        "ForceOff",
    }
    bios = c.get(_system(vendor) + "/Bios").body
    if p.settings_link:
        settings = bios["@Redfish.Settings"]
        assert settings["Messages"] == []
        assert settings.get("SupportedApplyTimes", []) == list(p.apply_times)
        assert {"SettingsObject", "ETag"} <= set(settings)
        assert ("Time" in settings) is p.settings_time
    else:
        assert "@Redfish.Settings" not in bios
    assert h.state("node1")["topology"] == (1, True)

    reg = _registry(c, vendor)
    entries = {a["AttributeName"]: a for a in reg["RegistryEntries"]["Attributes"]}
    assert set(entries) == set(bios["Attributes"])
    types_seen = {a["Type"] for a in entries.values()}
    assert "Enumeration" in types_seen and "String" in types_seen
    for name, a in entries.items():
        assert {"DisplayName", "ReadOnly", "ResetRequired"} <= set(a)
        if a["Type"] == "Enumeration":
            assert bios["Attributes"][name] in [v["ValueName"] for v in a["Value"]]
    assert any(a["ReadOnly"] for a in entries.values())
    deps = reg["RegistryEntries"]["Dependencies"]
    assert deps and all(d["Dependency"]["MapToProperty"] in ("ReadOnly", "GrayOut") for d in deps)
    conditions = {t["MapFromCondition"] for d in deps for t in d["Dependency"]["MapFrom"]}
    assert conditions == ({"EQU"} if p.dependency_style == "equ" else {"NEQ"})


def test_vendor_attribute_names_and_defaults() -> None:
    dell = get_personality("dell").defaults()
    assert dell["SysProfile"] != "Custom" and dell["NumaNodesPerSocket"] == "1"
    for n in ("ApbDis", "DfCState", "LogicalProc", "ProcTurboMode", "DeterminismSlider"):
        assert n in dell
    assert dell["ProcCStates"] == "Enabled" and dell["ProcPwrPerf"] != "MaxPerf"
    hpe = get_personality("hpe").defaults()
    assert hpe["NumaMemoryDomainsPerSocket"] == "OneMemoryDomainPerSocket"
    assert hpe["WorkloadProfile"] != "Custom" and hpe["ApplicationPowerBoost"] == "Enabled"
    assert hpe["DataFabricCStateEnable"] == "Auto" and hpe["MinProcIdlePower"] == "C6"
    amd = get_personality("amd").defaults()
    assert amd["CbsDfCmnDramNps"] == "NPS1" and amd["CbsCmnApbdis"] == "0"
    assert amd["CbsCmnCpuGlobalCstateCtrl"] == "Enabled"
    smc = get_personality("supermicro").defaults()
    assert smc["NUMANodesPerSocket_703E"] == "NPS1"
    other = get_personality("supermicro", build="H13 BIOS 3.5").defaults()
    suffix = supermicro_suffix("H13 BIOS 3.5", "NUMANodesPerSocket")
    assert f"NUMANodesPerSocket_{suffix}" in other and "NUMANodesPerSocket_703E" not in other


def test_supermicro_build_suffix_and_display_names(start: Any) -> None:
    h, c = start("supermicro", bios_build="H13 BIOS 9.9")
    reg = _registry(c, "supermicro")
    name = _by_display(reg, "NUMA nodes per socket")
    assert name.startswith("NUMANodesPerSocket_") and name != "NUMANodesPerSocket_703E"
    assert name in c.get(_system("supermicro") + "/Bios").body["Attributes"]


# ----------------------------------------------------------------------------- PATCH / reset
@pytest.mark.parametrize("vendor", VENDORS)
def test_patch_pending_then_reset_applies(start: Any, vendor: str) -> None:
    h, c = start(vendor)
    nps_base, nps4, smt_base, smt_off = NPS_SMT[vendor]
    nps, smt = _name(vendor, nps_base), _name(vendor, smt_base)
    spath = _settings_path(c, vendor)
    p = get_personality(vendor)
    before = c.get(_system(vendor) + "/Bios").body
    body: dict[str, Any] = {"Attributes": {nps: nps4, smt: smt_off}}
    if p.apply_times:  # only where SupportedApplyTimes advertises it
        body["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
    r = c.request("PATCH", spath, body)
    if p.jobs:  # iDRAC: a BIOS configuration job, scheduled for the next reset
        assert r.status == 202 and "/Jobs/JID_" in r.headers["Location"], r.body
        job = c.get(r.headers["Location"]).body
        assert job["JobState"] == "Scheduled"
    else:
        assert r.status == 200, r.body
    pending = c.get(spath).body["Attributes"]
    assert pending[nps] == nps4 and pending[smt] == smt_off
    if vendor != "hpe":  # HPE's settings object shows the full attribute set
        assert set(pending) == {nps, smt}
    cur = c.get(_system(vendor) + "/Bios").body
    assert cur["Attributes"][nps] == before["Attributes"][nps]  # not applied yet
    t0 = time.monotonic()
    _reset_and_wait(c, vendor)
    assert time.monotonic() - t0 >= DELAY * 0.9
    after = c.get(_system(vendor) + "/Bios").body
    assert after["Attributes"][nps] == nps4 and after["Attributes"][smt] == smt_off
    if p.settings_link:
        msgs = after["@Redfish.Settings"]["Messages"]
        assert msgs == ([{"MessageId": "Base.1.0.Success"}] if p.success_message else [])
        if p.settings_time:
            assert after["@Redfish.Settings"]["Time"] != before["@Redfish.Settings"]["Time"]
        assert after["@Redfish.Settings"]["ETag"] != before["@Redfish.Settings"]["ETag"]
    if p.jobs:  # the values show before the job says Completed
        job = c.get(r.headers["Location"]).body
        assert job["JobState"] in ("Running", "Completed")
        deadline = time.monotonic() + 10
        while job["JobState"] != "Completed" and time.monotonic() < deadline:
            time.sleep(0.05)
            job = c.get(r.headers["Location"]).body
        assert job["JobState"] == "Completed"
    left = c.get(spath).body["Attributes"]
    assert left == ({} if vendor != "hpe" else after["Attributes"])
    system = c.get(_system(vendor)).body
    assert system["ProcessorSummary"]["ThreadingEnabled"] is False
    assert h.state("node1")["topology"] == (4, False)


def test_reset_power_transitions(start: Any) -> None:
    h, c = start("dell", reset_delay=1.0)
    action = _system("dell") + "/Actions/ComputerSystem.Reset"

    def power() -> str:
        state: str = c.get(_system("dell")).body["PowerState"]
        return state

    assert c.request("POST", action, {"ResetType": "ForceOff"}).status == 204
    assert power() == "Off"
    time.sleep(0.3)
    assert power() == "Off"  # ForceOff stays off
    assert c.request("POST", action, {"ResetType": "On"}).status == 204
    assert power() == "Off"  # booting
    assert h.wait_power("node1", "On", 10) and h.state("node1")["boot_count"] == 1
    assert c.request("POST", action, {"ResetType": "GracefulRestart"}).status == 204
    assert power() == "Off"
    # a second reset while booting changes nothing; ForceOff cancels the boot
    assert c.request("POST", action, {"ResetType": "ForceRestart"}).status == 204
    assert c.request("POST", action, {"ResetType": "ForceOff"}).status == 204
    time.sleep(1.2)
    assert power() == "Off" and h.state("node1")["boot_count"] == 1
    assert c.request("POST", action, {"ResetType": "ForceRestart"}).status == 204
    assert h.wait_power("node1", "On", 10) and h.state("node1")["boot_count"] == 2
    r = c.request("POST", action, {"ResetType": "PowerCycle"})
    assert r.status == 400 and _ids(r) == ["Base.1.16.ActionParameterValueNotInList"]
    r = c.request("POST", action, {})
    assert r.status == 400 and _ids(r) == ["Base.1.16.ActionParameterMissing"]


# ----------------------------------------------------------------------------- dependencies
def test_dell_sysprofile_must_be_custom(start: Any) -> None:
    h, c = start("dell")
    spath = _settings_path(c, "dell")
    r = c.request("PATCH", spath, {"Attributes": {"ProcCStates": "Disabled"}})
    assert r.status == 400
    info = r.body["error"]["@Message.ExtendedInfo"][0]
    assert info["MessageId"] == "Base.1.16.PropertyValueConflict"
    assert "/Attributes/ProcCStates" in info["RelatedProperties"]
    assert c.get(spath).body["Attributes"] == {}
    # setting SysProfile=Custom first (or in the same PATCH) unlocks the power settings
    assert c.request("PATCH", spath, {"Attributes": {"SysProfile": "Custom"}}).status == 200
    r = c.request(
        "PATCH", spath, {"Attributes": {"ProcCStates": "Disabled", "ProcTurboMode": "Enabled"}}
    )
    assert r.status == 200, r.body
    _reset_and_wait(c, "dell")
    attrs = c.get(_system("dell") + "/Bios").body["Attributes"]
    assert attrs["SysProfile"] == "Custom" and attrs["ProcCStates"] == "Disabled"


def test_hpe_workload_profile_fails_at_reset(start: Any) -> None:
    h, c = start("hpe")
    spath = _settings_path(c, "hpe")
    r = c.request(
        "PATCH", spath, {"Attributes": {"PowerRegulator": "StaticHighPerf", "ProcSMT": "Disabled"}}
    )
    assert r.status == 200  # iLO accepts; the BIOS refuses at POST
    _reset_and_wait(c, "hpe")
    bios = c.get(_system("hpe") + "/Bios").body
    assert bios["Attributes"]["PowerRegulator"] == "DynamicPowerSavings"
    assert bios["Attributes"]["ProcSMT"] == "Disabled"  # not gated: applied
    msgs = bios["@Redfish.Settings"]["Messages"]
    failed = [m for m in msgs if m["MessageId"].endswith(".SettingsFailed")]
    assert failed and failed[0]["RelatedProperties"] == ["/Attributes/PowerRegulator"]
    # with WorkloadProfile=Custom it applies, and Messages clear
    r = c.request(
        "PATCH",
        spath,
        {"Attributes": {"WorkloadProfile": "Custom", "PowerRegulator": "StaticHighPerf"}},
    )
    assert r.status == 200
    _reset_and_wait(c, "hpe")
    bios = c.get(_system("hpe") + "/Bios").body
    assert bios["Attributes"]["PowerRegulator"] == "StaticHighPerf"
    assert bios["@Redfish.Settings"]["Messages"] == [{"MessageId": "Base.1.0.Success"}]


def test_hpe_chained_dependency(start: Any) -> None:
    h, c = start("hpe")
    spath = _settings_path(c, "hpe")
    # PerformanceDeterminism needs WorkloadProfile=Custom AND DeterminismControl=Manual
    body = {
        "Attributes": {
            "WorkloadProfile": "Custom",
            "DeterminismControl": "DeterminismCtrlManual",
            "PerformanceDeterminism": "PowerDeterministic",
            "ApplicationPowerBoost": "Disabled",
            "InfinityFabricPstate": "P0",
        }
    }
    assert c.request("PATCH", spath, body).status == 200
    _reset_and_wait(c, "hpe")
    bios = c.get(_system("hpe") + "/Bios").body
    for k, v in body["Attributes"].items():
        assert bios["Attributes"][k] == v
    assert _bios_messages(c, "hpe") == []


def test_supermicro_determinism_needs_manual_at_reset(start: Any) -> None:
    h, c = start("supermicro")
    reg = _registry(c, "supermicro")
    ctl, enable = _by_display(reg, "Determinism Control"), _by_display(reg, "Determinism Enable")
    spath = _settings_path(c, "supermicro")
    assert spath.endswith("/Bios/SD")
    assert c.request("PATCH", spath, {"Attributes": {enable: "Power"}}).status == 200
    _reset_and_wait(c, "supermicro")
    bios = c.get(_system("supermicro") + "/Bios").body
    assert bios["Attributes"][enable] == "Performance"
    related = [p for m in _bios_messages(c, "supermicro") for p in m["RelatedProperties"]]
    assert f"/Attributes/{enable}" in related
    assert c.request("PATCH", spath, {"Attributes": {ctl: "Manual", enable: "Power"}}).status == 200
    _reset_and_wait(c, "supermicro")
    bios = c.get(_system("supermicro") + "/Bios").body
    assert bios["Attributes"][enable] == "Power" and bios["@Redfish.Settings"]["Messages"] == []


def test_amd_cbs_determinism_rejected_at_patch(start: Any) -> None:
    h, c = start("amd")
    spath = _settings_path(c, "amd")
    assert spath.endswith("/Bios/Settings")
    r = c.request("PATCH", spath, {"Attributes": {"CbsCmnDeterminismEnable": "Power"}})
    assert r.status == 400 and _ids(r) == ["Base.1.16.PropertyValueConflict"]
    r = c.request("PATCH", spath, {"Attributes": {"CbsCmnFixedSocPstate": "P0"}})
    assert r.status == 400  # needs CbsCmnApbdis=1
    body = {
        "Attributes": {
            "CbsCmnDeterminismCtl": "Manual",
            "CbsCmnDeterminismEnable": "Power",
            "CbsCmnApbdis": "1",
            "CbsCmnFixedSocPstate": "P0",
            "CbsCmnGnbSmuDfCstates": "Disabled",
            "CbsCmncTDPLimit": 400,
            "CbsCmnCpuSmee": True,
        }
    }
    assert c.request("PATCH", spath, body).status == 200
    _reset_and_wait(c, "amd")
    attrs = c.get(_system("amd") + "/Bios").body["Attributes"]
    for k, v in body["Attributes"].items():
        assert attrs[k] == v


# ----------------------------------------------------------------------------- rejections
def test_patch_rejections(start: Any) -> None:
    h, c = start("dell")
    spath = _settings_path(c, "dell")
    cases = [
        ({"Attributes": {"NoSuchKnob": "x"}}, "PropertyUnknown"),
        ({"Attributes": {"NumaNodesPerSocket": "3"}}, "PropertyValueNotInList"),
        ({"Attributes": {"SystemServiceTag": "ABC"}}, "PropertyNotWritable"),
        ({"Attributes": {"AcPwrRcvryUserDelay": 5}}, "PropertyValueOutOfRange"),
        ({"Attributes": {"AcPwrRcvryUserDelay": "60"}}, "PropertyValueTypeError"),
        ({"Attributes": {"LogicalProc": True}}, "PropertyValueTypeError"),
        ({"Attributes": {}, "Bogus": 1}, "PropertyUnknown"),
        (
            {"Attributes": {}, "@Redfish.SettingsApplyTime": {"ApplyTime": "Never"}},
            "PropertyValueNotInList",
        ),
        ({"NotAttributes": {}}, "PropertyUnknown"),
    ]
    for body, key in cases:
        r = c.request("PATCH", spath, body)
        assert r.status == 400, body
        assert f"Base.1.16.{key}" in _ids(r), (body, r.body)
        assert "@Message.ExtendedInfo" in r.body["error"]
    # atomic: a PATCH with one bad attribute stores nothing
    r = c.request("PATCH", spath, {"Attributes": {"LogicalProc": "Disabled", "Nope": "1"}})
    assert r.status == 400
    assert c.get(spath).body["Attributes"] == {}
    r = c.request("PATCH", spath, raw=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and _ids(r) == ["Base.1.16.MalformedJSON"]
    # current Bios is read-only; settings object honours If-Match
    assert c.request("PATCH", _system("dell") + "/Bios", {"Attributes": {}}).status == 405
    r = c.request(
        "PATCH", spath, {"Attributes": {"LogicalProc": "Disabled"}}, headers={"If-Match": '"nope"'}
    )
    assert r.status == 412
    etag = c.get(spath).headers["ETag"]
    r = c.request(
        "PATCH", spath, {"Attributes": {"LogicalProc": "Disabled"}}, headers={"If-Match": etag}
    )
    assert r.status == 200
    assert c.get("/redfish/v1/NoSuchThing").status == 404


# ----------------------------------------------------------------------------- auth
def test_auth_basic_and_401(start: Any) -> None:
    h, c = start("hpe")
    assert c.get("/redfish/v1/", auth=False).status == 200
    assert c.get("/redfish/v1", auth=False).status == 200
    assert c.get("/redfish", auth=False).body == {"v1": "/redfish/v1/"}
    for path in ("/redfish/v1/Systems", _system("hpe") + "/Bios", "/redfish/v1/Registries"):
        r = c.get(path, auth=False)
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        assert _ids(r) == ["Base.1.16.NoValidSession"]
    r = c.request(
        "POST", _system("hpe") + "/Actions/ComputerSystem.Reset", {"ResetType": "On"}, auth=False
    )
    assert r.status == 401
    c.auth = (USER, "wrong")
    assert c.get("/redfish/v1/Systems").status == 401
    c.auth = ("admin", PASSWORD)
    assert c.get("/redfish/v1/Systems").status == 401
    c.auth = (USER, PASSWORD)
    assert c.get("/redfish/v1/Systems").status == 200
    bad = {"Authorization": "Basic !!!notbase64"}
    assert c.get("/redfish/v1/Systems", auth=False, headers=bad).status == 401


def test_session_login_logout(start: Any) -> None:
    h, c = start("dell")
    sessions = "/redfish/v1/SessionService/Sessions"
    r = c.request("POST", sessions, {"UserName": USER, "Password": "nope"}, auth=False)
    assert r.status == 401
    r = c.request("POST", sessions, {"UserName": USER, "Password": PASSWORD}, auth=False)
    assert r.status == 201
    token, location = r.headers["X-Auth-Token"], r.headers["Location"]
    assert token and location.startswith(sessions + "/")
    assert PASSWORD not in json.dumps(r.body) and token not in json.dumps(r.body)
    c.auth, c.token = None, token
    assert c.get("/redfish/v1/Systems").status == 200
    s = c.get(location).body
    assert s["UserName"] == USER and s["Password"] is None
    assert c.get(sessions).body["Members"] == [{"@odata.id": location}]
    assert c.request("DELETE", location).status == 204
    assert c.get("/redfish/v1/Systems").status == 401
    c.token = "not-a-token"
    assert c.get("/redfish/v1/Systems").status == 401


# ----------------------------------------------------------------------------- TLS
def test_tls_generated_and_provided(start: Any, tmp_path: Path) -> None:
    h, c = start("dell", tls=True)
    assert h.url("node1").startswith("https://127.0.0.1:")
    assert c.get("/redfish/v1/Systems").status == 200  # verified against the generated cert
    plain = http.client.HTTPConnection("127.0.0.1", h.port("node1"), timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        plain.request("GET", "/redfish/v1/")
        plain.getresponse().read()
    plain.close()
    cert, key = generate_self_signed(tmp_path / "certs")
    h2, c2 = start("amd", name="node2", tls={"cert": str(cert), "key": str(key)})
    assert h2.cert_path("node2") == cert
    assert c2.get(_system("amd")).body["PowerState"] == "On"


# ----------------------------------------------------------------------------- request log
def test_request_log_has_no_secrets_and_shows_dry_run(start: Any, tmp_path: Path) -> None:
    h, c = start("dell")
    log = tmp_path / "node1-requests.jsonl"
    # a "dry run": reads only
    for path in ("/redfish/v1/", "/redfish/v1/Systems", _system("dell") + "/Bios"):
        c.get(path)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 3 and {e["method"] for e in entries} == {"GET"}
    for e in entries:
        assert {"time", "method", "path", "status", "node"} <= set(e)
    # now writes, a login and a failed login
    r = c.request(
        "POST", "/redfish/v1/SessionService/Sessions", {"UserName": USER, "Password": PASSWORD}
    )
    token = r.headers["X-Auth-Token"]
    c.request(
        "POST",
        "/redfish/v1/SessionService/Sessions",
        {"UserName": USER, "Password": "bad-guess-pw"},
    )
    c.token = token
    c.request("PATCH", _settings_path(c, "dell"), {"Attributes": {"LogicalProc": "Disabled"}})
    c.request("POST", _system("dell") + "/Actions/ComputerSystem.Reset", {"ResetType": "On"})
    text = log.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    patches = [e for e in entries if e["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["status"] == 200
    assert patches[0]["attributes"] == ["LogicalProc"]
    assert any(e.get("reset_type") == "On" for e in entries)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, "bad-guess-pw", token, basic, "Authorization", "X-Auth-Token"):
        assert secret not in text


# ----------------------------------------------------------------------------- faults
def test_fault_down_and_back(start: Any) -> None:
    h, c = start("dell")
    port = h.port("node1")
    h.set_fault("node1", "down", True)
    with pytest.raises(ConnectionRefusedError):
        c.get("/redfish/v1/", timeout=2)
    h.set_fault("node1", "down", False)
    assert h.port("node1") == port
    assert c.get("/redfish/v1/").status == 200


def test_fault_down_from_config(start: Any) -> None:
    h, c = start("amd", faults={"down": True})
    with pytest.raises(ConnectionRefusedError):
        c.get("/redfish/v1/", timeout=2)
    h.clear_faults("node1")
    assert c.get("/redfish/v1/").status == 200


def test_fault_slow(start: Any) -> None:
    h, c = start("hpe", faults={"slow": 0.4})
    r = c.get("/redfish/v1/")
    assert r.status == 200 and r.elapsed >= 0.4
    h.set_fault("node1", "slow", 0)
    assert c.get("/redfish/v1/").elapsed < 0.4


def test_fault_error500(start: Any) -> None:
    h, c = start("supermicro")
    h.set_fault("node1", "error500", True)
    for path in ("/redfish/v1/", "/redfish/v1/Systems"):
        r = c.get(path)
        assert r.status == 500 and _ids(r) == ["Base.1.16.InternalError"]
    h.set_fault("node1", "error500", False)
    assert c.get("/redfish/v1/Systems").status == 200


def test_fault_reject_patch(start: Any) -> None:
    h, c = start("dell", faults={"reject_patch": True})
    spath = _settings_path(c, "dell")
    r = c.request("PATCH", spath, {"Attributes": {"LogicalProc": "Disabled"}})
    assert r.status == 400
    info = r.body["error"]["@Message.ExtendedInfo"][0]
    assert info["MessageId"] == "Base.1.16.SettingsFailed"
    assert info["RelatedProperties"] == ["/Attributes/LogicalProc"]
    assert c.get(spath).body["Attributes"] == {}
    h.set_fault("node1", "reject_patch", False)
    assert c.request("PATCH", spath, {"Attributes": {"LogicalProc": "Disabled"}}).status == 200


def test_fault_fail_at_reset(start: Any) -> None:
    h, c = start("supermicro")
    h.set_fault("node1", "fail_at_reset", True)
    spath = _settings_path(c, "supermicro")
    before = c.get(_system("supermicro") + "/Bios").body
    nps, smt = _name("supermicro", "NUMANodesPerSocket"), _name("supermicro", "SMTControl")
    body = {"Attributes": {nps: "NPS4", smt: "Disabled"}}
    assert c.request("PATCH", spath, body).status == 200
    _reset_and_wait(c, "supermicro")
    after = c.get(_system("supermicro") + "/Bios").body
    assert after["Attributes"] == before["Attributes"]
    st = after["@Redfish.Settings"]
    assert st["Time"] != before["@Redfish.Settings"]["Time"]
    (msg,) = st["Messages"]
    assert msg["MessageId"] == "Base.1.16.SettingsFailed"
    assert set(msg["RelatedProperties"]) == {f"/Attributes/{nps}", f"/Attributes/{smt}"}
    assert h.faults("node1")["fail_at_reset"] is True


# ----------------------------------------------------------------------------- node tree hook
def test_reset_calls_apply_bios_topology(
    start: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "noderoot"
    root.mkdir()
    calls: list[tuple[Path, int, bool]] = []
    # without the node-tree module the reset still works and logs a warning
    monkeypatch.setitem(sys.modules, "agent.sim.nodetree", None)
    h, c = start("supermicro", node_root=str(root))
    spath = _settings_path(c, "supermicro")
    smt = _name("supermicro", "SMTControl")
    assert c.request("PATCH", spath, {"Attributes": {smt: "Disabled"}}).status == 200
    with caplog.at_level(logging.WARNING, logger="agent.sim.bmc"):
        _reset_and_wait(c, "supermicro")
    assert "apply_bios_topology not available" in caplog.text
    assert h.state("node1")["topology"] == (1, False)
    h.stop()
    # contract: apply_bios_topology(root: Path, nps: int, smt: bool) after the values apply
    stand_in = types.ModuleType("agent.sim.nodetree")
    stand_in.apply_bios_topology = lambda r, nps, smt: calls.append((r, nps, smt))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agent.sim.nodetree", stand_in)
    h, c = start("hpe", name="node2", node_root=str(root))
    spath = _settings_path(c, "hpe")
    body = {
        "Attributes": {
            "NumaMemoryDomainsPerSocket": "TwoMemoryDomainsPerSocket",
            "ProcSMT": "Disabled",
        }
    }
    assert c.request("PATCH", spath, body).status == 200
    _reset_and_wait(c, "hpe")
    assert calls == [(root, 2, False)]


# ----------------------------------------------------------------------------- config / CLI
def test_config_validation(tmp_path: Path) -> None:
    good = _node_cfg(tmp_path, "n", "dell")
    with pytest.raises(ValueError, match="unknown BMC vendor"):
        load_config({"nodes": [{**good, "vendor": "lenovo"}]})
    with pytest.raises(ValueError, match="unknown node config keys"):
        load_config({"nodes": [{**good, "pasword": "x"}]})
    with pytest.raises(ValueError, match="unknown fault"):
        load_config({"nodes": [{**good, "faults": {"explode": True}}]})
    with pytest.raises(ValueError, match="unique"):
        load_config({"nodes": [good, good]})
    with pytest.raises(ValueError, match="bad initial attribute"):
        start_bmcs({"nodes": [{**good, "initial_attributes": {"LogicalProc": "Maybe"}}]})


def test_several_nodes_one_process_and_cli(tmp_path: Path) -> None:
    nodes = [_node_cfg(tmp_path, f"n{i}", v) for i, v in enumerate(VENDORS)]
    cfg = tmp_path / "bmcs.json"
    cfg.write_text(json.dumps({"nodes": nodes}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.sim.bmc", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().split() for _ in nodes)
        assert set(urls) == {"n0", "n1", "n2", "n3"} and len(set(urls.values())) == 4
        for name, vendor in zip(urls, VENDORS, strict=True):
            c = Client(urls[name])
            assert c.get(_system(vendor)).body["Id"] == get_personality(vendor).system_id
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    assert PASSWORD not in proc.stderr.read()


def test_reset_updates_real_node_tree(start: Any, tmp_path: Path) -> None:
    nodetree = pytest.importorskip("agent.sim.nodetree")
    root = tmp_path / "node-root"
    nodetree.build_node(root, "node1")
    h, c = start("dell", node_root=str(root))
    spath = _settings_path(c, "dell")
    body = {"Attributes": {"NumaNodesPerSocket": "4", "LogicalProc": "Disabled"}}
    assert c.request("PATCH", spath, body).status == 200
    _reset_and_wait(c, "dell")
    t = nodetree.load_topology(root)
    assert (t.nps, t.smt) == (4, False)
