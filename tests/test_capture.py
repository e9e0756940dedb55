"""tuner capture (issue 16, part 1): read only, the manifest, redaction, and bundles that
must be refused when read (truncated, corrupt, oversized, paths escaping the folder)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, TUNER, tree_hash

from agent.capture import bundle
from agent.sim.gpu.build import BuildError, build_library
from agent.sim.gpu.state import install_node
from agent.sim.nodetree import Topology, build_node
from agent.sim.scenarios import SCENARIOS, node_state


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_library(tmp_path_factory.mktemp("lib"))
    except BuildError as e:
        pytest.skip(f"no C compiler: {e}")


def tuner(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ROCM_PATH", None)
    return subprocess.run(
        [*TUNER, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180
    )


def make_node(root: Path, lib: Path, scenario: str = "amdsmi-error") -> None:
    build_node(root, root.name, Topology(cores_per_socket=2))
    install_node(root, node_state(SCENARIOS[scenario], 1), lib)
    # the simulated tree has no cpuinfo/meminfo yet (issue 16 part 3): a real node's first lines
    (root / "proc/cpuinfo").write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
        "model name\t: AMD EPYC 9575F 64-Core Processor\n"
    )
    (root / "proc/meminfo").write_text("MemTotal:       1584868352 kB\n")
    log = root / "var/log/dmesg"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "[    5.1] amdgpu 0000:05:00.0: amdgpu: SMU is initialized successfully!\n"
        "[    5.2] systemd[1]: Started foo.\n"
        "[  900.3] amdgpu 0000:75:00.0: amdgpu: ring gfx_0.0.0 timeout\n"
    )


@pytest.fixture(scope="module")
def captured(lib: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One node captured as a folder; its tree hashed before and after."""
    tmp = tmp_path_factory.mktemp("cap")
    root = tmp / "node7"
    make_node(root, lib)
    before = tree_hash(root, skip=())
    p = tuner("capture", "--local", "--root", str(root), "-o", str(tmp / "out"), "--json")
    after = tree_hash(root, skip=())
    assert p.returncode == 0, p.stderr
    return {"tmp": tmp, "root": root, "doc": json.loads(p.stdout), "before": before, "after": after}


def test_capture_is_read_only(captured: dict[str, Any]) -> None:
    assert captured["before"] == captured["after"]


def test_bundle_holds_what_was_read_with_a_manifest(captured: dict[str, Any]) -> None:
    (w,) = captured["doc"]["bundles"]
    b = bundle.read_bundle(w["bundle"])
    m = b.manifest
    assert m["format"] == bundle.FORMAT and m["host"] == "node7" and m["tuner_version"]
    assert m["created_at"].endswith("Z") and m["redacted"] is False
    for path in (
        "node/proc/cpuinfo",
        "node/proc/meminfo",
        "node/proc/cmdline",
        "node/proc/sys/kernel/numa_balancing",
        "node/sys/kernel/mm/transparent_hugepage/enabled",
        "node/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "node/sys/devices/system/cpu/cpu0/cpuidle/state2/name",
        "node/sys/devices/system/node/node0/cpulist",
        "node/sys/bus/pci/devices/0000:05:00.0/current_link_speed",
        "node/sys/bus/pci/devices/0000:05:00.0/numa_node",
        "node/etc/os-release",
        "README.md",
        "pci-drivers.txt",
    ):
        assert path in b.files and path in m["files"], path
    # the kernel log: the amdgpu lines only
    log = b.text("kernel-log.txt") or ""
    assert "ring gfx_0.0.0 timeout" in log and "systemd" not in log
    # every amdsmi call with its status: the scenario's injected error is there as ROCm said it
    calls = b.json(bundle.CALLS)
    assert calls[0]["fn"] == "amdsmi_init" and calls[0]["status"] == "AMDSMI_STATUS_SUCCESS"
    failed = [c for c in calls if c["code"] not in (0, None)]
    assert any("DRIVER_NOT_LOADED" in c["status"] for c in failed), failed[:3]
    assert all(set(c) == {"fn", "args", "status", "code", "value"} for c in calls)
    # what could not be read, and why
    assert "no BMC given" in m["not_read"]["bmc/"]
    readme = b.text("README.md") or ""
    assert "no tuner is needed" in readme and "Not read" in readme
    # a support engineer's check: sha256sum of each file is the manifest's
    import hashlib

    folder = Path(w["bundle"])
    for rel, info in m["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == info["sha256"]


def test_read_summarises_a_good_bundle(captured: dict[str, Any]) -> None:
    (w,) = captured["doc"]["bundles"]
    p = tuner("capture", "--read", w["bundle"], "--json")
    assert p.returncode == 0, p.stderr
    (d,) = json.loads(p.stdout)["bundles"]
    assert d["host"] == "node7" and d["read"]["amdsmi_calls"] > 100


def test_capture_refuses_to_overwrite(captured: dict[str, Any]) -> None:
    p = tuner(
        "capture", "--local", "--root", str(captured["root"]), "-o", str(captured["tmp"] / "out")
    )
    assert p.returncode == 2 and "exists" in p.stderr and "Traceback" not in p.stderr


def test_redaction_is_consistent_across_bundles(captured: dict[str, Any]) -> None:
    (w,) = captured["doc"]["bundles"]
    b = bundle.read_bundle(w["bundle"])
    files = {k: v for k, v in b.files.items() if k != "README.md"}
    files["node/sys/class/net/eth0/address"] = b"0c:42:a1:de:ad:01\n"
    r = bundle.Redactor()
    r.collect(files)
    r.collect(files)  # a second node with the same GPUs (a duplicate inventory entry)
    one, two = r.apply(files), r.apply(files)
    assert one == two
    calls = json.loads(one[bundle.CALLS])
    uuids = [c["value"] for c in calls if c["fn"] == "amdsmi_get_gpu_device_uuid"]
    asic = [
        c["value"]["asic_serial"]
        for c in calls
        if c["fn"] == "amdsmi_get_gpu_asic_info" and c["value"]
    ]
    originals = [
        c["value"]
        for c in json.loads(files[bundle.CALLS])
        if c["fn"] == "amdsmi_get_gpu_device_uuid"
    ]
    assert len(set(uuids)) == len(uuids) == 8 and not set(uuids) & set(originals)
    assert all(bundle.UUID.fullmatch(u) for u in uuids)  # same shape: tools still parse it
    assert all(int(s, 16) for s in asic)  # still hex: amdsmi's Python does int(s, 16)
    text = b"".join(one.values()).decode()
    for orig in originals + ["0c:42:a1:de:ad:01"]:
        assert orig not in text
    # the gpu-state file of the simulated node holds the same tokens as the amdsmi answers
    state = one["node/opt/rocm/share/tuner-sim/gpu-state"].decode()
    assert f"uuid = {uuids[0]}" in state


# ------------------------------------------------------------------ bad bundles


def _archive(tmp: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], name: str) -> Path:
    p = tmp / f"{name}.tar.gz"
    with tarfile.open(p, "w:gz") as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return p


