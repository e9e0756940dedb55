"""The kernel command-line layer: pure parsing/merging with data, then real Ansible on one
simulated fleet (apply -> pending -> sim reboot -> ok -> rollback -> reboot -> original)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Fleet, make_fleet, tree_hash

from agent import bootloader as b
from agent.errors import BadInput
from agent.knobs import Host
from agent.profiles import load_profile
from agent.sim import grubsim, nodetree

AMD = ["pci=realloc=off", "pci=bfsort", "iommu=pt", "numa_balancing=disable"]

# ----------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "token,ok",
    [
        ("iommu=pt", True),
        ("pci=realloc=off", True),
        ("quiet", True),
        ("isolcpus=1-15,17-31", True),
        ("console=ttyS0,115200n8", True),
        ("ivrs_ioapic[32]=00:14.0", True),
        ("a b", False),
        ('x="y"', False),
        ("x=$(reboot)", False),
        ("x=`id`", False),
        ("x;y", False),
        ("=v", False),
        ("", False),
    ],
)
def test_token_syntax(token: str, ok: bool) -> None:
    assert (b.check_tokens([token], []) == "") is ok


def test_whole_tokens_and_remove_semantics() -> None:
    cur = ["BOOT_IMAGE=/boot/vmlinuz", "ro", "quiet", "iommu=on", "pci=nocrs"]
    # two pci= tokens are two parameters; removing bare `iommu` keeps the added iommu=pt
    got = b.wanted_tokens(cur, ["pci=realloc=off", "pci=bfsort", "iommu=pt"], ["iommu", "quiet"])
    assert got == ["BOOT_IMAGE=/boot/vmlinuz", "ro", "pci=nocrs", "pci=realloc=off", "pci=bfsort",
                   "iommu=pt"]
    ok, off = b.booted_status(cur, ["iommu=pt"], ["pci=nocrs"])
    assert not ok and off == ["+iommu=pt", "-pci=nocrs"]
    assert b.booted_status(got, ["pci=bfsort"], ["quiet"]) == (True, [])
    assert b.check_tokens(["quiet"], ["quiet"]) == "added and removed: quiet"


def test_dropin_appends_and_recomputes_removed() -> None:
    base = b.parse_assignments(nodetree.DEFAULT_GRUB, "/etc/default/grub")
    assert base == {"GRUB_CMDLINE_LINUX_DEFAULT": "quiet", "GRUB_CMDLINE_LINUX": ""}
    text = b.dropin_text(base, AMD, [])
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX ' + " ".join(AMD) + '"' in text
    assert "GRUB_CMDLINE_LINUX_DEFAULT" not in text
    text = b.dropin_text(base, ["iommu=pt"], ["quiet"])
    assert 'GRUB_CMDLINE_LINUX_DEFAULT=""' in text
    with pytest.raises(b.BootError, match="uses the shell"):
        b.parse_assignments('GRUB_CMDLINE_LINUX="$(cat /x)"\n', "/etc/default/grub")


def test_sim_update_grub_and_boot(tmp_path: Path) -> None:
    """The simulator's update-grub sources grub.d drop-ins after /etc/default/grub, and a
    boot takes /proc/cmdline from the default entry's linux line."""
    root = tmp_path / "n"
    nodetree.build_node(root, "n", nodetree.Topology(cores_per_socket=2))
    before = (root / "proc/cmdline").read_text().split()
    assert before[0] == "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64" and before[-2:] == ["ro", "quiet"]
    (root / "etc/default/grub.d").mkdir()
    (root / "etc/default/grub.d/90-tuner.cfg").write_text(
        'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX iommu=pt"\n'
    )
    assert grubsim.main(["update-grub", str(root)]) == 0
    assert (root / "proc/cmdline").read_text().split() == before  # not booted yet
    nodetree.reboot(root)
    assert (root / "proc/cmdline").read_text().split()[-3:] == ["ro", "iommu=pt", "quiet"]


def test_module_refuses_a_tool_that_is_not_the_simulators(tmp_path: Path) -> None:
    root = tmp_path / "n"
    nodetree.build_node(root, "n", nodetree.Topology(cores_per_socket=2))
    (root / "usr/sbin/update-grub").write_text("#!/bin/sh\nexec /usr/sbin/update-grub\n")
    with pytest.raises(b.BootError, match="not the simulator's script"):
        b.detect(Host(str(root), sim_kernel=True), True)


def _profile(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "p.yml"
    p.write_text("name: p\n" + body)
    return p


@pytest.mark.parametrize(
    "body,words",
    [
        ("kernel:\n  cmdline:\n    add: ['iommu=pt; reboot']\n", "kernel.cmdline.add"),
        ("kernel:\n  cmdline:\n    add: [quiet]\n    remove: [quiet]\n", "both added and removed"),
        ("kernel:\n  cmdline:\n    add: ['a=\"b\"']\n", "kernel.cmdline.add"),
        ("kernel:\n  cmdline:\n    append: [x]\n", "append"),
    ],
)
def test_profile_bad_cmdline_is_bad_input(tmp_path: Path, body: str, words: str) -> None:
    p = _profile(tmp_path, body)
    with pytest.raises(BadInput) as e:
        load_profile(str(p))
    text = str(e.value) + str(getattr(e.value, "field", ""))
    assert words in text and str(p) in str(getattr(e.value, "file", "")) + str(e.value)


def test_profile_include_merges_cmdline(tmp_path: Path) -> None:
    p = _profile(tmp_path, "include: [inference]\nkernel:\n  cmdline:\n    remove: [quiet]\n")
    prof = load_profile(str(p))
    assert prof.cmdline() == {"add": AMD, "remove": ["quiet"]}
    assert prof.sources["kernel.cmdline.remove"] == str(p)
    assert prof.sources["kernel.cmdline.add"].endswith("inference.yml")


# ----------------------------------------------------------------------------- fleet


@pytest.fixture(scope="module")
def cfleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path_factory.mktemp("cmdline") / "state", 2, 2)


