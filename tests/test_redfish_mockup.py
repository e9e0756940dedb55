"""tuner's Redfish client and the tuner_bios module against a Redfish service this project did
not write: DMTF's Redfish-Mockup-Server (vendored unmodified, tests/external/) serving the
BIOS resources of OpenStack sushy-tools' emulator (tests/data/mockups/sushy-tools, rendered
from sushy-tools' templates; see its ORIGIN.md).

That service names its registry file `BiosAttributeRegistry.v1_0_0` while Bios says
`AttributeRegistryP89.v1_0_0`, and the body sits behind `Location[].Uri` at
`/redfish/v1/Systems/Bios/BiosRegistry`: the case that failed before (issue 7).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_redfish_client import load_module

from agent.bios.redfish import BmcClient

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "tests/external/redfish_mockup_server/redfishMockupServer.py"
MOCKUP = REPO / "tests/data/mockups/sushy-tools"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mockup(tmp_path: Path) -> Iterator[str]:
    # the mockup server's one third-party import; not imported here: importing it
    # monkey-patches this process with gevent
    if importlib.util.find_spec("grequests") is None:
        pytest.skip("grequests (a test dependency, for the mockup server) is not installed")
    tree = tmp_path / "mockup"
    shutil.copytree(MOCKUP, tree)
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "-H", "127.0.0.1", "-p", str(port), "-S", "-D", str(tree)],
        cwd=SERVER.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/redfish/v1/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def params(url: str, mode: str, settings: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "mode": mode,
        "url": url,
        "username": "admin",
        "password": "password",
        "password_file": None,
        "auth": "basic",
        "system": None,
        "validate_certs": True,
        "ca_bundle": None,
        "timeout": 5.0,
        "reset_timeout": 2.0,
        "poll_interval": 0.1,
        "reboot": "never",
        "reset_type": "GracefulRestart",
        "settings": settings,
        **kw,
    }


def test_client_reads_the_sushy_tools_bios(mockup: str) -> None:
    c = BmcClient(mockup, "admin", "password", timeout=5)
    c.connect()
    d = c.discover()
    assert d["system_id"] == "fake-1" and d["bios_uri"] == "/redfish/v1/Systems/fake-1/BIOS"
    assert d["registry"]["Id"] == "BiosAttributeRegistryP89.v1_0_0"
    assert d["registry_uri"] == "/redfish/v1/Systems/Bios/BiosRegistry"
    assert d["settings_uri"] == "/redfish/v1/Systems/fake-1/BIOS/Settings"
    assert d["current"]["ProcTurboMode"] == "Enabled" and d["pending"] == {}
    out = c.patch_settings({"ProcTurboMode": "Disabled"}, d["supported_apply_times"])
    assert out["status"] == 204 and out["apply_time"] is None
    assert c.pending() == {"ProcTurboMode": "Disabled"}


def test_module_plan_apply_verify_on_the_mockup(mockup: str, tmp_path: Path) -> None:
    mod = load_module()
    settings = {"vendor_attributes": {"ProcTurboMode": "Disabled", "BootMode": "Uefi"}}
    # tuner's BIOS record (written before the first PATCH; apply refuses without one)
    rec = {"host": "fake-1", "record_dir": str(tmp_path / "record")}
    failed, res = mod.run(params(mockup, "plan", settings), False)
    assert not failed, res
    rows = {r["attribute"]: r["status"] for r in res["results"]}
    assert rows == {"ProcTurboMode": "would change", "BootMode": "unchanged"}
    assert res["facts"]["registry"] == "BiosAttributeRegistryP89.v1_0_0"

    failed, res = mod.run(params(mockup, "apply", settings, **rec), False)
    assert not failed, res
    assert res["facts"]["status"] == "pending reboot" and res["facts"]["reboot"] == "needed"
    with urllib.request.urlopen(mockup + "/redfish/v1/Systems/fake-1/BIOS/Settings") as r:
        assert json.load(r)["Attributes"] == {"ProcTurboMode": "Disabled"}

    failed, res = mod.run(params(mockup, "verify", settings, **rec), False)
    assert not failed and res["facts"]["status"] == "pending"  # set, waiting for a reset
    row = next(r for r in res["results"] if r["attribute"] == "ProcTurboMode")
    assert row["pending"] == "Disabled"

    # a value the registry does not allow: bad input, and nothing is sent
    bad = {"vendor_attributes": {"BootMode": "Legacy"}}
    failed, res = mod.run(params(mockup, "apply", bad, **rec), False)
    assert failed and res["facts"]["bad_input"] and "Bios, Uefi" in res["msg"]

    # a reset is accepted, but a static mockup never applies anything: the wait says so
    failed, res = mod.run(params(mockup, "apply", settings, reboot="if-needed", **rec), False)
    assert failed and "not back within 2 s" in res["msg"]
    assert res["facts"]["reset_states"][0] == "reset accepted"
