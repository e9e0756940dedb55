"""Issue 21, files and processes: one exclusive atomic writer, node records read as untrusted,
no path leaving a host root, wheels checked against the sha256 recorded at download, no
half-made folder after a failure, event storms coalesced, boot-critical kernel parameters
refused. Pure parts on node trees; the CLI parts on a simulated fleet (`tuner sim up`), each
with the "nothing changed" check (tree hashes before and after)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Fleet, make_fleet, tree_hash

from agent import bootloader, knobs, nodeagent
from agent.errors import BadInput
from agent.profiles import load_profile
from agent.sim import events as simevents
from agent.sim.nodetree import Topology, build_node

# ---------------------------------------------------------------- one exclusive writer


def test_write_atomic_never_follows_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    # the old predictable temp names, and the target itself, planted as links to the victim
    for name in (".report.json.tmp", ".report.json.tuner-tmp", "report.json"):
        (out.parent / name).unlink(missing_ok=True)
        (out.parent / name).symlink_to(victim)
    knobs.write_atomic(str(out), "new\n")
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink() and out.read_text() == "new\n"
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    leftovers = [p.name for p in out.parent.iterdir() if p.name.endswith(knobs.TMP_MARK)]
    assert leftovers == [".report.json.tuner-tmp"]  # only the planted one: ours is renamed


def test_write_atomic_failure_leaves_target_and_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    out.write_text("old\n")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        knobs.write_atomic(str(out), 12345)  # type: ignore[arg-type]
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_one_writer_everywhere() -> None:
    """No module of tuner writes a file another way (the simulator and agent/launch aside:
    the sim builds node trees, launch is another engineer's area)."""
    pattern = re.compile(
        r"write_to_textfile\(|mkstemp\(|NamedTemporaryFile\(|\.write_text\(|\.write_bytes\(|open\([^)]*[\"'][wa]b?\+?[\"']"
    )
    allowed = {"agent/launch/run.py"}  # the launch's own log file (agent/launch/)
    found = []
    for base in (REPO / "agent", REPO / "playbooks"):
        for p in base.rglob("*.py"):
            rel = p.relative_to(REPO).as_posix()
            if rel.startswith("agent/sim/") or p.is_symlink() or rel in allowed:
                continue
            for n, line in enumerate(p.read_text().splitlines(), 1):
                exempt = ("one-writer:", "os.fdopen(fd", "fileobj=", "ex.write_text(")
                if pattern.search(line) and not any(x in line for x in exempt):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_export_output_through_a_planted_link(tmp_path: Path) -> None:
    from agent.export import write_text

    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "hosts.ini"
    out.symlink_to(victim)
    write_text(str(out), "[gpu]\n")
    assert victim.read_text() == "keep" and out.read_text() == "[gpu]\n"


# ---------------------------------------------------------------- node records, untrusted


def _node(tmp_path: Path, name: str = "node") -> tuple[Path, knobs.Host]:
    root = tmp_path / name
    build_node(root, name, Topology(sockets=1, cores_per_socket=4))
    return root, knobs.Host(str(root), sim_kernel=True)


def _applied(root: Path, settings: list[dict[str, object]], **top: object) -> None:
    doc = {"version": 1, "saved": 1.0, "persist": False, "sim_kernel": True, "settings": settings}
    doc.update(top)
    p = root / "var/lib/tuner/applied.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))


HOSTILE_SPECS = [
    # a core_pattern pipe: the kernel would run the program on every crash
    (
        {
            "id": "sysctl.kernel.core_pattern",
            "kind": "sysctl",
            "name": "kernel.core_pattern",
            "value": "|/tmp/x %p",
        },
        "not allowed",
    ),
    # a file outside /proc and /sys through the selection knob
    (
        {"id": "thp.enabled", "kind": "selection", "path": "/etc/shadow", "value": "never"},
        "path must be",
    ),
    ({"id": "x", "kind": "sysctl", "name": "kernel/../../etc/passwd", "value": "1"}, "sysctl name"),
    (
        {"id": "sysctl.vm.swappiness", "kind": "sysctl", "name": "vm.swappiness", "value": "999"},
        "from 0 to 200",
    ),
    ({"id": "cpu.governor", "kind": "governor", "value": "rm -rf"}, "governor must be"),
    (
        {"id": "cpuidle.C2", "kind": "cpuidle", "state": "C2", "value": "disabled", "path": "/x"},
        "exactly the fields",
    ),
    (
        {
            "id": "thp.defrag",
            "kind": "selection",
            "path": knobs.THP_DIR + "/enabled",
            "value": "never",
        },
        "id must be thp.enabled",
    ),
    ({"id": "a", "kind": "shell", "value": "x"}, "kind must be"),
    # a trailing newline: `$` would let it through, fullmatch does not
    ({"id": "sysctl.vm.x\n", "kind": "sysctl", "name": "vm.x\n", "value": "1"}, "sysctl name"),
    ({"id": "sysctl.vm.x", "kind": "sysctl", "name": "vm.x", "value": "1\n"}, "not allowed"),
]


@pytest.mark.parametrize(("spec", "words"), HOSTILE_SPECS)
def test_agent_record_validated_as_strictly_as_a_profile(
    tmp_path: Path, spec: dict[str, object], words: str
) -> None:
    root, host = _node(tmp_path)
    _applied(root, [spec])
    before = tree_hash(root)
    with pytest.raises(knobs.KnobError, match=re.escape(words)):
        knobs.load_applied(host)
    # the agent's pass fails, naming the record; it writes nothing but its own result
    r = nodeagent.Agent(str(root)).reapply(None, "once")
    assert r["status"] == "failed" and "applied.json" in r["message"], r
    assert tree_hash(root) == before
    # and apply itself never takes such a spec from anywhere
    with pytest.raises(knobs.KnobError, match="refused, nothing changed"):
        knobs.apply(host, [spec], False, False)
    assert tree_hash(root) == before


def test_every_profile_setting_passes_the_record_rules() -> None:
    from typing import get_args

    from agent import profiles

    assert get_args(profiles.Governor) == knobs.GOVERNORS
    assert get_args(profiles.ThpEnabled) == knobs.THP_VALUES["enabled"]
    assert get_args(profiles.ThpDefrag) == knobs.THP_VALUES["defrag"]
    for name in profiles.list_profiles():
        specs = load_profile(name).os_settings()
        assert knobs.specs_problem(specs) == "", name


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe{}", "not JSON"),
        (b'{"version": 1, "settings": "x"}', "must be a list"),
        (b"[" * 100000, "not JSON"),
        (b'{"version": 1, "settings": [], "extra": 1}', "unknown field"),
        (b'{"version": true, "settings": []}', "'version' must be 1"),
    ],
)
def test_bad_records_are_named_never_a_traceback(
    tmp_path: Path, content: bytes, words: str
) -> None:
    root, host = _node(tmp_path)
    p = root / "var/lib/tuner/applied.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    with pytest.raises(knobs.KnobError, match=re.escape(words)):
        knobs.load_applied(host)