def _good_members(src: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for f in sorted(src.rglob("*")):
        if f.is_file():
            ti = tarfile.TarInfo(f"node7/{f.relative_to(src).as_posix()}")
            data = f.read_bytes()
            ti.size = len(data)
            out.append((ti, data))
    return out


def _bad_bundles(tmp: Path, good: Path) -> dict[str, Path]:
    ok = _good_members(good)
    bad: dict[str, Path] = {}
    full = _archive(tmp, ok, "good")
    raw = full.read_bytes()
    (tmp / "truncated.tar.gz").write_bytes(raw[: len(raw) // 2])
    bad["truncated"] = tmp / "truncated.tar.gz"
    (tmp / "garbage.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    bad["corrupt gzip"] = tmp / "garbage.tar.gz"
    changed = [
        (ti, (d or b"").replace(b"AMD", b"XYZ") if "cpuinfo" in ti.name else d) for ti, d in ok
    ]
    bad["hash mismatch"] = _archive(tmp, changed, "tampered")
    bad["file not in manifest"] = _archive(tmp, [*ok, _file("node7/extra.txt", b"x")], "extra")
    bad["no manifest"] = _archive(
        tmp, [m for m in ok if not m[0].name.endswith("manifest.json")], "nomani"
    )
    bad["dot-dot"] = _archive(tmp, [*ok, _file("node7/../evil", b"x")], "dotdot")
    bad["absolute"] = _archive(tmp, [*ok, _file("/tmp/evil", b"x")], "abs")
    bad["two folders"] = _archive(tmp, [*ok, _file("other/x", b"x")], "two")
    sym = tarfile.TarInfo("node7/link")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad["symlink"] = _archive(tmp, [*ok, (sym, None)], "sym")
    hard = tarfile.TarInfo("node7/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "node7/README.md"
    bad["hardlink"] = _archive(tmp, [*ok, (hard, None)], "hard")
    dev = tarfile.TarInfo("node7/dev")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    bad["device"] = _archive(tmp, [*ok, (dev, None)], "dev")
    fifo = tarfile.TarInfo("node7/fifo")
    fifo.type = tarfile.FIFOTYPE
    bad["fifo"] = _archive(tmp, [*ok, (fifo, None)], "fifo")
    # oversized: one member over the per-file limit (zeros: a small archive, a large file)
    big = tmp / "big.tar.gz"
    with gzip.open(big, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        ti = tarfile.TarInfo("node7/node/huge")
        ti.size = bundle.MAX_FILE_BYTES + 1
        tar.addfile(ti, io.BytesIO(bytes(ti.size)))
    bad["oversized"] = big
    # folder bundles: a symbolic link, a hard link
    import shutil

    f1 = tmp / "folder-sym" / "node7"
    shutil.copytree(good, f1)
    (f1 / "node" / "escape").symlink_to("/etc/passwd")
    bad["folder symlink"] = f1
    f2 = tmp / "folder-hard" / "node7"
    shutil.copytree(good, f2)
    os.link(f2 / "README.md", f2 / "node" / "again")
    bad["folder hardlink"] = f2
    return bad


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


def test_bad_bundles_exit_2_and_write_nothing(captured: dict[str, Any], tmp_path: Path) -> None:
    """Every kind of bad bundle is refused by the reader (BadInput: exit 2) before anything is
    written; three of them through the command line as well."""
    from agent.errors import BadInput

    (w,) = captured["doc"]["bundles"]
    bad = _bad_bundles(tmp_path, Path(w["bundle"]))
    before = tree_hash(tmp_path, skip=())
    for why, path in bad.items():
        with pytest.raises(BadInput) as e:
            bundle.read_bundle(str(path))
        assert e.value.exit_code == 2 and "not a usable capture bundle" in str(e.value), why
    work = tmp_path / "work"
    work.mkdir()
    for why in ("truncated", "dot-dot", "symlink", "oversized"):
        p = tuner("capture", "--read", str(bad[why]), "--json", cwd=work)
        assert p.returncode == 2, (why, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr and "not a usable capture bundle" in p.stderr, why
        assert json.loads(p.stdout)["file"] == str(bad[why])
    assert not any(work.iterdir())
    work.rmdir()
    assert tree_hash(tmp_path, skip=()) == before  # nothing written, nothing extracted
    assert not Path("/tmp/evil").exists()


CANARY = "CANARY-capture-pw-3e9d1"


@pytest.mark.parametrize("vendor", ["hpe", "supermicro"])
def test_local_capture_reads_the_bmc_and_keeps_no_secret(
    lib: Path, tmp_path: Path, vendor: str
) -> None:
    from agent.sim.bmc.server import start_bmcs

    pw = tmp_path / "pw"
    pw.write_text(CANARY + "\n")
    root = tmp_path / "n1"
    make_node(root, lib, "ecc-deferred")
    handle = start_bmcs(
        {
            "nodes": [
                {
                    "name": "n1",
                    "port": 0,
                    "vendor": vendor,
                    "username": "admin",
                    "password_file": str(pw),
                    "reset_delay": 0.1,
                }
            ]
        }
    )
    try:
        env = dict(os.environ, TUNER_BMC_PASSWORD=CANARY)
        env.pop("ROCM_PATH", None)
        p = subprocess.run(
            [
                *TUNER,
                "capture",
                "--local",
                "--root",
                str(root),
                "-o",
                str(tmp_path / "out"),
                "--bmc-url",
                handle.url("n1"),
                "--bmc-username",
                "admin",
                "--archive",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=180,
        )
    finally:
        handle.stop()
    assert p.returncode == 0, p.stderr
    assert CANARY not in p.stdout + p.stderr
    (w,) = json.loads(p.stdout)["bundles"]
    raw = Path(w["bundle"]).read_bytes()
    b = bundle.read_bundle(w["bundle"])
    bmc = [k for k in b.files if k.startswith("bmc/")]
    assert "bmc/redfish/v1/index.json" in bmc
    bios = next(k for k in bmc if k.lower().endswith("/bios/index.json"))
    assert b.json(bios)["Attributes"]
    assert any("AttributeRegistry" in str(b.json(k).get("@odata.type", "")) for k in bmc), (
        "the whole attribute registry"
    )
    assert b.manifest["source"]["bmc_url"] == handle.url("n1")
    assert any(
        k.lower().endswith(("/bios/settings/index.json", "/bios/sd/index.json")) for k in bmc
    )
    for data in [*b.files.values(), raw, json.dumps(b.manifest).encode()]:
        assert CANARY.encode() not in data


def test_gpu_state_from_amdsmi_answers_gives_the_same_answers(
    captured: dict[str, Any], lib: Path, tmp_path: Path
) -> None:
    """A real node's bundle has no gpu-state: the simulated GPUs come from the recorded amdsmi
    answers (agent/sim/gpustate.py). Built that way from a simulated node's bundle, the node
    answers every call as recorded, error codes included."""
    from agent.sim.fromcapture import GPU_STATE, build

    (w,) = captured["doc"]["bundles"]
    b = bundle.read_bundle(w["bundle"])
    del b.files[GPU_STATE]
    root = tmp_path / "node7"
    used = build(root, b, lib)
    assert any("GPUs:" in u for u in used)
    p = tuner("capture", "--local", "--root", str(root), "-o", str(tmp_path / "out"), "--json")
    assert p.returncode == 0, p.stderr
    again = bundle.read_bundle(json.loads(p.stdout)["bundles"][0]["bundle"])
    assert again.json(bundle.CALLS) == b.json(bundle.CALLS)
