"""sim up --from-capture (issue 16, part 2): a bundle becomes a simulated node, and capturing
that node gives the bundle back (time stamps aside)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CONNECTION, Fleet, make_fleet, run_tuner

from agent.capture import bundle

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two simulated nodes (a Dell and an HPE BMC; node02 with a GPU whose amdsmi queries
    fail), captured through Ansible."""
    tmp = tmp_path_factory.mktemp("rt")
    for fleet in make_fleet(tmp / "state", 2, 2, "--scenario", "amdsmi-error", bmc_vendor="mixed"):
        r = fleet.tuner("capture", "-o", str(tmp / "a"), "--json", "-i", fleet.inventory)
        assert r.rc == 0, r.err
        yield {"tmp": tmp, "fleet": fleet, "doc": r.json()}


def _files(path: str) -> dict[str, bytes]:
    b = bundle.read_bundle(path)
    out = dict(b.files)
    out.pop("README.md")  # says when it was taken
    return out


def test_round_trip_bundle_sim_bundle(original: dict[str, Any]) -> None:
    tmp = original["tmp"]
    paths = [w["bundle"] for w in original["doc"]["bundles"]]
    state = tmp / "state2"
    r = run_tuner(
        "sim",
        "up",
        "--from-capture",
        paths[0],
        "--from-capture",
        paths[1],
        "--connection",
        CONNECTION,
        "--runtime",
        "controller",
        "--json",
        state=state,
    )
    assert r.rc == 0, r.err
    up = r.json()
    try:
        assert [n["name"] for n in up["nodes"]] == ["node01", "node02"]
        for n in up["nodes"]:
            assert n["bundle"] in paths
            # the simulated nodes show /proc/cpuinfo and /proc/meminfo: taken from the bundle
            assert not any(d.startswith(("CPU model", "memory")) for d in n["defaults"])
            assert n["bmc"]["vendor"] == ("dell" if n["name"] == "node01" else "hpe")
        second = Fleet(state, up)
        r = second.tuner("capture", "-o", str(tmp / "b"), "--json", "-i", second.inventory)
        assert r.rc == 0, r.err
        again = {w["host"]: w["bundle"] for w in r.json()["bundles"]}
        for p in paths:
            a = _files(p)
            b = _files(again[bundle.read_bundle(p).host])
            assert sorted(a) == sorted(b)
            diff = [k for k in a if a[k] != b[k]]
            assert diff == [], diff[:5]
        # and the GPU library answers the captured error codes: the gate sees the same
        ca = json.loads(_files(paths[1])[bundle.CALLS])
        assert any("DRIVER_NOT_LOADED" in c["status"] for c in ca)
    finally:
        run_tuner("sim", "down", state=state)


def test_from_capture_refuses_bad_bundles_before_anything(original: dict[str, Any]) -> None:
    tmp = original["tmp"]
    bad = tmp / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 64)
    state = tmp / "state3"
    r = run_tuner("sim", "up", "--from-capture", str(bad), "--json", state=state)
    assert r.rc == 2 and "not a usable capture bundle" in r.err and "Traceback" not in r.err
    assert not state.exists() or not any(state.rglob("*"))
    good = original["doc"]["bundles"][0]["bundle"]
    r = run_tuner(
        "sim", "up", "--from-capture", good, "--from-capture", good, "--json", state=state
    )
    assert r.rc == 2 and "same host" in r.err