def test_fifo_or_huge_record_does_not_hang(tmp_path: Path) -> None:
    root, host = _node(tmp_path)
    d = root / "var/lib/tuner"
    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / "applied.json")
    os.mkfifo(d / "originals.json")
    os.mkfifo(d / "agent.json")
    start = time.monotonic()
    with pytest.raises(knobs.KnobError, match="not a regular file"):
        knobs.load_applied(host)
    with pytest.raises(knobs.KnobError, match="not a regular file"):
        knobs.load_originals(host)
    assert "not a regular file" in (knobs.load_agent_result(host) or {}).get("error", "")
    os.mkfifo(root / "etc/planted")
    with pytest.raises(knobs.KnobError, match="not a regular file"):
        host.read("/etc/planted")  # every knob and bootloader read goes through Host.read
    assert time.monotonic() - start < 1
    (d / "applied.json").unlink()
    with open(d / "applied.json", "wb") as f:
        f.truncate(knobs.RECORD_LIMIT + 1)
    with pytest.raises(knobs.KnobError, match="larger than"):
        knobs.load_applied(host)


def test_install_record_names_only_what_install_writes(tmp_path: Path) -> None:
    root, host = _node(tmp_path)
    src = {"knobs.py": "# k\n", "nodeagent.py": "# n\n"}
    nodeagent.install(host, src, sim=True)
    rec_path = root / nodeagent.INSTALL_RECORD.lstrip("/")
    good = json.loads(rec_path.read_text())
    (root / "etc/keep").write_text("keep")
    for key, value in (
        ("files", ["/etc/keep"]),
        ("files", [nodeagent.LIB_DIR + "/tuner_agent/../../../etc/keep"]),
        ("links", ["/etc/keep"]),
        ("dirs", ["/srv"]),
        ("files", [7]),
    ):
        rec_path.write_text(json.dumps({**good, key: good[key] + value}))
        before = tree_hash(root, skip=())
        with pytest.raises(knobs.KnobError, match="never|not a record"):
            nodeagent.remove(host)
        assert tree_hash(root, skip=()) == before  # nothing removed
    rec_path.write_text(json.dumps(good))
    # a full disk while the package is rewritten: the previous package stays whole
    pkg = root / nodeagent.LIB_DIR.lstrip("/") / nodeagent.PACKAGE
    before = {p.name: p.read_text() for p in pkg.iterdir()}
    real_write = knobs.write_atomic
    calls = []

    def full(path: str, data: object, mode: int = 0o644) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data, mode)  # type: ignore[arg-type]

    knobs.write_atomic = full  # type: ignore[assignment]
    try:
        with pytest.raises(OSError, match="No space"):
            nodeagent.install(host, {"knobs.py": "# k2\n", "nodeagent.py": "# n2\n"}, sim=True)
    finally:
        knobs.write_atomic = real_write  # type: ignore[assignment]
    assert {p.name: p.read_text() for p in pkg.iterdir()} == before
    assert [p.name for p in pkg.parent.iterdir() if p.name.startswith(".")] == []
    assert nodeagent.remove(host)["changed"] is True
    assert (root / "etc/keep").read_text() == "keep"


