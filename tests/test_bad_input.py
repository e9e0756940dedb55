"""Bad input: exit 2, one clear message naming the file and the field, no traceback, and no
host touched (every node tree byte-identical, tuner's own folder included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA, Fleet, run_tuner, tree_hash

BAD = DATA / "profiles"

# (profile file, words the message must contain)
CASES = [
    ("not-yaml.yml", ["not-yaml.yml", "not valid YAML", "line"]),
    ("unknown-key.yml", ["unknown-key.yml", "os.thp.enabeld", "unknown key"]),
    ("wrong-type.yml", ["wrong-type.yml", "os.persist", "bool"]),
    ("governor-turbo.yml", ["governor-turbo.yml", "os.cpu.governor", "performance", "turbo"]),
    (
        "thp-sometimes.yml",
        ["thp-sometimes.yml", "os.thp.enabled", "'always', 'madvise' or 'never'"],
    ),
    ("cycle-a.yml", ["include cycle", "cycle-a.yml -> cycle-b.yml -> cycle-a.yml", "include"]),
    ("missing-include.yml", ["missing-include.yml", "include", "no-such-profile", "not found"]),
    ("sysctl-path.yml", ["sysctl-path.yml", "os.sysctl", "../../etc/shadow", "dotted"]),
    ("sysctl-range.yml", ["sysctl-range.yml", "kernel.randomize_va_space", "0 to 2"]),
    ("sysctl-newline.yml", ["sysctl-newline.yml", "os.sysctl", "not allowed"]),
    ("bios-nps.yml", ["bios-nps.yml", "bios.nps", "1, 2 or 4"]),
]


def assert_clean_exit(r, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert r.rc == 2, (r.rc, r.out, r.err)
    assert "Traceback" not in r.err + r.out
    for w in words:
        assert w in r.err, (w, r.err)


@pytest.fixture(scope="module")
def untouched(shared_fleet: Fleet) -> dict[str, dict[str, str]]:
    return {n: tree_hash(root, skip=()) for n, root in shared_fleet.roots.items()}


@pytest.mark.fleet
@pytest.mark.parametrize("cmd", ["apply", "verify"])
@pytest.mark.parametrize(("name", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_profile(
    shared_fleet: Fleet, untouched: dict, cmd: str, name: str, words: list[str]
) -> None:
    r = shared_fleet.tuner(cmd, "--profile", str(BAD / name))
    assert_clean_exit(r, words)


@pytest.mark.fleet
def test_bad_profile_json(shared_fleet: Fleet) -> None:
    r = shared_fleet.tuner("apply", "-p", str(BAD / "governor-turbo.yml"), "--json")
    assert r.rc == 2
    doc = r.json()
    assert doc["field"] == "os.cpu.governor" and doc["file"].endswith("governor-turbo.yml")


@pytest.mark.fleet
def test_unknown_profile(shared_fleet: Fleet) -> None:
    assert_clean_exit(
        shared_fleet.tuner("apply", "-p", "no-such"), ["unknown profile", "inference"]
    )
    assert_clean_exit(shared_fleet.tuner("apply", "-p", "/nope/x.yml"), ["not found"])
    assert_clean_exit(shared_fleet.tuner("profiles", "show", "../etc"), ["profile"])


@pytest.mark.fleet
def test_unknown_inventory(shared_fleet: Fleet) -> None:
    r = shared_fleet.tuner("apply", "-p", "inference", "-i", "/nonexistent/inv.yml")
    assert_clean_exit(r, ["/nonexistent/inv.yml", "not found", "--inventory"])


@pytest.mark.fleet
@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("all:\n  hosts:\n    n1: {tuner_root: /tmp/../etc}\n", ["tuner_root", "n1", ".."]),
        ("all:\n  hosts:\n    n1: {tuner_root: relative/path}\n", ["tuner_root", "absolute"]),
        ("all:\n  hosts:\n    n1: {ansible_host: 'a;rm -rf /'}\n", ["ansible_host", "n1"]),
        ("all:\n  hosts:\n    n1: {tuner_sim: maybe}\n", ["tuner_sim", "true or false"]),
        ("all: [unclosed\n", ["not a usable Ansible inventory"]),
    ],
    ids=["root-dotdot", "root-relative", "host-injection", "sim-flag", "broken-yaml"],
)
def test_bad_inventory(
    shared_fleet: Fleet, untouched: dict, tmp_path: Path, content: str, words: list[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(content)
    r = shared_fleet.tuner("apply", "-p", "inference", "-i", str(inv))
    assert_clean_exit(r, [str(inv), *words])


@pytest.mark.fleet
def test_limit_matching_nothing(shared_fleet: Fleet) -> None:
    r = shared_fleet.tuner("apply", "-p", "inference", "--limit", "nosuchgroup")
    assert_clean_exit(r, ["matches no host", "nosuchgroup"])


def test_bad_flags(tmp_path: Path) -> None:
    r = run_tuner("sim", "up", "--nodes", "0", state=tmp_path)
    assert r.rc == 2 and "Traceback" not in r.err
    r = run_tuner("apply", state=tmp_path)  # --profile is required
    assert r.rc == 2 and "--profile" in r.err
    r = run_tuner("sim", "up", "--connection", "telnet", state=tmp_path)
    assert r.rc == 2 and "--connection" in r.err


def test_no_inventory_at_all(tmp_path: Path) -> None:
    r = run_tuner("verify", "-p", "inference", state=tmp_path / "empty")
    assert_clean_exit(r, ["no inventory", "tuner sim up"])


@pytest.mark.fleet
def test_zz_no_host_was_touched(shared_fleet: Fleet, untouched: dict) -> None:
    """Runs last in this module: after every bad-input case above, every node tree is
    byte-identical to before (tuner's own folder included)."""
    for n, root in shared_fleet.roots.items():
        assert tree_hash(root, skip=()) == untouched[n]
