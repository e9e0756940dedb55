"""Public captures of machines as fixtures (issue 16, part 6): each converted to a bundle,
built into a simulated node / BMC (sim up --from-capture's code), and run through the gate
or BIOS plan/verify with the verdict expected and why. Origins and licences:
tests/data/captures/SOURCES.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, TUNER

from agent.capture import bundle, convert
from agent.sim.gpu.build import BuildError, build_library

DATA = REPO / "tests/data"

# name -> (mockup folder, the verdict of verify and apply --check, and why)
BMC_FIXTURES: dict[str, tuple[Path, str]] = {
    # DMTF's public rack server mockup names its BIOS registry (BiosAttributeRegistryP89) but
    # does not publish it under Registries (only Base): tuner cannot map a setting without
    # the registry, so the host fails with that reason and nothing is sent.
    "dmtf-public-rackmount1": (
        DATA / "captures/dmtf-public-rackmount1",
        "attribute registry 'BiosAttributeRegistryP89.v1_0_0' not found",
    ),
    # sushy-tools' emulator publishes a registry, but its BIOS has no AMD CBS settings (a
    # generic P89 model): every setting of the profile is an error, nothing is sent.
    "sushy-tools": (
        DATA / "mockups/sushy-tools",
        "is not one tuner recognises",
    ),
}


def _bmc_bundle(tmp: Path, name: str, src: Path) -> Path:
    files = convert.bundle(name, convert.from_mockup(src), str(src.relative_to(REPO)), {})
    return convert.write(tmp / name, files)


@pytest.mark.parametrize("name", sorted(BMC_FIXTURES))
def test_bios_plan_and_verify_on_public_bmc_captures(tmp_path: Path, name: str) -> None:
    from agent.sim.bmc.captured import load_docs
    from agent.sim.bmc.server import start_bmcs
    from agent.sim.bmcfleet import vendor_of

    src, why = BMC_FIXTURES[name]
    dest = _bmc_bundle(tmp_path, name, src)
    b = bundle.read_bundle(str(dest))  # a valid bundle
    assert any(p.lower().endswith("/bios/index.json") for p in b.files)
    pw = tmp_path / "pw"
    pw.write_text("fixture-pw\n")
    log = tmp_path / "requests.jsonl"
    handle = start_bmcs(
        {
            "nodes": [
                {
                    "name": name,
                    "port": 0,
                    "vendor": vendor_of(load_docs(dest / "bmc")),
                    "username": "admin",
                    "password_file": str(pw),
                    "reset_delay": 0.1,
                    "captured": str(dest / "bmc"),
                    "request_log": str(log),
                }
            ]
        }
    )
    inv = tmp_path / "inv.yml"
    host = {
        "bmc_url": handle.url(name),
        "bmc_username": "admin",
        "bmc_password_file": str(pw),
        "bmc_allow_http": True,  # the test BMC: plain HTTP on loopback
    }
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv.write_text(yaml.safe_dump({"all": {"vars": common, "hosts": {name: host}}}))
    env = dict(os.environ, TUNER_STATE_DIR=str(tmp_path / "state"))
    env.pop("TUNER_INVENTORY", None)
    try:
        for cmd in (["verify"], ["apply", "--check"]):
            p = subprocess.run(
                [*TUNER, *cmd, "-p", "inference", "--layer", "bios", "-i", str(inv), "--json"],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
                timeout=180,
            )
            assert "Traceback" not in p.stderr, p.stderr
            hb = json.loads(p.stdout)["hosts"][0]["bios"]
            assert p.returncode == 1 and hb["status"] == "failed", (cmd, hb)
            assert why in hb["message"], hb["message"]
    finally:
        handle.stop()
    methods = {json.loads(line)["method"] for line in log.read_text().splitlines()}
    assert methods <= {"GET", "HEAD"}, methods  # read only: nothing was sent


def test_gate_on_public_amd_smi_output(tmp_path: Path) -> None:
    """MI350X `amd-smi static` of one GPU (ROCm/rocm-systems PR 2987), run as a user without
    root: the bad-page threshold shows N/A. The gate fails that GPU closed (needs root, the
    count cannot be judged), and counts the seven GPUs the fixture does not have as missing
    (the policy expects 8 per node). Everything else the output shows (MI350X, gfx950, PCIe
    Gen5 x16, amdgpu 6.18.3) passes."""
    from agent.sim.fromcapture import build

    try:
        lib = build_library(tmp_path / "lib")
    except BuildError as e:
        pytest.skip(f"no C compiler: {e}")
    src = DATA / "captures/amd-smi/mi350x-rocm-systems-pr2987.json"
    calls = convert.calls_from_amd_smi_static(json.loads(src.read_text()))
    files = convert.bundle("mi350x", {bundle.CALLS: bundle.jdump(calls)}, src.name, {})
    b = bundle.read_bundle(str(convert.write(tmp_path / "mi350x", files)))
    root = tmp_path / "root"
    used = build(root, b, lib)
    assert any(u.startswith("GPUs: firmware") for u in used)  # said, not hidden
    env = dict(os.environ)
    env.pop("ROCM_PATH", None)
    p = subprocess.run(
        [*TUNER, "check", "--local", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert p.returncode == 1, p.stderr
    inv: dict[str, Any] = json.loads(p.stdout)
    node = inv["nodes"][0]
    gpu0 = next(e for e in node["excluded"] if e["index"] == 0)
    assert gpu0["bdf"] == "0000:05:00.0" and gpu0["market_name"] == "AMD Instinct MI350X"
    checks = {c["check"]: c for c in gpu0["checks"]}
    assert "needs root" in checks["gpu.bad_pages.count"]["message"]
    missing = [e for e in node["excluded"] if e["index"] is None]
    assert len(missing) == 7 and all(e["checks"][0]["check"] == "gpu.missing" for e in missing)
    assert inv["usable_gpus"] == 0