# ---------------------------------------------------------------- host roots


def test_symlinked_tuner_folders_leaving_the_root_are_refused(tmp_path: Path) -> None:
    from agent.provision_node import ProvisionError, facts, unpack_wheelhouse

    root, host = _node(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "opt").mkdir(exist_ok=True)
    (root / "opt/tuner").symlink_to(outside)
    with pytest.raises(ProvisionError, match="/opt/tuner leads out of the host root"):
        facts(str(root))
    with pytest.raises(ProvisionError, match="leads out of the host root"):
        unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", check=False)
    with pytest.raises(knobs.PathEscape):
        nodeagent.install(host, {"knobs.py": "x"}, sim=True)
    # the node's own record folder, linked out of the root: refused too
    (root / "var/lib/tuner").mkdir(parents=True, exist_ok=True)
    os.rename(root / "var/lib/tuner", tmp_path / "moved")
    (root / "var/lib/tuner").symlink_to(outside)
    with pytest.raises(knobs.PathEscape):
        knobs.load_applied(knobs.Host(str(root)))
    r = nodeagent.Agent(str(root)).reapply(None, "once")
    assert r["status"] == "failed" and "leaves the host root" in r["message"]
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- wheels and partial work


def _wheelhouse(tmp_path: Path) -> Path:
    d = tmp_path / "wh"
    d.mkdir()
    (d / "pip-24.0-py3-none-any.whl").write_bytes(b"pip wheel")
    (d / "psutil-6.0.0-cp311-abi3-manylinux_2_17_x86_64.whl").write_bytes(b"psutil wheel")
    return d


def test_cached_wheel_changed_after_download_is_refused(tmp_path: Path) -> None:
    from agent import provision

    state = tmp_path / "state"
    key = ("3.11", "x86_64", "2.36")
    reqs = [*provision.BUILD_REQUIREMENTS, *provision.RUNTIME_REQUIREMENTS]
    digest = __import__("hashlib").sha256(json.dumps([list(key), reqs]).encode()).hexdigest()
    d = state / "wheelhouse" / f"cp311-x86_64-glibc2.36-{digest[:12]}"
    d.mkdir(parents=True)
    src = _wheelhouse(tmp_path)
    for w in src.iterdir():
        (d / w.name).write_bytes(w.read_bytes())
    hashes = provision.wheel_hashes(d)
    (d / provision.STAMP).write_text(json.dumps({"platform": key, "wheels": hashes}))
    assert provision.build_wheelhouse(state, key, []) == (d, hashes)  # the cache, verified
    (d / "psutil-6.0.0-cp311-abi3-manylinux_2_17_x86_64.whl").write_bytes(b"evil")
    with pytest.raises(BadInput) as e:
        provision.build_wheelhouse(state, key, [])
    assert "changed since it was downloaded" in str(e.value)
    assert e.value.file and e.value.file.endswith(
        "psutil-6.0.0-cp311-abi3-manylinux_2_17_x86_64.whl"
    )
    (d / "psutil-6.0.0-cp311-abi3-manylinux_2_17_x86_64.whl").write_bytes(b"psutil wheel")
    (d / "extra-1-py3-none-any.whl").write_bytes(b"x")
    with pytest.raises(BadInput, match="added since"):
        provision.build_wheelhouse(state, key, [])


