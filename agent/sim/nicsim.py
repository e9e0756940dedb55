"""Simulated scale-out NICs: the /sys, /proc and configfs files of 8 RDMA NIC ports per node.

One port per GPU (``rdma0``..``rdma7``, on the NUMA node the GPU simulation gives each port,
agent/sim/gpu/state.py ``write_nics``), each a PCI function of the fleet's NIC model with:

* ``/sys/bus/pci/devices/<bdf>/``: vendor, device, subsystem ids, class, numa_node,
  local_cpulist, ``config`` (4096 bytes: a type 0 header with a capability list holding the
  power-management and PCI Express capabilities; Device Control as ``lspci -vv`` commonly
  shows it after boot), ``msi_irqs/<n>``, ``driver`` (a link to the model's driver),
  ``infiniband/<ibdev>``, ``net/<if>/`` (mtu, operstate, ``device`` -> the function);
* ``/sys/class/net/<if>`` -> the function's ``net/<if>`` (a link, as in Linux);
* ``/proc/irq/<n>/smp_affinity_list`` and ``node`` for every vector;
* ``/sys/kernel/config/rdma_cm/`` (configfs mounted, rdma_cm loaded; no group yet);
* ``/usr/sbin/ethtool``: the simulator's ethtool (agent/sim/ethtoolsim.py) over the ring
  state in ``/var/lib/tuner-sim/nic/<if>.rings``; ``/usr/sbin/dcb``: the simulator's
  iproute2 dcb (agent/sim/dcbsim.py) over ``<if>.pfc`` (drivers with DCB only).

`boot` puts every runtime value back to what the driver sets when it loads (a reboot):
MTU 1500, every IRQ on every CPU, the driver's default ring sizes, PFC off, Device Control
as after enumeration, no rdma_cm group. Sources for every value: docs/sim-nic.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from agent.sim import dcbsim, ethtoolsim
from agent.sim.nodelog import write_aer_files

# model -> PCI ids, driver, RDMA device name, ring sizes (current at load, pre-set maximum)
MODELS: dict[str, dict[str, Any]] = {
    "pollara-400": {
        "vendor": 0x1DD8,
        "device": 0x1002,
        "subsystem_vendor": 0x1DD8,
        "subsystem_device": 0x5201,
        "driver": "ionic",
        "dcb": False,  # no dcbnl_ops in ionic: Pollara's QoS is set with nicctl
        "ibdev": "ionic_{i}",
        "rings": {"rx": 4096, "tx": 4096, "rx_max": 16384, "tx_max": 8192},
    },
    "thor2": {
        "vendor": 0x14E4,
        "device": 0x1760,
        "subsystem_vendor": 0x14E4,
        "subsystem_device": 0x2100,
        "driver": "bnxt_en",
        "dcb": True,
        "ibdev": "bnxt_re{i}",
        "rings": {"rx": 511, "tx": 511, "rx_max": 2047, "tx_max": 2047},
    },
    "connectx-7": {
        "vendor": 0x15B3,
        "device": 0x1021,
        "subsystem_vendor": 0x15B3,
        "subsystem_device": 0x0041,
        "driver": "mlx5_core",
        "dcb": True,
        "ibdev": "mlx5_{i}",
        "rings": {"rx": 1024, "tx": 1024, "rx_max": 8192, "tx_max": 8192},
    },
}
NIC_BUSES = (0x08, 0x18, 0x68, 0x78, 0x88, 0x98, 0xE8, 0xF8)  # beside the GPUs' 0x05, 0x15...
IRQS_PER_PORT = 16
IRQ_BASE = 200
MTU = 1500
# Device Control after enumeration: errors reported (non-fatal, fatal, unsupported request),
# relaxed ordering on, max payload 256, extended tags, no snoop, max read request 512.
DEVCTL_BOOT = 0x293E
PCIE_CAP = 0x60
DESC = "var/lib/tuner-sim/nic.json"


def _w(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text if text.endswith("\n") else text + "\n")


def _link(p: Path, target: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)
    p.symlink_to(target)


def config_space(m: dict[str, Any], devctl: int = DEVCTL_BOOT) -> bytes:
    """A 4096-byte config space: header type 0, class 0x020000 (Ethernet), status with the
    capability list, PM capability at 0x40 -> PCI Express capability at 0x60 (v2 endpoint)."""
    b = bytearray(4096)
    b[0:2] = m["vendor"].to_bytes(2, "little")
    b[2:4] = m["device"].to_bytes(2, "little")
    b[0x04:0x06] = (0x0406).to_bytes(2, "little")  # memory space, bus master, INTx off
    b[0x06:0x08] = (0x0010).to_bytes(2, "little")  # capabilities list
    b[0x08] = 0x01  # revision
    b[0x09:0x0C] = bytes((0x00, 0x00, 0x02))  # prog-if, subclass 0 (Ethernet), class 2
    b[0x2C:0x2E] = m["subsystem_vendor"].to_bytes(2, "little")
    b[0x2E:0x30] = m["subsystem_device"].to_bytes(2, "little")
    b[0x34] = 0x40
    b[0x40:0x42] = bytes((0x01, PCIE_CAP))  # power management, next: PCI Express
    b[0x42:0x44] = (0x0003).to_bytes(2, "little")
    c = PCIE_CAP
    b[c : c + 2] = bytes((0x10, 0x00))  # PCI Express, last capability
    b[c + 2 : c + 4] = (0x0002).to_bytes(2, "little")  # version 2, endpoint
    b[c + 4 : c + 8] = (0x00008FC2).to_bytes(4, "little")  # DevCap: MPS 512, ext tags, FLR
    b[c + 8 : c + 10] = devctl.to_bytes(2, "little")
    b[c + 0x0C : c + 0x10] = (0x00400D05).to_bytes(4, "little")  # LnkCap: 32 GT/s x16
    b[c + 0x12 : c + 0x14] = (0x1105).to_bytes(2, "little")  # LnkSta: 32 GT/s x16
    return bytes(b)


def _ports(root: Path) -> list[tuple[str, int]]:
    """The ports the GPU simulation gave this node (name, NUMA node), else rdma0-7 on 0/1."""
    out = []
    base = root / "sys/class/net"
    for d in sorted(base.glob("*/device/numa_node")) if base.is_dir() else []:
        try:
            out.append((d.parent.parent.name, int(d.read_text().strip())))
        except ValueError:
            continue
    return out or [(f"rdma{i}", 0 if i < 4 else 1) for i in range(8)]


def install(root: Path, model: str) -> dict[str, Any]:
    """Lay the NIC trees of `model` out under a node root, then boot them."""
    if model not in MODELS:
        raise ValueError(f"unknown NIC model {model!r} (known: {', '.join(MODELS)})")
    m = MODELS[model]
    root = Path(root)
    pci = root / "sys/bus/pci/devices"
    (root / "sys/bus/pci/drivers" / m["driver"]).mkdir(parents=True, exist_ok=True)
    (root / "sys/kernel/config/rdma_cm").mkdir(parents=True, exist_ok=True)
    ports = []
    for i, (name, numa) in enumerate(_ports(root)):
        bdf = f"0000:{NIC_BUSES[i % len(NIC_BUSES)] + i // len(NIC_BUSES):02x}:00.0"
        d = pci / bdf
        d.mkdir(parents=True, exist_ok=True)
        cpus = root / f"sys/devices/system/node/node{numa}/cpulist"
        for f, v in (
            ("vendor", f"{m['vendor']:#06x}"),
            ("device", f"{m['device']:#06x}"),
            ("subsystem_vendor", f"{m['subsystem_vendor']:#06x}"),
            ("subsystem_device", f"{m['subsystem_device']:#06x}"),
            ("class", "0x020000"),
            ("numa_node", str(numa)),
            ("local_cpulist", cpus.read_text().strip() if cpus.is_file() else ""),
        ):
            _w(d / f, v)
        write_aer_files(d)  # AER counters since boot, none yet (agent/sim/nodelog.py)
        _link(d / "driver", f"../../drivers/{m['driver']}")
        ib = m["ibdev"].format(i=i)
        (d / "infiniband" / ib).mkdir(parents=True, exist_ok=True)
        irqs = [IRQ_BASE + i * IRQS_PER_PORT + k for k in range(IRQS_PER_PORT)]
        msi = d / "msi_irqs"
        if msi.is_dir():
            shutil.rmtree(msi)
        for n in irqs:
            _w(msi / str(n), "msix")
            _w(root / f"proc/irq/{n}/node", str(numa))
        nd = d / "net" / name
        _w(nd / "operstate", "up")
        _link(nd / "device", f"../../../{bdf}")
        _link(root / "sys/class/net" / name, f"../../bus/pci/devices/{bdf}/net/{name}")
        ports.append({"if": name, "bdf": bdf, "numa_node": numa, "ibdev": ib, "irqs": irqs})
    tool = root / "usr/sbin/ethtool"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text(Path(ethtoolsim.__file__).read_text())
    tool.chmod(0o755)
    dcb = root / "usr/sbin/dcb"
    dcb.write_text(Path(dcbsim.__file__).read_text())
    dcb.chmod(0o755)
    desc = {"model": model, "ports": ports}
    _w(root / DESC, json.dumps(desc, indent=1, sort_keys=True))
    boot(root)
    return desc


def boot(root: Path) -> None:
    """The NICs' runtime values as the drivers set them at load (a reboot). No NIC: nothing."""
    root = Path(root)
    p = root / DESC
    if not p.is_file():
        return
    desc = json.loads(p.read_text())
    m = MODELS[desc["model"]]
    online = root / "sys/devices/system/cpu/online"
    all_cpus = online.read_text().strip() if online.is_file() else "0"
    cm = root / "sys/kernel/config/rdma_cm"
    for g in list(cm.iterdir()) if cm.is_dir() else []:
        shutil.rmtree(g)  # configfs is empty after a boot
    for port in desc["ports"]:
        d = root / "sys/bus/pci/devices" / port["bdf"]
        (d / "config").write_bytes(config_space(m))
        _w(d / "net" / port["if"] / "mtu", str(MTU))
        for n in port["irqs"]:
            _w(root / f"proc/irq/{n}/smp_affinity_list", all_cpus)
        r = m["rings"]
        state = root / "var/lib/tuner-sim/nic"
        _w(state / (port["if"] + ".rings"), json.dumps(dict(r), sort_keys=True))
        if m["dcb"]:  # PFC off on every priority until configured (IEEE 802.1Qbb)
            _w(
                state / (port["if"] + ".pfc"),
                json.dumps({"delay": 0, "prio_pfc": [False] * 8}, sort_keys=True),
            )
