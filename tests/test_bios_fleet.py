"""BIOS through Redfish end to end: the real CLI, real Ansible, running Redfish BMCs.

The mixed fleet has one node per personality (Dell, HPE, Supermicro, AMD CBS) behind the
`python -m agent.sim.bmc` process `tuner sim up` starts (TLS, the fleet's CA). Faults and
batches use BMCs started in-process (their faults can be set at run time), with the
password in TUNER_BMC_PASSWORD.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, REPO, TUNER, Fleet, Result, make_fleet

from agent.sim.bmc import BmcHandle, start_bmcs

BIOS_ONLY = str(DATA / "bios" / "bios-only.yml")
POWER_PROFILE = str(DATA / "bios" / "power-profile.yml")
# Every test here runs tuner across BMCs (a `sim up` fleet or BMCs started in-process).
pytestmark = pytest.mark.fleet

VENDOR = {"node01": "dell", "node02": "hpe", "node03": "supermicro", "node04": "amd"}


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def writes(path: Path) -> list[dict[str, Any]]:
    return [e for e in log_lines(path) if e["method"] in ("PATCH", "POST")]


def by_host(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in rep["hosts"]}


def numa_nodes(root: Path) -> int:
    return len(list((root / "sys/devices/system/node").glob("node[0-9]*")))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    state = tmp_path_factory.mktemp("bios") / "state"
    yield from make_fleet(state, 4, 8, "--bmc-reset-delay", "0.3", bmc_vendor="mixed")


def test_sim_up_lists_bmcs(mixed: Fleet) -> None:
    fleet = json.loads((mixed.state / "sim/fleet.json").read_text())
    assert fleet["bmc_pid"] and Path(f"/proc/{fleet['bmc_pid']}").exists()
    for n in mixed.info["nodes"]:
        b = n["bmc"]
        assert b["url"].startswith("https://127.0.0.1:") and b["username"]
        assert b["vendor"] == VENDOR[n["name"]]
        pw = Path(b["password_file"])
        assert pw.stat().st_mode & 0o777 == 0o600
        assert pw.parent.stat().st_mode & 0o777 == 0o700


def test_mixed_fleet_end_to_end(mixed: Fleet) -> None:
    logs = {n: mixed.state / f"sim/bmc/logs/{n}.jsonl" for n in VENDOR}
    outputs: list[str] = []

    def tuner(*args: str) -> Result:
        r = mixed.tuner(*args)
        outputs.extend([r.out, r.err])
        return r

    # --check: a plan per vendor, and not one PATCH or POST reaches a BMC
    r = tuner("apply", "-p", "inference-nps4", "--check", "--json")
    assert r.rc == 0, r.err
    rep = r.json()
    for name, h in by_host(rep).items():
        assert h["status"] == "would change"
        assert h["bios"]["vendor"] == VENDOR[name]
        assert h["bios"]["status"] == "would change"
        assert h["bios"]["reboot"] == "needed"
        assert {"nps", "smt", "apbdis"} <= {a["setting"] for a in h["bios"]["attributes"]}
    assert by_host(rep)["node01"]["bios"]["attributes"][-1]["attribute"] == "SysProfile"
    for log in logs.values():
        assert log_lines(log), "the plan read the BMC"
        assert writes(log) == []

    # --reboot never: values staged (PATCH), no reset, the OS unchanged; verify sees pending
    r = tuner("apply", "-p", "inference-nps4", "--json")
    assert r.rc == 0, r.err
    for h in r.json()["hosts"]:
        assert h["status"] == "changed"
        assert h["bios"]["status"] == "pending reboot" and h["bios"]["reboot"] == "needed"
    for name, log in logs.items():
        methods = [e["method"] for e in writes(log)]
        assert methods == ["PATCH"], (name, methods)
        assert numa_nodes(mixed.roots[name]) == 2
    # pending is not drift: its own status (exit 1: not in effect yet); the OS part is ok
    v = tuner("verify", "-p", "inference-nps4", "--json")
    assert v.rc == 1
    assert v.json()["summary"]["by_status"] == {"pending": 4}
    for h in v.json()["hosts"]:
        assert h["status"] == "pending" and h["bios"]["status"] == "pending"
        st = {k: v["status"] for k, v in h["layers"].items()}  # each layer's status
        assert st == {"cmdline": "pending", "bios": "pending", "os": "ok"}
        assert {a["status"] for a in h["bios"]["attributes"]} <= {"ok", "pending"}
        assert all(c["status"] == "ok" and c["source"] == "bios" for c in h["cross"])
    table = tuner("verify", "-p", "inference-nps4").out
    os_table = table[: table.index("BIOS and cross-layer checks")]
    assert "drift" not in os_table and "pending" in table

    # --reboot if-needed in 2 batches: reset, wait, verified; the nodes' OS follows the BIOS
    r = tuner("apply", "-p", "inference-nps4", "--reboot", "if-needed", "--batch-size", "2")
    assert r.rc == 0, r.out + r.err
    # progress outside a terminal: each batch and layer, the BIOS stages, each host's end
    assert "apply: BIOS batch 1/2: apply on node[01-02]" in r.err, r.err
    assert "apply: BIOS batch 2/2: apply on node[03-04] (about " in r.err
    assert "apply: OS batch 2/2: apply on node[03-04]" in r.err
    assert "waiting for POST" in r.err and "verify: node" in r.err
    # the notes say what this run did: it reset the nodes, nothing waits for a next reset
    assert "next reset" not in r.out and "next reboot" not in r.out, r.out
    r = tuner("verify", "-p", "inference-nps4", "--json")
    assert r.rc == 0, r.out
    for name, h in by_host(r.json()).items():
        assert h["bios"]["status"] == "ok" and h["bios"]["topology"] == {"nps": 4, "smt": False}
        cross = {c["id"]: c for c in h["cross"]}
        assert cross["numa_nodes"]["actual"] == "8" and cross["numa_nodes"]["status"] == "ok"
        assert cross["threads_per_core"]["actual"] == "1"
        assert numa_nodes(mixed.roots[name]) == 8
        assert [e.get("reset_type") for e in writes(logs[name]) if e["method"] == "POST"] == [
            "GracefulRestart"
        ]
    # batch 2 was reset only after batch 1 was back
    first = max(e["time"] for n in ("node01", "node02") for e in writes(logs[n]))
    second = min(e["time"] for n in ("node03", "node04") for e in log_lines(logs[n])[-8:])
    assert first < second

    # the kernel command line booted with that same reset (one reset per node for both)
    assert all(h["cmdline"]["status"] == "ok" for h in r.json()["hosts"])
    # only the kernel command line waits (rolled back and booted without it, then applied):
    # the BIOS apply resets for it, once, with nothing of its own to change
    assert tuner("rollback", "--layer", "cmdline").rc == 0
    assert tuner("sim", "reboot").rc == 0
    resets = {n: [e for e in writes(log) if e.get("reset_type")] for n, log in logs.items()}
    r = tuner("apply", "-p", "inference-nps4", "--reboot", "if-needed", "--json")
    assert r.rc == 0, r.out + r.err
    for name, h in by_host(r.json()).items():
        assert h["bios"]["status"] == "unchanged" and h["bios"]["reboot"] == "done"
        assert h["cmdline"]["reboot"] == "done" and h["cmdline"]["rebooted_by"] == "BIOS reset"
        assert "iommu=pt" in (mixed.roots[name] / "proc/cmdline").read_text().split()
        now = [e for e in writes(logs[name]) if e.get("reset_type")]
        assert len(now) == len(resets[name]) + 1

    # converged: a re-run sends nothing
    before = {n: len(writes(log)) for n, log in logs.items()}
    r = tuner("apply", "-p", "inference-nps4", "--reboot", "if-needed", "--json")
    assert r.rc == 0 and r.json()["summary"]["by_status"] == {"unchanged": 4}
    assert {n: len(writes(log)) for n, log in logs.items()} == before

    # the OS no longer agrees with the BIOS: a cross-layer mismatch
    from agent.sim.nodetree import apply_bios_topology

    apply_bios_topology(mixed.roots["node02"], 1, False)
    r = tuner("verify", "-p", "inference-nps4", "--json")
    assert r.rc == 1
    h = by_host(r.json())["node02"]
    assert h["status"] == "drift" and h["bios"]["status"] == "ok"
    assert {c["id"]: c["status"] for c in h["cross"]}["numa_nodes"] == "mismatch"
    apply_bios_topology(mixed.roots["node02"], 4, False)

    # TLS: verified against the fleet's CA; a wrong CA fails every host, --insecure is explicit
    from agent.sim.bmc.server import generate_self_signed

    other_ca, _ = generate_self_signed(mixed.state / "other-ca")
    r = tuner("verify", "-p", "inference-nps4", "--ca-bundle", str(other_ca), "--json")
    assert r.rc == 1
    for h in r.json()["hosts"]:
        assert h["bios"]["status"] == "failed" and "not trusted" in h["bios"]["message"]
    r = tuner("verify", "-p", "inference-nps4", "--insecure", "--json")
    assert r.rc == 0, r.out
    r = tuner("verify", "-p", "inference-nps4", "--insecure", "--ca-bundle", str(other_ca))
    assert r.rc == 2

    # --layer: one layer's part only
    r = tuner("verify", "-p", "inference-nps4", "--insecure", "--layer", "os", "--json")
    assert r.rc == 0 and r.json()["layers"] == ["os"]
    assert all(h["bios"] is None and h["cross"] == [] for h in r.json()["hosts"])

    # rollback: OS files and BIOS values back, the BIOS reset into effect
    r = tuner("rollback", "--reboot", "if-needed", "--json")
    assert r.rc == 0, r.out + r.err
    for name, h in by_host(r.json()).items():
        # the BIOS restore's reset also boots the restored kernel command line
        st = {k: v["status"] for k, v in h["layers"].items()}  # each layer's status
        assert st == {
            "cmdline": "restored",
            "bios": "restored",
            "os": "restored",
            "nic": "nothing to do",  # every rollback asks each layer's record
        }, h
        assert h["cmdline"]["rebooted_by"] == "BIOS reset"
        assert h["bios"]["reboot"] == "done"
        assert numa_nodes(mixed.roots[name]) == 2
    assert list((mixed.state / "bios/originals").glob("*.json")) == []

    # secrets: no password (nor its Basic form) in any output, log or artifact
    secrets = []
    for n in mixed.info["nodes"]:
        pw = Path(n["bmc"]["password_file"]).read_text().strip()
        basic = base64.b64encode(f"{n['bmc']['username']}:{pw}".encode()).decode()
        secrets += [pw, basic]
    for text in outputs:
        for s in secrets:
            assert s not in text
    searched = 0
    for path in mixed.state.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            data = path.read_bytes()
            searched += 1
            for s in secrets:
                assert s.encode() not in data, path
    assert searched > 50
    assert list((mixed.state / "runs/artifacts").glob("*-bios"))


# ------------------------------------------------------------------ in-process BMCs


PASSWORD = "s3cr3t-Test-Pw"


def bmc_fleet(tmp: Path, nodes: list[dict[str, Any]]) -> tuple[BmcHandle, Path]:
    pw = tmp / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    cfg = [
        {
            "port": 0,
            "vendor": "dell",
            "username": "root",
            "password_file": str(pw),
            "reset_delay": 0.2,
            "request_log": str(tmp / f"{n['name']}.jsonl"),
            **n,
        }
        for n in nodes
    ]
    handle = start_bmcs({"nodes": cfg})
    # the test BMCs serve plain HTTP on loopback: allowed per host, as a lab must say
    hosts = {
        n["name"]: {
            "bmc_url": handle.url(n["name"]),
            "bmc_username": "root",
            "bmc_allow_http": True,
        }
        for n in nodes
    }
    inv = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "hosts": hosts,
        }
    }
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return handle, path


def run(state: Path, *args: str, password: str | None = PASSWORD) -> Result:
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    env.pop("TUNER_BMC_PASSWORD", None)
    if password:
        env["TUNER_BMC_PASSWORD"] = password
    p = subprocess.run(
        [*TUNER, *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO
    )
    return Result(p.returncode, p.stdout, p.stderr)


def test_faults_fail_their_host_only_and_rerun_converges(tmp_path: Path) -> None:
    nodes = [
        {"name": "ok1", "vendor": "hpe"},
        {"name": "down", "faults": {"down": True}},
        {"name": "slow", "faults": {"slow": 3}},
        {"name": "err500", "faults": {"error500": True}},
        {"name": "reject", "faults": {"reject_patch": True}},
        {"name": "atreset", "faults": {"fail_at_reset": True}, "vendor": "supermicro"},
        {"name": "amd", "vendor": "amd"},
    ]
    handle, inv = bmc_fleet(tmp_path, nodes)
    state = tmp_path / "state"
    try:
        args = ("apply", "-p", BIOS_ONLY, "-i", str(inv), "--reboot", "if-needed")
        r = run(state, *args, "--bmc-timeout", "1", "--reset-timeout", "20", "--json")
        assert r.rc == 1, r.err
        h = by_host(r.json())
        assert h["ok1"]["status"] == "changed" and h["ok1"]["bios"]["reboot"] == "done"
        assert h["amd"]["status"] == "changed"
        why = {n: h[n]["bios"]["message"] for n in ("down", "slow", "err500", "reject", "atreset")}
        assert all(h[n]["status"] == "failed" for n in why), why
        assert "connection refused" in why["down"]
        assert "timeout" in why["slow"]
        assert "HTTP 500" in why["err500"]
        assert "SettingsFailed" in why["reject"] and "patch" in why["reject"]
        assert "SettingsFailed" in why["atreset"] and "not applied" in why["atreset"]
        assert handle.state("reject")["pending"] == {}

        # a setting the host cannot take: that host fails, nothing is sent to its BMC
        before = len(writes(tmp_path / "amd.jsonl"))
        r = run(state, "apply", "-p", POWER_PROFILE, "-i", str(inv), "-l", "amd,ok1", "--json")
        assert r.rc == 1
        h = by_host(r.json())
        assert h["amd"]["status"] == "failed" and "power_profile" in h["amd"]["bios"]["message"]
        assert len(writes(tmp_path / "amd.jsonl")) == before
        assert h["ok1"]["bios"]["status"] == "pending reboot"

        for n in nodes:
            handle.clear_faults(n["name"])
        r = run(state, *args, "--json")
        assert r.rc == 0, r.out
        assert all(x["bios"]["status"] in ("changed", "unchanged") for x in r.json()["hosts"])
        r = run(state, *args, "--json")
        assert r.rc == 0 and r.json()["summary"]["by_status"] == {"unchanged": len(nodes)}
    finally:
        handle.stop()
    for path in [*state.rglob("*"), *tmp_path.glob("*.jsonl")]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_batches_and_global_failure_cap(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(1, 7)]
    nodes = [
        {"name": n, **({"faults": {"down": True}} if n in ("n1", "n3") else {})} for n in names
    ]
    handle, inv = bmc_fleet(tmp_path, nodes)
    state = tmp_path / "state"
    try:
        # one failure per batch: never more than 1 in a batch, but 2 > 1 across the run
        r = run(
            state,
            *("apply", "-p", BIOS_ONLY, "-i", str(inv), "--reboot", "if-needed"),
            *("--batch-size", "2", "--max-failed", "1", "--json"),
        )
        assert r.rc == 1
        rep = r.json()
        assert rep["bios"]["batches"] == 2 and rep["bios"]["failed"] == 2
        assert rep["bios"]["stopped"] is True
        st = {h["host"]: (h["status"], h["bios"]["batch"]) for h in rep["hosts"]}
        assert st == {
            "n1": ("failed", 1),
            "n2": ("changed", 1),
            "n3": ("failed", 2),
            "n4": ("changed", 2),
            "n5": ("not started", 3),
            "n6": ("not started", 3),
        }
        for n in ("n5", "n6"):  # planned before any batch (read only), never written
            assert {e["method"] for e in log_lines(tmp_path / f"{n}.jsonl")} <= {"GET"}
        assert handle.state("n2")["boot_count"] > handle.state("n5")["boot_count"]

        # a bigger cap lets the run finish the batches
        r = run(
            state,
            *("apply", "-p", BIOS_ONLY, "-i", str(inv), "--reboot", "if-needed"),
            *("--batch-size", "4", "--max-failed", "2", "--json"),
        )
        assert r.rc == 1
        rep = r.json()
        assert rep["bios"]["stopped"] is False and rep["bios"]["batches"] == 2
        assert by_host(rep)["n5"]["status"] == "changed"
    finally:
        handle.stop()


def test_bad_bios_input_exits_2_and_touches_nothing(tmp_path: Path) -> None:
    handle, inv = bmc_fleet(tmp_path, [{"name": "a"}])
    state = tmp_path / "state"
    try:
        base = ("apply", "-p", BIOS_ONLY, "-i", str(inv))
        assert run(state, *base, "--reboot", "always").rc == 2
        r = run(state, *base, "--layer", "gpu", "--json")
        assert r.rc == 2 and r.json()["field"] == "--layer"
        r = run(state, *base, "--layer", "os", "--json")  # the profile sets nothing for the OS
        assert r.rc == 2 and r.json()["field"] == "--layer"
        assert run(state, *base, "--ca-bundle", str(tmp_path / "nope.pem")).rc == 2
        r = run(state, *base, password=None)
        assert r.rc == 2 and "bmc_password" in r.err
        doc = yaml.safe_load(inv.read_text())
        doc["all"]["hosts"]["a"]["bmc_password_file"] = str(tmp_path / "missing.pw")
        inv.write_text(yaml.safe_dump(doc))
        r = run(state, *base, "--json")
        assert r.rc == 2 and r.json()["field"] == "bmc_password_file"
        doc["all"]["hosts"]["a"]["bmc_url"] = "ftp://x"
        inv.write_text(yaml.safe_dump(doc))
        assert run(state, *base).rc == 2
        assert log_lines(tmp_path / "a.jsonl") == []
    finally:
        handle.stop()


def test_input_only_a_bmc_can_judge_stops_apply_before_any_host_changes(tmp_path: Path) -> None:
    """An unknown bmc_system on one BMC: apply plans every BMC first, exits 2, sends nothing
    anywhere (the other host's BMC included); verify says the same with exit 2."""
    handle, inv = bmc_fleet(tmp_path, [{"name": "a"}, {"name": "b", "vendor": "amd"}])
    state = tmp_path / "state"
    try:
        doc = yaml.safe_load(inv.read_text())
        doc["all"]["hosts"]["b"]["bmc_system"] = "nope"
        inv.write_text(yaml.safe_dump(doc))
        r = run(state, "apply", "-p", BIOS_ONLY, "-i", str(inv), "--json")
        assert r.rc == 2, (r.out, r.err)
        assert "b: BIOS: " in r.json()["error"] and "nope" in r.json()["error"]
        assert writes(tmp_path / "a.jsonl") == [] and writes(tmp_path / "b.jsonl") == []
        assert log_lines(tmp_path / "a.jsonl")  # a was read (planned), not written
        r = run(state, "verify", "-p", BIOS_ONLY, "-i", str(inv))
        assert r.rc == 2 and "nope" in r.err
        assert writes(tmp_path / "b.jsonl") == []
    finally:
        handle.stop()
