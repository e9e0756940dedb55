"""tuner's Redfish client (agent/bios/redfish.py, on sushy) and the tuner_bios module against
the simulated BMCs: one test per vendor behaviour of docs/sim-bmc.md "Vendor behaviours".

The module is loaded as Ansible would ship it (its module_utils imports point at the same
files) and run() is called with the parameters the playbook gives it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import modargs
from agent.bios import plan as plan_mod
from agent.bios import record, redfish, sequence
from agent.bios.redfish import BadInput, BmcClient, RedfishError, classify_messages
from agent.sim.bmc import BmcHandle, get_personality, start_bmcs

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "root", "sim-Secret-41"


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[Any]:
    handles: list[BmcHandle] = []

    def _start(vendor: str, name: str = "n1", **extra: Any) -> tuple[BmcHandle, Path]:
        pw = tmp_path / "pw"
        pw.write_text(PASSWORD + "\n")
        log = tmp_path / f"{name}-{vendor}.jsonl"
        node = {
            "name": name,
            "port": 0,
            "vendor": vendor,
            "username": USER,
            "password_file": str(pw),
            "reset_delay": 0.3,
            "request_log": str(log),
            **extra,
        }
        h = start_bmcs({"nodes": [node]})
        handles.append(h)
        return h, log

    yield _start
    for h in handles:
        h.stop()


def client(h: BmcHandle, **kw: Any) -> BmcClient:
    c = BmcClient(h.url("n1"), USER, PASSWORD, timeout=5, **kw)
    c.connect()
    return c


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def writes(log: Path) -> list[dict[str, Any]]:
    """PATCH and POST requests, session logins excluded."""
    return [
        e
        for e in lines(log)
        if e["method"] in ("PATCH", "POST") and not e["path"].endswith("/Sessions")
    ]


# ----------------------------------------------------------------------------- the client


def test_system_selector(bmc: Any) -> None:
    h, log = bmc("amd")  # the AMI-style board also shows its GPU baseboard as a System
    c = client(h)
    assert c.select_system() == "/redfish/v1/Systems/system"
    for wanted in ("system", "/redfish/v1/Systems/system"):
        assert client(h, system=wanted).discover()["system_id"] == "system"
    with pytest.raises(BadInput, match=r"bmc_system 'nope' .*system, UBB"):
        client(h, system="nope").discover()
    with pytest.raises(RedfishError, match="UBB has no Bios"):
        client(h, system="UBB").discover()
    assert writes(log) == []


@pytest.mark.parametrize("vendor", ["dell", "hpe", "supermicro", "amd"])
def test_registry_found_wherever_it_lives(bmc: Any, vendor: str) -> None:
    h, _ = bmc(vendor)
    d = client(h).discover()
    p = get_personality(vendor)
    assert d["registry"]["Id"] == p.registry_id and d["registry_uri"] == p.registry_path
    assert d["settings_uri"] == p.settings_path  # AMI: found without @Redfish.Settings
    assert d["supported_apply_times"] == (list(p.apply_times) if p.settings_link else [])


def test_registry_that_does_not_parse_is_bad_input(bmc: Any) -> None:
    h, log = bmc("hpe", faults={"bad_registry": True})
    with pytest.raises(BadInput, match="does not parse"):
        client(h).discover()
    assert writes(log) == []


def test_ami_needs_if_match_with_the_settings_etag(bmc: Any) -> None:
    h, log = bmc("amd")
    c = client(h)
    d = c.discover()
    with pytest.raises(RedfishError) as e:
        c.request("PATCH", d["settings_uri"], {"Attributes": {"CbsCpuSmtCtrl": "Disabled"}})
    assert e.value.status == 428
    out = c.patch_settings({"CbsCpuSmtCtrl": "Disabled"}, d["supported_apply_times"])
    assert out["status"] == 200 and not out["etag_retry"] and out["apply_time"] is None
    assert h.state("n1")["pending"] == {"CbsCpuSmtCtrl": "Disabled"}

    # an ETag that went stale between the read and the PATCH: one retry with a fresh one
    real = c.get_settings
    calls = []

    def stale() -> tuple[dict[str, Any], str | None]:
        doc, etag = real()
        calls.append(etag)
        return doc, ('"stale"' if len(calls) == 1 else etag)

    c.get_settings = stale  # type: ignore[method-assign]
    out = c.patch_settings({"CbsCmnCpuCpb": "Disabled"})
    assert out["etag_retry"] and len(calls) == 2
    statuses = [e["status"] for e in lines(log) if e["method"] == "PATCH"]
    assert statuses == [428, 200, 412, 200]


def test_apply_time_only_when_advertised(bmc: Any) -> None:
    h, log = bmc("supermicro")
    c = client(h)
    d = c.discover()
    smt = plan_mod.Registry(d["registry"]).resolve("SMTControl")
    assert d["supported_apply_times"] == []
    out = c.patch_settings({smt: "Disabled"}, d["supported_apply_times"])
    assert out["apply_time"] is None and not out["apply_time_retry"]
    # a firmware that advertises it but answers 400 PropertyUnknown: sent again without it
    cpb = plan_mod.Registry(d["registry"]).resolve("CorePerformanceBoost")
    out = c.patch_settings({cpb: "Disabled"}, ["OnReset"])
    assert out["apply_time_retry"] and out["apply_time"] is None
    assert [e["status"] for e in lines(log) if e["method"] == "PATCH"] == [200, 400, 200]


def test_dell_job_is_followed_and_not_fought(bmc: Any) -> None:
    h, log = bmc("dell")
    c = client(h)
    d = c.discover()
    assert d["settings_time"] is None  # iDRAC9 leaves @Redfish.Settings.Time out
    out = c.patch_settings({"LogicalProc": "Disabled"}, d["supported_apply_times"])
    assert out["status"] == 202 and out["apply_time"] == "OnReset"
    assert out["job"]["state"] == "Scheduled" and "/Jobs/JID_" in out["job"]["uri"]
    with pytest.raises(RedfishError, match="already committed.*leaves it alone"):
        c.patch_settings({"ProcTurboMode": "Disabled"}, d["supported_apply_times"])
    before = {
        "settings_time": d["settings_time"],
        "bios_settings_etag": d["bios_settings_etag"],
        "messages": d["messages"],
        "pending": {"LogicalProc": "Disabled"},
        "job": out["job"],
    }
    c.reset("GracefulRestart")
    w = c.wait_applied(before, 20, 0.1)
    assert w["outcome"] == "applied", w
    assert w["bios"]["Attributes"]["LogicalProc"] == "Disabled"
    assert w["states"][0] == "reset accepted" and "job Completed" in w["states"][-1]


def test_ilo_success_is_success_and_failures_fail(bmc: Any) -> None:
    h, _ = bmc("hpe")
    c = client(h)

    def apply(values: dict[str, Any]) -> dict[str, Any]:
        d = c.discover()
        before = {
            "settings_time": d["settings_time"],
            "bios_settings_etag": d["bios_settings_etag"],
            "messages": d["messages"],
            "pending": values,
        }
        c.patch_settings(values, d["supported_apply_times"])
        c.reset("GracefulRestart")
        return c.wait_applied(before, 20, 0.1)

    w = apply({"PowerRegulator": "StaticLowPower"})  # locked: WorkloadProfile not Custom
    assert w["outcome"] == "failed" and "SettingsFailed(PowerRegulator)" in w["reason"]
    w = apply({"WorkloadProfile": "Custom", "PowerRegulator": "StaticHighPerf"})
    assert w["outcome"] == "applied", w
    assert [m["kind"] for m in w["messages"]] == ["ok"]  # Base.1.0.Success


def test_busy_answers_are_retried_with_a_bound(bmc: Any) -> None:
    h, _ = bmc("dell", faults={"busy": 3})
    c = client(h, retry_for=20)
    c.discover()
    # sushy retries a 5xx GET once itself; tuner's loop the rest, with backoff
    assert h.faults("n1")["busy"] == 0 and c.retries
    assert all("SYS518" in r for r in c.retries)
    h.set_fault("n1", "busy", 1000)
    c2 = BmcClient(h.url("n1"), USER, PASSWORD, timeout=5, retry_for=1.0)
    c2.connect()
    with pytest.raises(RedfishError, match="HTTP 503"):
        c2.discover()


def test_session_expired_during_a_wait_logs_in_again(bmc: Any) -> None:
    h, log = bmc("supermicro")
    c = client(h, auth="session")
    c.discover()
    with h.node("n1")._lock:
        h.node("n1").sessions.clear()  # the BMC dropped the session (timeout, BMC reset)
    assert c.get_bios()["Attributes"]
    assert [e["auth"] for e in lines(log) if e["method"] == "POST"] == ["login", "login"]
    assert 401 in [e["status"] for e in lines(log)]
    c.close()
    assert lines(log)[-1]["method"] == "DELETE"


def test_wait_reports_each_state_until_the_deadline(bmc: Any) -> None:
    h, _ = bmc("supermicro", reset_delay=30)
    c = client(h)
    d = c.discover()
    c.reset("ForceRestart")
    w = c.wait_applied({"settings_time": d["settings_time"], "pending": {}}, 0.6, 0.1)
    assert w["outcome"] == "timeout" and "PowerState Off" in w["reason"]
    assert w["states"][:2] == ["reset accepted", "PowerState Off"]


def test_messages_by_severity() -> None:
    got = classify_messages(
        [
            {"MessageId": "Base.1.0.Success"},  # iLO, no severity
            {"MessageId": "Base.1.16.SettingsFailed", "MessageSeverity": "Warning"},
            {"MessageId": "Base.1.16.ResetRequired", "MessageSeverity": "Warning"},
            {"MessageId": "Oem.1.0.Broken", "Severity": "Critical", "Message": "boom"},
            {"MessageId": "Oem.1.0.Fine", "MessageSeverity": "OK"},
        ]
    )
    assert [m["kind"] for m in got] == ["ok", "failure", "warning", "failure", "ok"]
    assert got[3]["text"] == "Broken: boom"


# ----------------------------------------------------------------------------- the module


def load_module() -> Any:
    """playbooks/library/tuner_bios.py with its module_utils imports resolved as Ansible does."""
    sys.modules.setdefault("ansible.module_utils.tuner_bios_plan", plan_mod)
    sys.modules.setdefault("ansible.module_utils.tuner_redfish", redfish)
    sys.modules.setdefault("ansible.module_utils.tuner_bios_record", record)
    sys.modules.setdefault("ansible.module_utils.tuner_bios_sequence", sequence)
    sys.modules.setdefault("ansible.module_utils.tuner_modargs", modargs)
    spec = importlib.util.spec_from_file_location(
        "tuner_bios_module", REPO / "playbooks/library/tuner_bios.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_RECORDS: list[str] = []  # the folder the record folders of this module go to (removed at its end)


@pytest.fixture(autouse=True, scope="module")
def _record_root() -> Iterator[None]:
    with tempfile.TemporaryDirectory(prefix="tuner-bios-records-") as d:
        _RECORDS.append(d)
        yield
        _RECORDS.pop()


def params(h: BmcHandle, mode: str, settings: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "mode": mode,
        "url": h.url("n1"),
        "username": USER,
        "password": PASSWORD,
        "password_file": None,
        "auth": "basic",
        "system": None,
        "validate_certs": True,
        "ca_bundle": None,
        "timeout": 5.0,
        "reset_timeout": 30.0,
        "poll_interval": 0.1,
        "reboot": "never",
        "reset_type": "GracefulRestart",
        "settings": settings,
        # tuner's BIOS record (written before the first PATCH): one folder per BMC handle
        "host": "n1",
        "record_dir": tempfile.mkdtemp(prefix="record-", dir=_RECORDS[-1]),
        **kw,
    }


INFERENCE = {
    "nps": 1,
    "smt": False,
    "core_performance_boost": True,
    "apbdis": 1,
    "df_cstates": False,
    "determinism": "power",
}


@pytest.mark.parametrize(
    ("vendor", "settings", "extra", "fault", "why"),
    [
        ("amd", INFERENCE, {"system": "GPU0"}, None, "bmc_system 'GPU0'"),
        ("hpe", INFERENCE, {}, "bad_registry", "does not parse"),
        ("dell", {"vendor_attributes": {"LogicalProc": "Sometimes"}}, {}, None, "not allowed"),
    ],
)
def test_module_bad_input_sends_nothing(
    bmc: Any,
    vendor: str,
    settings: dict[str, Any],
    extra: dict[str, Any],
    fault: str | None,
    why: str,
) -> None:
    h, log = bmc(vendor, faults={fault: True} if fault else {})
    failed, res = load_module().run(params(h, "apply", settings, **extra), False)
    assert failed and res["facts"]["bad_input"] is True, res
    assert why in res["msg"] and res["msg"].startswith("nothing sent")
    assert writes(log) == []
    assert PASSWORD not in json.dumps(res)


def test_module_applies_on_ilo_with_equ_dependencies(bmc: Any) -> None:
    """The inference profile on iLO: WorkloadProfile=Custom is added to unlock the values its
    EQU/GrayOut dependencies lock, the apply ends with Base.1.0.Success = changed."""
    h, log = bmc("hpe")
    mod = load_module()
    settings = {**INFERENCE, "core_performance_boost": False}
    failed, res = mod.run(params(h, "plan", settings), False)
    assert not failed, res
    rows = {r["attribute"]: r for r in res["results"]}
    assert rows["WorkloadProfile"]["wanted"] == "Custom"
    assert "unlocks" in rows["WorkloadProfile"]["message"]
    failed, res = mod.run(params(h, "apply", settings, reboot="if-needed"), False)
    assert not failed, res
    assert res["facts"]["status"] == "changed" and res["facts"]["reboot"] == "done"
    assert res["facts"]["settings_messages"] == []  # Success is not shown as a problem
    assert any("settings object empty" in s for s in res["facts"]["reset_states"])
    cur = h.state("n1")["current"]
    assert cur["ProcAMDBoost"] == "Disabled" and cur["InfinityFabricPstate"] == "P0"
    failed, res = mod.run(params(h, "verify", settings), False)
    assert not failed and res["facts"]["status"] == "ok", res


def test_module_session_auth_for_plan_and_verify(bmc: Any) -> None:
    h, log = bmc("dell")
    mod = load_module()
    for mode in ("plan", "verify"):
        failed, res = mod.run(params(h, mode, {"smt": False}, auth="session"), False)
        assert not failed, res
    assert {e["auth"] for e in lines(log) if e["method"] == "GET" and "Bios" in e["path"]} == {
        "session"
    }
    assert writes(log) == []


def test_stale_settings_failed_is_not_this_applys_failure(bmc: Any) -> None:
    h, _ = bmc("supermicro", faults={"fail_at_reset": True})
    c = client(h)
    d = c.discover()
    smt = plan_mod.Registry(d["registry"]).resolve("SMTControl")
    c.patch_settings({smt: "Disabled"})
    c.reset("ForceRestart")
    w = c.wait_applied({"settings_time": d["settings_time"], "pending": {smt: "Disabled"}}, 20, 0.1)
    assert w["outcome"] == "failed" and "SettingsFailed" in w["reason"]
    # an old job's SettingsFailed is still there at the next reset, which changes nothing
    h.clear_faults("n1")
    d = c.discover()
    assert classify_messages(d["messages"])[0]["kind"] == "failure"
    before = {"settings_time": d["settings_time"], "messages": d["messages"], "pending": {}}
    c.reset("ForceRestart")
    w = c.wait_applied(before, 20, 0.1)
    assert w["outcome"] == "applied" and w["messages"] == []
    assert [m["id"] for m in w["stale"]] == ["Base.1.16.SettingsFailed"]


def test_earlier_api_names_still_work(bmc: Any) -> None:
    """Client / login / discover(c) / wait_power_on / Registry.gates: the names of tuner's
    first client, kept for code written against it."""
    h, _ = bmc("hpe")
    c = redfish.Client(h.url("n1"), USER, PASSWORD, auth="session", timeout=5)
    c.login()
    d = redfish.discover(c)
    gates = plan_mod.Registry(d["registry"]).gates
    assert gates["ProcAMDBoost"] == [("WorkloadProfile", "Custom")]
    assert ("ApplicationPowerBoost", "Disabled") in gates["InfinityFabricPstate"]
    c.request("PATCH", d["settings_uri"], {"Attributes": {"ProcSMT": "Disabled"}})
    c.request("POST", d["reset_uri"], {"ResetType": "ForceRestart"})
    bios = redfish.wait_power_on(c, d["system_uri"], d["bios_uri"], d["settings_time"], 20, 0.1)
    assert bios["Attributes"]["ProcSMT"] == "Disabled"
    c.logout()


def test_module_reports_a_committed_dell_job_and_does_not_fight_it(bmc: Any) -> None:
    h, log = bmc("dell")
    mod = load_module()
    rec = {"record_dir": tempfile.mkdtemp(prefix="record-", dir=_RECORDS[-1])}
    failed, res = mod.run(params(h, "apply", {"smt": False}, **rec), False)
    assert not failed and res["facts"]["status"] == "pending reboot", res
    assert res["facts"]["job"]["state"] == "Scheduled"
    first = res["facts"]["job"]["uri"]
    # other values while tuner's own job waits for its reset (issue 23): tuner deletes its
    # job (the pending values go with it) and PATCHes the new plan, one job again
    failed, res = mod.run(params(h, "apply", {"smt": False, "global_cstates": False}, **rec), False)
    assert not failed and res["facts"]["status"] == "pending reboot", res
    assert any(e["method"] == "DELETE" and e["path"] == first for e in lines(log))
    assert [j for j, v in h.node("n1").jobs.items() if v["JobState"] == "Scheduled"] == [
        res["facts"]["job"]["uri"].rsplit("/", 1)[-1]
    ]
    # a job tuner did not create is never fought: see tests/test_bios_undo.py
    sent = len(writes(log))
    settings = {"smt": False, "global_cstates": False}
    # the same values with a reboot: no PATCH, the reset runs the job, the wait follows it
    failed, res = mod.run(params(h, "apply", settings, reboot="if-needed", **rec), False)
    assert not failed and res["facts"]["status"] == "changed", res
    assert [e["method"] for e in writes(log)[sent:]] == ["POST"]
    assert "job Completed" in res["facts"]["reset_states"][-1]
    assert h.state("n1")["current"]["LogicalProc"] == "Disabled"


def test_ilo_patch_during_post_is_retried_until_post_ends(bmc: Any) -> None:
    h, log = bmc("hpe", reset_delay=1.0)
    c = client(h, retry_for=30)
    d = c.discover()
    c.reset("ForceRestart")
    out = c.patch_settings({"ProcSMT": "Disabled"}, d["supported_apply_times"])
    assert out["status"] == 200
    assert any("InvalidOperationForSystemState" in r for r in c.retries)
    statuses = [e["status"] for e in lines(log) if e["method"] == "PATCH"]
    assert statuses[0] == 400 and statuses[-1] == 200
    assert h.state("n1")["pending"] == {"ProcSMT": "Disabled"}