def _hosts(r: object) -> dict[str, dict]:
    return {h["host"]: h for h in r.json()["hosts"]}  # type: ignore[attr-defined]


@pytest.mark.fleet
def test_bad_input_exits_2_and_touches_nothing(cfleet: Fleet, tmp_path: Path) -> None:
    before = {n: tree_hash(r, skip=()) for n, r in cfleet.roots.items()}
    for body in (
        "kernel:\n  cmdline:\n    add: ['iommu=`id`']\n",
        "kernel:\n  cmdline:\n    add: [iommu=pt]\n    remove: [iommu=pt]\n",
    ):
        p = _profile(tmp_path, body)
        r = cfleet.tuner("apply", "-p", str(p), "--layer", "cmdline", "--json")
        assert r.rc == 2, r.out + r.err
        assert str(p) in r.out + r.err and "kernel.cmdline" in r.out + r.err
    r = cfleet.tuner("apply", "-p", "inference", "--layer", "cmdline", "--check", "--json")
    assert r.rc == 0, r.out + r.err
    assert {h["status"] for h in r.json()["hosts"]} == {"would change"}
    assert {n: tree_hash(r, skip=()) for n, r in cfleet.roots.items()} == before


@pytest.mark.fleet
def test_apply_pending_reboot_ok_rollback_original(cfleet: Fleet) -> None:
    pristine = cfleet.hashes()
    original = {n: (r / "proc/cmdline").read_text() for n, r in cfleet.roots.items()}
    a = cfleet.tuner("apply", "-p", "inference", "--layer", "cmdline", "--json")
    assert a.rc == 0, a.out + a.err
    for h in _hosts(a).values():
        assert h["status"] == "changed" and h["cmdline"]["reboot"] == "needed"
        assert h["cmdline"]["tool"] == "update-grub (simulated)"
    root = cfleet.roots["node01"]
    cfg = (root / "boot/grub/grub.cfg").read_text()
    assert "pci=realloc=off pci=bfsort iommu=pt numa_balancing=disable" in cfg
    v = cfleet.tuner("verify", "-p", "inference", "--layer", "cmdline", "--json")
    assert v.rc == 1 and {h["status"] for h in v.json()["hosts"]} == {"pending"}
    assert cfleet.tuner("sim", "reboot", "node01").rc == 0
    v = cfleet.tuner("verify", "-p", "inference", "--layer", "cmdline", "--json")
    st = {n: h["status"] for n, h in _hosts(v).items()}
    assert v.rc == 1 and st == {"node01": "ok", "node02": "pending"}
    # --reboot if-needed reboots only the host still waiting (the simulator's OS reboot)
    a = cfleet.tuner(
        "apply", "-p", "inference", "--layer", "cmdline", "--reboot", "if-needed", "--json"
    )
    assert a.rc == 0, a.out + a.err
    c = {n: h["cmdline"] for n, h in _hosts(a).items()}
    assert c["node01"]["reboot"] == "not needed"
    assert c["node02"]["reboot"] == "done" and c["node02"]["rebooted_by"] == "simulator"
    assert "iommu=pt" in c["node02"]["booted"].split()
    v = cfleet.tuner("verify", "-p", "inference", "--layer", "cmdline")
    assert v.rc == 0, v.out
    # rollback: files back byte for byte, config regenerated, pending until the reboot
    rb = cfleet.tuner("rollback", "--layer", "cmdline", "--json")
    assert rb.rc == 0, rb.out + rb.err
    assert {h["status"] for h in rb.json()["hosts"]} == {"pending reboot"}
    now = cfleet.hashes()
    for n in now:
        assert {k: v for k, v in now[n].items() if k != "proc/cmdline"} == {
            k: v for k, v in pristine[n].items() if k != "proc/cmdline"
        }
    assert cfleet.tuner("sim", "reboot").rc == 0
    assert cfleet.hashes() == pristine
    assert {n: (r / "proc/cmdline").read_text() for n, r in cfleet.roots.items()} == original
    again = cfleet.tuner("rollback", "--layer", "cmdline", "--json")
    assert {h["status"] for h in again.json()["hosts"]} == {"nothing to do"}


@pytest.mark.fleet
def test_unwritable_boot_config_fails_that_host_nothing_half_written(cfleet: Fleet) -> None:
    root = cfleet.roots["node02"]
    cfg = root / "boot/grub/grub.cfg"
    saved = cfg.read_bytes()
    cfg.unlink()
    cfg.mkdir()  # grub.cfg cannot be replaced: the regeneration fails
    try:
        before = tree_hash(root)
        a = cfleet.tuner("apply", "-p", "inference", "--layer", "cmdline", "--json")
        assert a.rc == 1, a.out
        h = _hosts(a)
        assert h["node01"]["status"] == "changed"
        assert h["node02"]["status"] == "failed"
        assert "grub.cfg" in h["node02"]["message"] and "left as it was" in h["node02"]["message"]
        assert tree_hash(root) == before  # no drop-in, no folder, no temp file left
    finally:
        shutil.rmtree(cfg)
        cfg.write_bytes(saved)
    rb = cfleet.tuner("rollback", "--layer", "cmdline", "--reboot", "if-needed", "--json")
    assert rb.rc == 0, rb.out + rb.err
    assert _hosts(rb)["node01"]["status"] == "restored"
    assert _hosts(rb)["node01"]["cmdline"]["rebooted_by"] == "simulator"
