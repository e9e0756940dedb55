"""The nic layer: pure tests of the host side on simulated node trees, and apply -> verify ->
rollback byte for byte on the lab fleet (real CLI, Ansible, sshd)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Fleet, make_fleet

from agent import nic
from agent.errors import BadInput
from agent.knobs import Host
from agent.sim import nicsim
from agent.sim.nodetree import Topology, build_node, reboot

ALL = {
    "mtu": 9000,
    "rings": {"rx": "max", "tx": "max"},
    "irq_affinity": "numa",
    "max_read_request": 4096,
    "relaxed_ordering": True,
    "roce_tos": 104,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nic") / "root"
    build_node(root, "n1", Topology(cores_per_socket=8))
    return root


def _node(built: Path, tmp_path: Path, model: str) -> Path:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(built, root, symlinks=True)
    nicsim.install(root, model)
    return root


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the tree, tuner's own record left out (binary config spaces too)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and "var/lib/tuner/" not in f"{p}/"
    }


def test_apply_verify_rollback_byte_exact(built: Path, tmp_path: Path) -> None:
    model = "thor2"  # the others: test_plan_each_model (each ethtool run is a process)
    root = _node(built, tmp_path, model)
    host = Host(root=str(root), sim_kernel=True)
    before = _files(root)
    s = {
        "model": model,
        **ALL,
        "pfc_priority": 3,
        "interfaces": ["rdma0", "rdma5", "rdma6", "rdma2"],
    }

    plan = nic.apply(host, s, sim=True, check=True)
    assert plan["status"] == "would change"
    assert _files(root) == before and not (root / "var/lib/tuner").exists()  # no trace

    r = nic.apply(host, s, sim=True, check=False)
    assert r["status"] == "changed", r["message"]
    by_id = {x["id"]: x for x in r["settings"]}
    assert len(by_id) == 7 * 4  # seven settings on each of the 4 ports named
    assert by_id["nic.rdma6.pfc_priority"]["before"] == "on: none"
    assert by_id["nic.rdma6.pfc_priority"]["after"] == "on: 3"
    assert by_id["nic.rdma0.mtu"]["before"] == "1500" and by_id["nic.rdma0.mtu"]["after"] == "9000"
    top = nicsim.MODELS[model]["rings"]
    assert by_id["nic.rdma5.rings"]["after"] == f"rx {top['rx_max']} tx {top['tx_max']}"
    assert by_id["nic.rdma0.max_read_request"]["before"] == "512"
    assert by_id["nic.rdma0.relaxed_ordering"]["status"] == "unchanged"  # on after boot
    # the files Linux shows the values in
    assert (root / "sys/class/net/rdma2/mtu").read_text() == "9000\n"
    assert (root / "sys/class/net/rdma3/mtu").read_text() == "1500\n"  # not named
    cpus = (root / "sys/devices/system/node/node1/cpulist").read_text()
    irq = nicsim.IRQ_BASE + 6 * nicsim.IRQS_PER_PORT  # rdma6 sits on node 1
    assert (root / f"proc/irq/{irq}/smp_affinity_list").read_text() == cpus
    _, _, devctl = nic.read_devctl(host, "0000:08:00.0")
    assert (devctl >> 12) & 7 == 5 and devctl & ~0x7000 == nicsim.DEVCTL_BOOT & ~0x7000
    ib = nicsim.MODELS[model]["ibdev"].format(i=0)
    tos = root / f"sys/kernel/config/rdma_cm/{ib}/ports/1/default_roce_tos"
    assert tos.read_text() == "104\n"

    assert nic.verify(host, s, sim=True)["status"] == "ok"
    assert nic.apply(host, s, sim=True, check=False)["status"] == "unchanged"

    (root / "sys/class/net/rdma2/mtu").write_text("1500\n")  # someone changed it
    v = nic.verify(host, s, sim=True)
    assert v["status"] == "drift"
    assert [x["id"] for x in v["settings"] if x["status"] == "drift"] == ["nic.rdma2.mtu"]

    rb = nic.rollback(host, sim=True, check=True)
    assert rb["status"] == "would restore"
    rb = nic.rollback(host, sim=True, check=False)
    assert rb["status"] == "restored", rb
    assert _files(root) == before  # byte for byte, the config spaces included
    assert not (root / f"sys/kernel/config/rdma_cm/{ib}").exists()  # tuner's group is gone
    assert list((root / "var/lib/tuner/history").glob("nic-rolled-back-*.json"))
    assert nic.rollback(host, sim=True, check=False)["status"] == "nothing to do"


@pytest.mark.parametrize("model", ["pollara-400", "connectx-7"])
def test_plan_each_model(built: Path, tmp_path: Path, model: str) -> None:
    root = _node(built, tmp_path, model)
    s = {"model": model, **ALL}
    if model == "connectx-7":
        s["pfc_priority"] = 3  # mlx5 has the kernel's DCB interface, ionic does not
    plan = nic.apply(Host(root=str(root), sim_kernel=True), s, True, True)
    rows = {x["id"]: x for x in plan["settings"]}
    top = nicsim.MODELS[model]["rings"]
    assert rows["nic.rdma1.rings"]["before"] == f"rx {top['rx']} tx {top['tx']}"
    assert rows["nic.rdma1.rings"]["after"] == f"rx {top['rx_max']} tx {top['tx_max']}"
    assert {x["status"] for x in plan["settings"]} == {"would change", "unchanged"}


def test_node_without_the_model_is_bad_input(built: Path, tmp_path: Path) -> None:
    root = _node(built, tmp_path, "pollara-400")
    host = Host(root=str(root), sim_kernel=True)
    before = _files(root)
    for r in (
        nic.apply(host, {"model": "connectx-7", "mtu": 9000}, sim=True, check=False),
        nic.verify(host, {"model": "connectx-7", "mtu": 9000}, sim=True),
    ):
        assert r["status"] == "failed" and r["bad_input"] is True
        assert "no connectx-7 NIC" in r["message"] and "it has: pollara-400" in r["message"]
    r = nic.apply(host, {"model": "pollara-400", "interfaces": ["eth9"], "mtu": 9000}, True, False)
    assert r["bad_input"] and "eth9" in r["message"]
    r = nic.apply(host, {"model": "pollara-400", "pfc_priority": 3}, True, False)
    assert r["bad_input"] and "nicctl" in r["message"]
    assert _files(root) == before


def test_facts_find_ports_by_pci_ids(built: Path, tmp_path: Path) -> None:
    root = _node(built, tmp_path, "thor2")
    f = nic.facts(Host(root=str(root)))
    assert f["models"] == ["thor2"]
    p0 = f["ports"][0]
    assert p0 == {
        "if": "rdma0",
        "bdf": "0000:08:00.0",
        "vendor": "0x14e4",
        "device": "0x1760",
        "model": "thor2",
        "numa_node": 0,
        "ibdev": "bnxt_re0",
    }
    # current kernels: the RDMA device sits on an auxiliary device of the function
    import shutil

    d = root / "sys/bus/pci/devices/0000:08:00.0"
    shutil.rmtree(d / "infiniband")
    (d / "bnxt_en.rdma.0").mkdir()
    ib = root / "sys/class/infiniband/bnxt_re0"
    ib.mkdir(parents=True)
    (ib / "device").symlink_to("../../../bus/pci/devices/0000:08:00.0/bnxt_en.rdma.0")
    assert nic.ports(Host(root=str(root)))[0]["ibdev"] == "bnxt_re0"
    # the GPU collector still reads each port's NUMA node through the new links
    nodes = sorted((root / "sys/class/net").glob("*/device/numa_node"))
    assert [n.read_text() for n in nodes] == ["0\n"] * 4 + ["1\n"] * 4


def test_reboot_brings_driver_defaults_back(built: Path, tmp_path: Path) -> None:
    root = _node(built, tmp_path, "connectx-7")
    host = Host(root=str(root), sim_kernel=True)
    before = _files(root)
    s = {"model": "connectx-7", **ALL, "rings": None}  # rings: the ethtool runs cost time
    assert nic.apply(host, s, True, False)["status"] == "changed"
    reboot(root)
    assert _files(root) == before  # runtime values: a reboot loses them (docs/profiles.md)
    assert nic.verify(host, s, True)["status"] == "drift"


@pytest.mark.parametrize(
    ("bad", "word"),
    [
        ({"model": "e810"}, "model must be one of"),
        ({"model": "thor2", "mtu": 70000}, "mtu"),
        ({"model": "thor2", "rings": {"rx": "huge"}}, "rings.rx"),
        ({"model": "thor2", "max_read_request": 3000}, "max_read_request"),
        ({"model": "thor2", "irq_affinity": "all"}, "irq_affinity"),
        ({"model": "thor2", "interfaces": ["a b"]}, "interfaces"),
        ({"model": "thor2", "extra": 1}, "unknown nic setting"),
    ],
)
def test_module_checks_its_input(bad: dict, word: str) -> None:
    assert word in nic.check_settings(bad)


def test_devctl_bits_and_ethtool_output() -> None:
    cfg = nicsim.config_space(nicsim.MODELS["connectx-7"])
    assert nic._pcie_cap(cfg) == nicsim.PCIE_CAP
    assert nic.MRRS[(nicsim.DEVCTL_BOOT >> 12) & 7] == 512 and nicsim.DEVCTL_BOOT & 0x10
    # ethtool 4.x output as fasterdata.es.net shows it (Intel 10GE, "NIC Tuning")
    out = (
        "Ring parameters for eth2:\nPre-set maximums:\nRX:         4096\nRX Mini:    0\n"
        "RX Jumbo:    0\nTX:         4096\nCurrent hardware settings:\nRX:        256\n"
        "RX Mini:     0\nRX Jumbo:    0\nTX:        256\n"
    )
    assert nic.parse_rings(out) == {
        "max": {"rx": 4096, "tx": 4096},
        "current": {"rx": 256, "tx": 256},
    }
    assert nic.cpus_of("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}


def test_profile_nic_section(tmp_path: Path) -> None:
    from agent.layers.nic import nic_settings
    from agent.profiles import load_profile

    p = load_profile("nic-connectx-7")
    assert nic_settings(p.section("nic"))["roce_tos"] == 26 << 2
    assert "nic" in p.set_sections() and "nic" not in load_profile("inference").set_sections()
    assert nic_settings(load_profile("inference").section("nic")) == {}
    f = tmp_path / "p.yml"
    f.write_text("name: p\nnic:\n  mtu: 9000\n")
    with pytest.raises(BadInput) as e:
        load_profile(str(f))
    assert "model is required" in str(e.value) and e.value.file == str(f)
    f.write_text("name: p\nnic:\n  model: pollara-400\n  roce: {pfc_priority: 3}\n")
    with pytest.raises(BadInput) as e:
        load_profile(str(f))
    assert "nicctl" in str(e.value)
    f.write_text("name: p\nnic:\n  model: thor2\n  roce: {dscp: 64}\n")
    with pytest.raises(BadInput) as e:
        load_profile(str(f))
    assert "nic.roce.dscp" in str(e.value.field)


# --------------------------------------------------------------------------- the lab


@pytest.fixture(scope="module")
def cx7_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    state = tmp_path_factory.mktemp("nicfleet") / "state"
    yield from make_fleet(state, 2, 8, "--nic-model", "connectx-7")


@pytest.mark.fleet
def test_lab_apply_verify_rollback_byte_exact(cx7_fleet: Fleet) -> None:
    fleet = cx7_fleet
    before = fleet.hashes()

    # a profile for a NIC model the nodes lack: exit 2 naming it, nothing touched
    r = fleet.tuner("apply", "--profile", "nic-thor2", "--layer", "nic", "--json")
    assert r.rc == 2, r.out + r.err
    err = json.loads(r.out)["error"]
    assert "no thor2 NIC" in err and "it has: connectx-7" in err and "node01" in err
    assert fleet.hashes() == before

    r = fleet.tuner("apply", "--profile", "nic-connectx-7", "--layer", "nic", "--json")
    assert r.rc == 0, r.out + r.err
    rep = r.json()
    assert rep["layers"] == ["nic"] and rep["summary"]["by_status"] == {"changed": 2}
    h = rep["hosts"][0]
    part = h["layers"]["nic"]
    assert list(h["layers"]) == ["nic"] and part["status"] == "changed"
    assert part["detail"]["model"] == "connectx-7"
    rows = {s["id"]: s for s in part["detail"]["settings"]}
    assert rows["nic.rdma7.rings"]["after"] == "rx 8192 tx 8192"
    assert rows["nic.rdma2.pfc_priority"]["after"] == "on: 3"  # through the node's dcb
    assert (fleet.roots["node02"] / "sys/class/net/rdma1/mtu").read_text() == "9000\n"

    v = fleet.tuner("verify", "--profile", "nic-connectx-7", "--layer", "nic", "--json")
    assert v.rc == 0, v.out
    assert all(h["layers"]["nic"]["detail"]["status"] == "ok" for h in v.json()["hosts"])

    rb = fleet.tuner("rollback", "--layer", "nic", "--json")
    assert rb.rc == 0, rb.out + rb.err
    assert {h["layers"]["nic"]["status"] for h in rb.json()["hosts"]} == {"restored"}
    assert fleet.hashes() == before  # every file of every node, byte for byte