def test_node_checks_the_push_and_every_wheel_leaves_nothing_half_made(tmp_path: Path) -> None:
    from agent import provision
    from agent.provision_node import ProvisionError, check_wheels, unpack_wheelhouse

    src = _wheelhouse(tmp_path)
    hashes = provision.wheel_hashes(src)
    tar, sha = provision.pack(src, tmp_path / "state", hashes)
    expect = {"tar": sha, "wheels": hashes}
    root = tmp_path / "root"
    (root / "opt/tuner").mkdir(parents=True)
    pushed = root / "opt/tuner/wheelhouse.tar"

    def listing() -> list[str]:
        return sorted(p.name for p in (root / "opt/tuner").iterdir())

    # a truncated push: refused, removed (the next run pushes again), no folder made
    pushed.write_bytes(tar.read_bytes()[:1000])
    # --check sends nothing: an older push is what a run would replace, said as a step
    steps = unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", True, expect)
    assert steps == ["push and unpack the wheelhouse into /opt/tuner/wheelhouse"]
    assert listing() == ["wheelhouse.tar"]
    with pytest.raises(ProvisionError, match="not the one tuner sent"):
        unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", False, expect)
    assert listing() == []
    # a tar with the right bytes but a wheel that is not the recorded one (the controller's
    # hashes disagree): the folder built beside is removed, nothing is put in place
    pushed.write_bytes(tar.read_bytes())
    bad = {**expect, "wheels": {**hashes, "pip-24.0-py3-none-any.whl": "0" * 64}}
    with pytest.raises(ProvisionError, match="pip-24.0-py3-none-any.whl changed since"):
        unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", False, bad)
    assert listing() == ["wheelhouse.tar"]
    # the right push: unpacked, each wheel checked
    assert unpack_wheelhouse(str(root), "/opt/tuner/wheelhouse", False, expect)
    assert listing() == ["wheelhouse", "wheelhouse.tar"]
    # a wheel changed on the node after the unpack: refused before any install
    w = root / "opt/tuner/wheelhouse/psutil-6.0.0-cp311-abi3-manylinux_2_17_x86_64.whl"
    w.write_bytes(b"changed")
    with pytest.raises(ProvisionError, match="psutil-6.0.0.*changed since it was downloaded"):
        check_wheels(str(w.parent), "/opt/tuner/wheelhouse", hashes)


