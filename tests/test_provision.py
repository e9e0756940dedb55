"""`tuner provision`: a bare simulated fleet made ready, offline, idempotent; the gate through
the provisioned runtime; a ROCm library/package mismatch; bad input. Pure parts with data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import Fleet, make_fleet, run_tuner

from agent.provision import pip_platform_args, platform_key
from agent.provision_node import PIP_ENV, ProvisionError, amdsmi_source, share_version


@pytest.fixture
def bare_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Two bare nodes (own Python only); node02's libamd_smi.so is older than the amdsmi
    package ROCm left in its share/amd_smi (scenario rocm-upgrade-halfway)."""
    yield from make_fleet(
        tmp_path / "state", None, 2, "--scenario", "rocm-upgrade-halfway", runtime="bare"
    )


def _offline_env() -> dict[str, str]:
    """No index anywhere: pip's configuration files off, the index a closed port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple",
        PIP_NO_INDEX="1",
        http_proxy=f"http://127.0.0.1:{port}",
        https_proxy=f"http://127.0.0.1:{port}",
    )
    return env


@pytest.mark.fleet
def test_provision_bare_fleet(bare_fleet: Fleet) -> None:
    f = bare_fleet
    # a fresh node has no runtime: the gate fails it closed, naming the fix
    r = f.tuner("check", "--json")
    nodes = {n["name"]: n for n in r.json()["nodes"]}
    assert all("not provisioned: run tuner provision" in n["reason"] for n in nodes.values()), r.out

    # --check: each node reported, what would change, nothing written on any node
    before = f.hashes()
    r = f.tuner("provision", "--check", "--json")
    assert r.rc == 1, r.err  # node02's mismatch is a failed host
    hosts = {h["host"]: h for h in r.json()["hosts"]}
    n1, n2 = hosts["node01"], hosts["node02"]
    assert n1["status"] == "would change"
    assert any("amdsmi 7.0.2 from /opt/rocm/share/amd_smi" in s for s in n1["steps"])
    assert n1["rocm_version"] == "7.0.2" and n1["amdsmi_library"] == "7.0.2"
    assert n1["os"].startswith("Debian") and n1["python"] and n1["privilege"] in ("root", "sudo")
    assert n1["amdgpu_version"] == "6.14.14"
    assert n2["status"] == "failed"
    assert "6.4.0" in n2["message"] and "7.0.2" in n2["message"], n2["message"]
    assert f.hashes() == before

    # the install itself runs with no index reachable: the wheelhouse is cached (built by
    # the --check above) and pushed; the node's pip gets --no-index
    r = f.tuner("provision", "--json", env=_offline_env())
    assert r.rc == 1, r.err
    hosts = {h["host"]: h for h in r.json()["hosts"]}
    assert hosts["node01"]["status"] == "changed"
    assert hosts["node01"]["amdsmi_package"] == "7.0.2"
    assert hosts["node02"]["status"] == "failed" and "6.4.0" in hosts["node02"]["message"]
    root1 = f.roots["node01"]
    venv_py = root1 / "opt/tuner/venv/bin/python"
    assert venv_py.exists() and (root1 / "opt/tuner/venv/tuner-runtime.json").is_file()
    assert not (f.roots["node02"] / "opt/tuner/venv").exists()  # refused before writing
    assert not list((root1 / "opt/rocm/share/amd_smi").glob("*.egg-info"))  # /opt/rocm untouched
    # provision ends with the node agent, installed into that runtime: its unit and code,
    # and it runs under the venv's Python alone (pyudev and prometheus_client are there)
    assert "install the node agent (tuner-agent.service)" in hosts["node01"]["steps"]
    unit = (root1 / "etc/systemd/system/tuner-agent.service").read_text()
    assert "/opt/tuner/venv/bin/python -m tuner_agent.nodeagent run" in unit
    assert not (f.roots["node02"] / "etc/systemd/system/tuner-agent.service").exists()
    once = subprocess.run(  # the unit's ExecStart, one-shot, from the node's /
        [
            str(venv_py),
            "-m",
            "tuner_agent.nodeagent",
            "run",
            "--once",
            "--root",
            str(root1),
            "--events",
            "none",
            "--textfile-dir",
            str(root1 / "tmp/textfile"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root1,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root1 / "opt/tuner/lib")},
    )
    assert once.returncode == 0, once.stderr
    # tuner itself is in the runtime (installed --no-deps: no Ansible): the node's own
    # `tuner check --local` gives the gate's verdict on the node's tree
    assert hosts["node01"]["tuner"] == version("tuner"), hosts["node01"]
    marker = json.loads((root1 / "opt/tuner/venv/tuner-runtime.json").read_text())
    assert marker["tuner"] == version("tuner") and len(marker["tuner_wheel"]) == 64
    assert not list((root1 / "opt/tuner/venv/lib").glob("python*/site-packages/ansible*"))
    local = subprocess.run(
        [
            str(root1 / "opt/tuner/venv/bin/tuner"),
            "check",
            "--local",
            "--json",
            "--root",
            str(root1),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root1,
        env={"PATH": "/usr/bin:/bin", "TUNER_STATE_DIR": str(f.state / "node01-local")},
    )
    assert local.returncode == 0, local.stderr
    doc = json.loads(local.stdout)
    assert doc["gate"]["passed"] and doc["usable_gpus"] == 8, doc["gate"]

    # idempotent
    r = f.tuner("provision", "--json", "--limit", "node01")
    assert r.rc == 0, r.err
    assert r.json()["hosts"][0]["status"] == "unchanged"

    # a cached wheel changed after download: refused (exit 2) naming it, nothing pushed
    cached = sorted((f.state / "wheelhouse").glob("cp*/psutil-*.whl"))[0]
    good = cached.read_bytes()
    before = f.hashes()
    cached.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    r = f.tuner("provision", "--limit", "node01")
    assert r.rc == 2 and cached.name in r.err and "changed since it was downloaded" in r.err, r.err
    assert f.hashes() == before
    cached.write_bytes(good)
    # a wheel changed on the node after it was unpacked: that node refuses before pip runs
    pushed = root1 / "opt/tuner/wheelhouse" / cached.name
    pushed.write_bytes(b"not the wheel")
    r = f.tuner("provision", "--json", "--limit", "node01")
    assert r.rc == 1, r.err
    h = r.json()["hosts"][0]
    assert h["status"] == "failed" and cached.name in h["message"], h
    assert "changed since it was downloaded" in h["message"], h
    pushed.write_bytes(good)
    r = f.tuner("provision", "--json", "--limit", "node01")
    assert r.rc == 0 and r.json()["hosts"][0]["status"] == "unchanged", r.out + r.err

    # the gate runs through the provisioned runtime (the node's /usr/bin/python3 has no
    # amdsmi); node02, refused, stays out
    r = f.tuner("check", "--json")
    nodes = {n["name"]: n for n in r.json()["nodes"]}
    assert nodes["node01"]["status"] == "ok", nodes["node01"]
    assert "not provisioned" in nodes["node02"]["reason"]


def test_provision_bad_input(tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = run_tuner("provision", "--wheelhouse", str(tmp_path / "nope"), "--json", state=state)
    assert r.rc == 2 and "--wheelhouse" in r.out
    (tmp_path / "empty").mkdir()
    r = run_tuner("provision", "--wheelhouse", str(tmp_path / "empty"), state=state)
    assert r.rc == 2 and "pip wheel" in r.err
    (tmp_path / "empty/pip-25.0-py3-none-any.whl").write_bytes(b"pip")
    for v in ("0.1.0", "0.2.0"):
        (tmp_path / f"empty/tuner-{v}-py3-none-any.whl").write_bytes(b"tuner")
    r = run_tuner("provision", "--wheelhouse", str(tmp_path / "empty"), state=state)
    assert r.rc == 2 and "more than one tuner wheel" in r.err, r.err
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    n1:\n      tuner_python: venv/bin/python\n")
    r = run_tuner("provision", "-i", str(inv), state=state)
    assert r.rc == 2 and "tuner_python" in r.err
    assert not (state / "runs").exists()  # nothing ran
    r = run_tuner("sim", "up", "-n", "1", "--runtime", "borrowed", state=state)
    assert r.rc == 2 and "--runtime" in r.err and not (state / "sim").exists()


def test_amdsmi_source_rules() -> None:
    f = {"amdsmi_library": "7.0.2", "amdsmi_share": "7.0.2", "rocm_version": "7.0.2"}
    assert amdsmi_source(f, {}) == ("share", "7.0.2")
    with pytest.raises(ProvisionError, match=r"reports 6\.4\.0 .* is 7\.0\.2"):
        amdsmi_source({**f, "amdsmi_library": "6.4.0"}, {})
    nos = {"amdsmi_library": "6.4.1", "amdsmi_share": None, "rocm_version": "6.4.1-120"}
    assert amdsmi_source(nos, {"amdsmi": ["6.4.1", "7.0.2"]}) == ("wheel", "6.4.1")
    with pytest.raises(ProvisionError, match="no amdsmi 6.4.1 wheel"):
        amdsmi_source(nos, {"amdsmi": ["7.0.2"]})


def test_share_version(tmp_path: Path) -> None:
    (tmp_path / "amdsmi").mkdir()
    (tmp_path / "amdsmi/_version.py").write_text('__version__ = "6.4.1"\n')
    assert share_version(str(tmp_path)) == "6.4.1"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "amdsmi"\nversion = "6.4.2"\n')
    assert share_version(str(tmp_path)) == "6.4.2"


def test_pip_platform_args() -> None:
    key = platform_key({"python": "3.11.2", "machine": "x86_64", "libc": "glibc 2.36"})
    assert key == ("3.11", "x86_64", "2.36")
    a = pip_platform_args(*key)
    assert "manylinux_2_36_x86_64" in a and "manylinux_2_17_x86_64" in a
    assert "manylinux_2_37_x86_64" not in a and "abi3" in a and "cp311" in a


def test_node_pip_has_no_index() -> None:
    assert PIP_ENV["PIP_NO_INDEX"] == "1" and PIP_ENV["PIP_CONFIG_FILE"] == os.devnull
    with socket.socket() as s:  # the index URL is a port nothing answers on
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", 9)) != 0
    assert sys.version_info >= (3, 9)


def test_pinned_to_newest_wheel() -> None:
    from agent.provision_node import pinned

    wheels = {"psutil": ["5.9.8", "7.2.2", "7.10.0"], "pyzmq": ["27.3.0"]}
    assert pinned(["psutil>=5.9,<8", "pyzmq>=25", "pyudev"], wheels) == [
        "psutil==7.10.0",
        "pyzmq==27.3.0",
        "pyudev",
    ]


def test_wheelhouse_tar_unpacks_wheels_only(tmp_path: Path) -> None:
    import tarfile

    from agent.provision import pack
    from agent.provision_node import unpack_wheelhouse

    src = tmp_path / "wh"
    src.mkdir()
    (src / "a-1.0-py3-none-any.whl").write_bytes(b"a")
    tar, sha = pack(src, tmp_path / "state")
    assert pack(src, tmp_path / "state") == (tar, sha)  # cached, same bytes
    root = tmp_path / "root"
    (root / "opt/tuner").mkdir(parents=True)
    with tarfile.open(root / "opt/tuner/wheelhouse.tar", "w") as t:  # a hostile tar
        t.add(src / "a-1.0-py3-none-any.whl", arcname="a-1.0-py3-none-any.whl")
        t.add(src / "a-1.0-py3-none-any.whl", arcname="../../escape.whl")
    assert unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", check=True)
    assert not (root / "opt/tuner/wheelhouse").exists()  # --check: nothing written
    assert unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", check=False)
    assert sorted(p.name for p in (root / "opt/tuner/wheelhouse").iterdir()) == [
        ".tar-sha256",
        "a-1.0-py3-none-any.whl",
    ]
    assert not (tmp_path / "escape.whl").exists() and not (root / "escape.whl").exists()
    assert unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", check=False) == []
    assert [p.name for p in (root / "opt/tuner").iterdir() if p.name.startswith(".")] == []


def test_installed_tuner_repacked_as_its_wheel(tmp_path: Path) -> None:
    """A controller that runs tuner installed from its wheel (no source tree) sends the
    nodes that wheel again, made from the install's RECORD; a file changed since the
    install is refused."""
    import base64
    import hashlib
    import zipfile
    from importlib.metadata import PathDistribution

    from agent.errors import BadInput
    from agent.provision import repack

    site = tmp_path / "site"
    files = {
        "agent/__init__.py": b"",
        "agent/cli/__init__.py": b"def main(): pass\n",
        "tuner-9.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tuner\nVersion: 9.1\n",
        "tuner-9.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: py3-none-any\n",
        "tuner-9.1.dist-info/entry_points.txt": b"[console_scripts]\ntuner = agent.cli:main\n",
        "tuner-9.1.dist-info/INSTALLER": b"pip\n",
        "agent/__pycache__/__init__.cpython-311.pyc": b"x",
    }
    rec = []
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rec.append(f"{rel},sha256={h},{len(data)}")
    rec += ["../../../bin/tuner,,", "tuner-9.1.dist-info/RECORD,,"]
    (site / "tuner-9.1.dist-info/RECORD").write_text("\n".join(rec) + "\n")
    dist = PathDistribution(site / "tuner-9.1.dist-info")
    name, blob = repack(dist)
    assert name == "tuner-9.1-py3-none-any.whl" and repack(dist)[1] == blob  # same bytes
    (tmp_path / name).write_bytes(blob)
    with zipfile.ZipFile(tmp_path / name) as z:
        names = z.namelist()
        record = z.read("tuner-9.1.dist-info/RECORD").decode()
    assert names[:2] == ["agent/__init__.py", "agent/cli/__init__.py"]
    assert "tuner-9.1.dist-info/INSTALLER" not in names and not any("pycache" in n for n in names)
    assert "tuner-9.1.dist-info/entry_points.txt" in names and "bin/tuner" not in record
    (site / "agent/cli/__init__.py").write_bytes(b"import os; os.system('x')\n")
    with pytest.raises(BadInput, match="differs from what pip installed"):
        repack(dist)


def test_tuner_wheel_plan_and_checks(tmp_path: Path) -> None:
    """tuner is (re)installed when its wheel's sha256 is not the one the runtime marker
    records (a changed source keeps the version number); the controller's option must name
    a tuner wheel the wheelhouse's hashes list; the source hash follows the source."""
    from agent.provision import source_digest
    from agent.provision_node import check_tuner, plan

    sha = "a" * 64
    expect = {"tar": "b" * 64, "wheels": {"tuner-0.1.0-py3-none-any.whl": sha}}
    own = check_tuner(
        {"wheel": "tuner-0.1.0-py3-none-any.whl", "sha256": sha, "version": "0.1.0"}, expect
    )
    assert own == {"wheel": "tuner-0.1.0-py3-none-any.whl", "sha256": sha, "version": "0.1.0"}
    for bad in (
        {"wheel": "../tuner-0.1.0-py3-none-any.whl", "sha256": sha, "version": "0.1.0"},
        {"wheel": "tuner-0.1.0-py3-none-any.whl", "sha256": "c" * 64, "version": "0.1.0"},
        {"wheel": "tuner-0.1.0-py3-none-any.whl", "sha256": sha, "version": "0.2"},
    ):
        with pytest.raises(ProvisionError):
            check_tuner(bad, expect)
    assert check_tuner(None, expect) is None
    f = {"amdsmi_library": "7.0.2", "amdsmi_share": "7.0.2", "amdsmi_package": "7.0.2"}
    (tmp_path / "opt/tuner/venv/bin").mkdir(parents=True)
    (tmp_path / "opt/tuner/venv/bin/python").write_text("")
    root, venv, wh = str(tmp_path), "/opt/tuner/venv", "/opt/tuner/wheelhouse"
    installed = {**f, "packages": {"tuner": "0.1.0"}}
    steps, _ = plan(root, venv, wh, [], {**installed, "runtime": {"tuner_wheel": sha}}, own)
    assert steps == []  # the same wheel: unchanged
    steps, _ = plan(root, venv, wh, [], {**installed, "runtime": {"tuner_wheel": "d" * 64}}, own)
    assert steps == [
        "install tuner 0.1.0 (/opt/tuner/venv/bin/tuner; wheel sha256 aaaaaaaaaaaa) (was 0.1.0)"
    ]
    steps, _ = plan(root, venv, wh, [], {**f, "packages": {}, "runtime": None}, own)
    assert steps and steps[0].startswith("install tuner 0.1.0")

    src = tmp_path / "src"
    (src / "agent/__pycache__").mkdir(parents=True)
    (src / "pyproject.toml").write_text('[project]\nname = "tuner"\n')
    (src / "agent/a.py").write_text("x = 1\n")
    one = source_digest(src)
    (src / "agent/__pycache__/a.cpython-311.pyc").write_bytes(b"cache")
    assert source_digest(src) == one  # caches are not source
    (src / "agent/a.py").write_text("x = 2\n")
    assert source_digest(src) != one  # a change of tuner's source: a new wheel
