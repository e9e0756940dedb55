"""BIOS planner and client, generalised (issue 16 part 5): names in another case, and a GET
sent again when the BMC closed a kept-alive connection."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.bios.plan import Registry, load_intents, plan
from agent.bios.redfish import BmcClient


def _reg(*names: str) -> Registry:
    return Registry(
        {
            "Id": "Test.1.0",
            "RegistryEntries": {
                "Attributes": [
                    {"AttributeName": n, "Type": "Enumeration", "Value": [{"ValueName": "Auto"}]}
                    for n in names
                ]
            },
        }
    )


def test_names_match_in_any_case_when_unique() -> None:
    assert _reg("APBDis").resolve("ApbDis") == "APBDis"
    assert _reg("apbdis", "APBDIS").resolve("ApbDis") is None  # ambiguous: no guess
    assert _reg("ApbDis").resolve("ApbDis") == "ApbDis"
    assert _reg("CBSCMNAPBDIS_0A1B").resolve("CbsCmnApbDis") == "CBSCMNAPBDIS_0A1B"


class _Closing(http.server.BaseHTTPRequestHandler):
    """Answers JSON over keep-alive; the first request for /redfish/v1/Systems gets its
    connection closed without an answer (what a client sees when a BMC's idle timeout closed
    a kept-alive connection: "Remote end closed connection without response")."""

    protocol_version = "HTTP/1.1"
    dropped: list[str] = []

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/redfish/v1/Systems" and not self.dropped:
            self.dropped.append(self.path)
            self.close_connection = True
            return
        docs = {
            "/redfish/v1": {
                "@odata.id": "/redfish/v1/",
                "Id": "RootService",
                "Name": "Root Service",
                "RedfishVersion": "1.15.0",
                "Systems": {"@odata.id": "/redfish/v1/Systems"},
            },
            "/redfish/v1/Systems": {"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]},
        }
        body = json.dumps(docs.get(self.path.rstrip("/"), {})).encode()
        self.send_response(200 if self.path.rstrip("/") in docs else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    _Closing.dropped = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_get_is_sent_again_when_a_kept_alive_connection_was_closed(server: str) -> None:
    c = BmcClient(server, "u", "p", timeout=5, sleep=lambda s: None)
    c.connect()
    doc = c.get("/redfish/v1/Systems")
    assert doc["Members"] and _Closing.dropped == ["/redfish/v1/Systems"]
    assert any("closed the connection" in r for r in c.retries), c.retries


REG = {
    "@odata.id": "/redfish/v1/Registries/BiosReg/BiosReg",
    "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry",
    "Id": "BiosReg.1.0.0",
    "RegistryEntries": {
        "Attributes": [
            {
                "AttributeName": name,
                "Type": "Enumeration",
                "Value": [{"ValueName": "Enabled"}, {"ValueName": "Disabled"}],
            }
            for name in ("ApbDis", "LogicalProc", "DfCState")
        ]
    },
}
NO_SETTINGS = {
    "/redfish/v1": {
        "@odata.id": "/redfish/v1/",
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": "1.15.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Registries": {"@odata.id": "/redfish/v1/Registries"},
    },
    "/redfish/v1/Systems": {"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]},
    "/redfish/v1/Systems/1": {"Id": "1", "Bios": {"@odata.id": "/redfish/v1/Systems/1/Bios"}},
    # a Bios without @Redfish.Settings, and no Bios/Settings or Bios/SD to be found
    "/redfish/v1/Systems/1/Bios": {
        "AttributeRegistry": "BiosReg.1.0.0",
        "Attributes": {"ApbDis": "Disabled", "LogicalProc": "Enabled", "DfCState": "Enabled"},
    },
    "/redfish/v1/Registries": {"Members": [{"@odata.id": "/redfish/v1/Registries/BiosReg"}]},
    "/redfish/v1/Registries/BiosReg": {
        "@odata.id": "/redfish/v1/Registries/BiosReg",
        "@odata.type": "#MessageRegistryFile.v1_1_0.MessageRegistryFile",
        "Id": "BiosReg",
        "Name": "BIOS registry file",
        "Registry": "BiosReg.1.0",
        "Languages": ["en"],
        "Location": [{"Language": "en", "Uri": "/redfish/v1/Registries/BiosReg/BiosReg"}],
    },
    "/redfish/v1/Registries/BiosReg/BiosReg": REG,
}


class _NoSettings(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    methods: list[str] = []

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self) -> None:
        self.methods.append(self.command)
        doc = NO_SETTINGS.get(self.path.rstrip("/"))
        body = json.dumps(doc or {"error": {"message": "not found"}}).encode()
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815
    do_PATCH = _answer  # noqa: N815


def test_plan_and_verify_read_without_a_settings_object_apply_says_why() -> None:
    from agent.bios.plan import plan
    from agent.bios.redfish import RedfishError

    _NoSettings.methods = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoSettings)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = BmcClient(f"http://127.0.0.1:{srv.server_address[1]}", "u", "p", timeout=5)
        d = c.discover()
        assert "no @Redfish.Settings" in d["settings_unreadable"] and d["pending"] == {}
        v = plan({"smt": False}, d["registry"], d["current"], d["pending"], verify=True)
        assert [r["status"] for r in v["rows"]] == ["drift"], v["rows"]
        ok = plan({"smt": True}, d["registry"], d["current"], d["pending"], verify=True)
        assert [r["status"] for r in ok["rows"]] == ["ok"], ok["rows"]
        with pytest.raises(RedfishError, match="cannot stage BIOS values"):
            c.patch_settings({"ApbDis": "Enabled"})
        assert set(_NoSettings.methods) == {"GET"}  # nothing was sent
    finally:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------- alternatives and display names (intents.json)

BIOS = Path(__file__).parent / "data" / "bios"
FULL = {
    "nps": 1,
    "smt": False,
    "core_performance_boost": True,
    "apbdis": 1,
    "df_cstates": False,
    "determinism": "power",
    "global_cstates": True,
}


def _fixture(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    reg = json.loads((BIOS / f"{name}-registry.json").read_text())["registry"]
    cur = json.loads((BIOS / f"{name}-bios.json").read_text())["Attributes"]
    return reg, cur


@pytest.mark.parametrize(
    ("name", "slider"),
    [("amd-slider", "CbsCmnDeterminismSlider"), ("supermicro-h12", "DeterminismSlider_5B1E")],
)
def test_a_determinism_slider_where_there_is_no_control_enable_pair(name: str, slider: str) -> None:
    reg, cur = _fixture(name)
    pl = plan({"determinism": "power"}, reg, cur)
    assert pl["errors"] == [], pl["errors"]
    assert pl["patch"] == {slider: "Power"}
    assert plan({"determinism": "power"}, reg, cur, intents={})["errors"]  # without the data
    done = plan({"determinism": "power"}, reg, {**cur, slider: "Power"}, verify=True)
    assert [r["status"] for r in done["rows"]] == ["ok"]


@pytest.mark.parametrize("family", ["dell", "hpe", "supermicro", "amd", "ami-coded"])
def test_every_family_matches_names_through_display_name(family: str) -> None:
    """The same registry with every attribute renamed (only DisplayName left to go by) plans
    the same changes under the new names."""
    reg, cur = _fixture(family)
    before = plan(FULL, reg, cur)
    renamed = json.loads(json.dumps(reg))
    names: dict[str, str] = {}
    for i, a in enumerate(renamed["RegistryEntries"]["Attributes"]):
        new = f"Setup{i:03d}_{0xA000 + i:04X}" if family == "supermicro" else f"Setup{i:03d}"
        names[a["AttributeName"]] = new
        a["AttributeName"] = new
    for d in renamed["RegistryEntries"].get("Dependencies") or []:
        text = json.dumps(d)
        for old, new in names.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        d.clear()
        d.update(json.loads(text))
    after = plan(FULL, renamed, {names.get(k, k): v for k, v in cur.items()})
    assert after["vendor"] == before["vendor"]
    assert after["errors"] == before["errors"] == []
    assert after["patch"] == {names[k]: v for k, v in before["patch"].items()}
    assert after["patch"], "the fixture's values differ from FULL somewhere"


def test_intents_data_names_its_sources() -> None:
    data = load_intents()
    assert data["format"] == "tuner-bios-intents/1"
    for base, entry in data["display_names"].items():
        assert entry["names"] and entry["source"], base
    for fam, intents in data["alternatives"].items():
        for key, values in intents.items():
            for value, alts in values.items():
                for alt in alts:
                    assert alt["writes"] and alt["source"], (fam, key, value)