def test_full_disk_while_unpacking_leaves_the_old_wheelhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (ENOSPC) leaves the previous wheelhouse and no temp folder."""
    import errno
    import shutil

    from agent import provision, provision_node

    src = _wheelhouse(tmp_path)
    hashes = provision.wheel_hashes(src)
    tar, sha = provision.pack(src, tmp_path / "state", hashes)
    root = tmp_path / "root"
    (root / "opt/tuner/wheelhouse").mkdir(parents=True)
    (root / "opt/tuner/wheelhouse/old.whl").write_bytes(b"old")
    (root / "opt/tuner/wheelhouse.tar").write_bytes(tar.read_bytes())

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(OSError, match="No space"):
        provision_node.unpack_wheelhouse(
            str(root), "/opt/tuner/wheelhouse", False, {"tar": sha, "wheels": hashes}
        )
    assert sorted(p.name for p in (root / "opt/tuner").iterdir()) == [
        "wheelhouse",
        "wheelhouse.tar",
    ]
    assert [p.name for p in (root / "opt/tuner/wheelhouse").iterdir()] == ["old.whl"]


# ---------------------------------------------------------------- event storms


def test_event_storm_is_coalesced(tmp_path: Path) -> None:
    root, host = _node(tmp_path)
    knobs.apply(host, load_profile("inference").os_settings(), True, False, record=True)
    agent = nodeagent.Agent(str(root))
    agent.reapply(None, "start", quiet=True)
    source = nodeagent.SimSource(agent.host)
    stop = [False]
    t = threading.Thread(target=agent.watch, args=(source, stop), daemon=True)
    t.start()
    # a storm as `tuner sim event` makes it (its implementation): 7 CPUs off and on, 20 times
    start = time.monotonic()
    n = 0
    for _ in range(20):
        for cpu in range(1, 8):
            simevents.event(root, "cpu-offline", str(cpu))
            simevents.event(root, "cpu-online", str(cpu))
            n += 2
    storm = time.monotonic() - start
    cpu = root / "sys/devices/system/cpu"

    def converged() -> bool:
        return all(
            (cpu / f"cpu{c}/cpufreq/scaling_governor").read_text().strip() == "performance"
            and (cpu / f"cpu{c}/cpuidle/state2/disable").read_text().strip() == "1"
            for c in range(8)
        )

    deadline = time.monotonic() + 6  # the last settle re-check is 3 s after the last pass
    while not converged() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop[0] = True
    t.join(10)
    passes = agent.passes - 1  # the start pass
    bound = 2 * (int(storm / nodeagent.MIN_INTERVAL) + 1) + len(nodeagent.SETTLE)
    print(f"{n} uevents in {storm:.2f} s -> {passes} passes (bound {bound})")
    assert converged()
    assert 1 <= passes <= bound < n, (passes, bound, n)


# ---------------------------------------------------------------- kernel command line


@pytest.mark.parametrize(
    ("add", "remove", "critical"),
    [
        (["init=/bin/sh"], [], True),
        (["rdinit=/bin/sh"], [], True),
        (["rd.break"], [], True),
        (["rd.break=pre-mount"], [], True),
        (["rd.shell"], [], True),
        (["rd.shell=0"], [], False),  # only takes a shell away
        (["single"], [], True),
        (["emergency"], [], True),
        (["systemd.unit=emergency.target"], [], True),
        (["systemd.unit=rescue.target"], [], True),
        (["systemd.debug-shell"], [], True),  # systemd reads - and _ alike
        (["systemd.debug_shell=tty9"], [], True),
        (["break=premount"], [], True),
        ([], ["root"], True),
        (["rw"], [], True),
        ([], ["ro"], True),
        (["iommu=pt", "pci=realloc=off"], ["quiet"], False),
    ],
)
def test_boot_critical_classes(add: list[str], remove: list[str], critical: bool) -> None:
    msg = bootloader.check_tokens(add, remove)
    assert ("boot-critical" in msg) is critical, msg
    names = [bootloader.name_of(t) for t in add + remove]
    assert bootloader.check_tokens(add, remove, names) == ""  # named: allowed
    assert "not a kernel parameter" in bootloader.check_tokens([*add, "quiet\n"], remove, names)


@pytest.fixture(scope="module")
def tfleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path_factory.mktemp("trust") / "state", 2, 2)


def _prof(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / f"{name}.yml"
    p.write_text(f"name: {name}\n" + body)
    return p


@pytest.mark.fleet
def test_boot_critical_refused_on_the_fleet_nothing_changed(tfleet: Fleet, tmp_path: Path) -> None:
    before = {n: tree_hash(r, skip=()) for n, r in tfleet.roots.items()}
    shell = _prof(tmp_path, "shell", "kernel:\n  cmdline:\n    add: [iommu=pt, init=/bin/sh]\n")
    r = tfleet.tuner("apply", "-p", str(shell), "--json")
    assert r.rc == 2, r.out + r.err
    assert str(shell) in r.err and "init=/bin/sh" in r.err and "kernel.cmdline.add" in r.err
    assert "Traceback" not in r.err
    child = _prof(
        tmp_path, "child", "include: [inference]\nkernel:\n  cmdline:\n    remove: [root]\n"
    )
    r = tfleet.tuner("apply", "-p", str(child), "--layer", "cmdline", "--check")
    assert r.rc == 2 and str(child) in r.err and "removing root" in r.err, r.err
    r = tfleet.tuner(
        "apply", "-p", str(shell), "--check", "--allow-boot-critical", "init", "--json"
    )
    assert r.rc == 0, r.out + r.err
    assert {h["status"] for h in r.json()["hosts"]} == {"would change"}
    allow = ("--allow-boot-critical", "init", "--allow-boot-critical", "rd.brek")
    r = tfleet.tuner("apply", "-p", str(shell), "--check", *allow)
    assert r.rc == 2 and "--allow-boot-critical" in r.err and "rd.brek" in r.err, r.err
    assert {n: tree_hash(r, skip=()) for n, r in tfleet.roots.items()} == before


@pytest.mark.fleet
def test_agent_remove_refuses_a_forged_install_record(tfleet: Fleet) -> None:
    r = tfleet.tuner("agent", "install", "--json")
    assert r.rc == 0, r.out + r.err
    root = tfleet.roots["node01"]
    rec = root / nodeagent.INSTALL_RECORD.lstrip("/")
    doc = json.loads(rec.read_text())
    doc["files"].append("/etc/hostname")
    rec.write_text(json.dumps(doc))
    keep = (root / "etc/hostname").read_bytes()
    r = tfleet.tuner("agent", "remove", "--json")
    assert r.rc == 1, r.out + r.err
    hosts = {h["host"]: h for h in r.json()["hosts"]}
    assert hosts["node01"]["status"] == "failed"
    assert "/etc/hostname" in json.dumps(hosts["node01"]) and "never writes" in r.out
    assert (root / "etc/hostname").read_bytes() == keep
    assert (root / nodeagent.UNIT_PATH.lstrip("/")).exists()  # nothing removed on node01
    assert hosts["node02"]["status"] != "failed"


@pytest.mark.fleet
def test_provision_refuses_a_symlinked_opt_tuner(tfleet: Fleet, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    made = []
    try:
        for root in tfleet.roots.values():
            t = root / "opt/tuner"
            if t.exists() or t.is_symlink():
                t.rename(root / "opt/tuner.moved")
                made.append(root)
            else:
                (root / "opt").mkdir(exist_ok=True)
            t.symlink_to(outside)
        r = tfleet.tuner("provision", "--json")
        assert r.rc == 1, r.out + r.err
        for h in r.json()["hosts"]:
            assert h["status"] == "failed", h
            assert "/opt/tuner leads out of the host root" in h["message"], h
        assert list(outside.iterdir()) == []
    finally:
        for root in tfleet.roots.values():
            (root / "opt/tuner").unlink(missing_ok=True)
        for root in made:
            (root / "opt/tuner.moved").rename(root / "opt/tuner")


@pytest.mark.fleet
def test_event_storm_from_tuner_sim_event(tfleet: Fleet) -> None:
    """`tuner sim event --count` on a lab node with the agent running: a few passes."""
    import signal
    import subprocess
    import sys

    r = tfleet.tuner("apply", "-p", "inference", "--layer", "os", "--limit", "node02")
    assert r.rc == 0, r.out + r.err
    root = tfleet.roots["node02"]
    p = subprocess.Popen(
        [sys.executable, "-m", "agent.nodeagent", "run", "--root", str(root), "--events", "sim"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert p.stdout is not None and "start:" in p.stdout.readline()
        assert "watching sim events" in p.stdout.readline()
        start = time.monotonic()
        r = tfleet.tuner("sim", "event", "node02", "cpu-online", "5", "--count", "300", "--json")
        storm = time.monotonic() - start
        assert r.rc == 0 and r.json()["count"] == 300, r.err
        time.sleep(4)  # the last settle re-check is 3 s after the last pass
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
    result = json.loads((root / "var/lib/tuner/agent.json").read_text())
    passes = result["pass"] - 1
    bound = 2 * (int(storm / nodeagent.MIN_INTERVAL) + 1) + len(nodeagent.SETTLE)
    print(f"300 uevents over {storm:.1f} s (with the CLI's start) -> {passes} passes")
    assert result["conformant"] is True, result
    assert 1 <= passes <= bound < 300, (passes, bound, out)
    gov = root / "sys/devices/system/cpu/cpu5/cpufreq/scaling_governor"
    assert gov.read_text().strip() == "performance"
