"""NIC knobs on one host (stdlib only): the scale-out NICs of an MI355X node.

Shipped to hosts as ``playbooks/module_utils/tuner_nic.py`` (a link to this file) next to the
``tuner_nic`` module; it builds on ``tuner_knobs`` (the host root, the lock). One
implementation serves apply, verify and rollback, as for the OS knobs:
observe -> plan -> save originals -> write -> re-read.

The NICs are found by their PCI vendor and device ids (``MODELS``) under
``/sys/class/net/<if>/device``. Per port of the profile's model:

* ``mtu``: ``/sys/class/net/<if>/mtu`` (a kernel attribute);
* ``irq_affinity: numa``: every MSI-X vector of the port's PCI function
  (``/sys/bus/pci/devices/<bdf>/msi_irqs/<n>``) pinned to the CPUs of the function's NUMA
  node (``numa_node`` -> ``/sys/devices/system/node/node<N>/cpulist``) through
  ``/proc/irq/<n>/smp_affinity_list``;
* ``max_read_request`` and ``relaxed_ordering``: the PCI Express Device Control register
  (capability 0x10, offset 8: bits 14:12 Max_Read_Request_Size, bit 4 Enable Relaxed
  Ordering) in the function's config space ``/sys/bus/pci/devices/<bdf>/config``, written
  in place (2 bytes) as ``setpci -s <bdf> CAP_EXP+8.w=...`` does through the same file;
* ``rings``: RX/TX descriptors, which only a tool sets: ``ethtool -g/-G <if>`` (argument
  lists, never a shell). ``max`` means the driver's pre-set maximum.
* ``pfc_priority``: priority flow control on that priority only (the RoCE traffic's), which
  only a tool sets: iproute2's ``dcb pfc show/set dev <if> prio-pfc ...`` (the kernel's DCB
  netlink interface; mlx5 and bnxt_en have it, ionic does not: Pollara's is set with nicctl);
* ``roce_tos``: the RDMA CM's default RoCE type of service (DSCP << 2) of the port's RDMA
  device, ``/sys/kernel/config/rdma_cm/<ibdev>/ports/1/default_roce_tos`` (configfs: the
  ``rdma_cm/<ibdev>`` group is made with mkdir when it is missing, and removed by rollback).

Originals are saved in ``/var/lib/tuner/nic.json`` before the first write (first value
wins); rollback writes them back byte for byte (files, config-space bytes) or through the
same tool (rings), and removes the configfs groups tuner made. In the simulator
(``sim``) the tool is the node tree's own ``/usr/sbin/ethtool`` (agent/sim/nicsim.py, a
marked stdlib script), never the machine's, and after a mkdir in configfs the files the
kernel would create are rendered (docs/sim-nic.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

try:  # on a host, as Ansible module_utils
    from ansible.module_utils.tuner_knobs import (  # type: ignore[import-not-found,unused-ignore]
        STATE_DIR,
        Host,
        KnobError,
        locked,
    )
    from ansible.module_utils.tuner_modargs import (  # type: ignore[import-not-found,unused-ignore]
        LOCK_TIMEOUT,
        Arg,
        Module,
    )
except ImportError:  # on the controller (tests, docs)
    from agent.knobs import STATE_DIR, Host, KnobError, locked
    from agent.modargs import LOCK_TIMEOUT, Arg, Module

LAYER = "nic"
RECORD = STATE_DIR + "/nic.json"
NET = "/sys/class/net"
PCI = "/sys/bus/pci/devices"
NODE = "/sys/devices/system/node"
RDMA_CM = "/sys/kernel/config/rdma_cm"
SIM_MARK = "tuner-sim-ethtool"  # the simulator's ethtool carries this line
ETHTOOL = ("/usr/sbin/ethtool", "/sbin/ethtool", "/usr/bin/ethtool")

# model -> PCI ids (lower-case hex as sysfs shows them) and the name people use
MODELS: dict[str, dict[str, str]] = {
    "pollara-400": {"vendor": "0x1dd8", "device": "0x1002", "name": "AMD Pensando Pollara 400"},
    "thor2": {"vendor": "0x14e4", "device": "0x1760", "name": "Broadcom BCM57608 (Thor 2)"},
    "connectx-7": {"vendor": "0x15b3", "device": "0x1021", "name": "NVIDIA ConnectX-7"},
}
MRRS = (128, 256, 512, 1024, 2048, 4096)  # Max_Read_Request_Size encodings 0..5
IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")
IBDEV = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KEYS = (
    "mtu",
    "rings",
    "irq_affinity",
    "max_read_request",
    "relaxed_ordering",
    "roce_tos",
    "pfc_priority",
)
DCB = ("/usr/sbin/dcb", "/sbin/dcb", "/usr/bin/dcb")
DCB_MARK = "tuner-sim-dcb"  # the simulator's dcb carries this line
NO_DCB = ("pollara-400",)  # ionic has no kernel DCB interface: its PFC is set with nicctl


Write = tuple[str, str, Any]  # (kind, target, value): a write, or an original to save


# tuner_nic's arguments, typed once (agent/modargs.py's way): the module's argument_spec, the
# layer's extra vars and the playbook's variables (playbooks/nic.yml) follow from it.
TUNER_NIC = Module(
    "tuner_nic",
    {
        "mode": Arg("str", required=True, choices=("facts", "apply", "verify", "rollback")),
        "root": Arg("path", "/", help="the host root (tuner_root)"),
        "sim": Arg("bool", False, help="a simulated node: only its own ethtool runs"),
        "settings": Arg("dict", {}, help="the profile's nic section (nic_settings)"),
        "lock_timeout": Arg("float", LOCK_TIMEOUT),
    },
)
PLAYBOOK_VARS = {"mode": "tuner_nic_mode", "settings": "tuner_nic"}  # tuner_nic -> nic.yml


class NicError(KnobError):
    """A NIC setting could not be read or written."""


# ---------------------------------------------------------------------------------------
# Input: the settings the controller sends (validated again here: the module is public).


def check_settings(s: dict[str, Any]) -> str:
    """What is wrong with a settings dict ('' when nothing)."""
    if not isinstance(s, dict):
        return "nic settings must be a mapping"
    if s.get("model") not in MODELS:
        return f"model must be one of {', '.join(MODELS)}, got {s.get('model')!r}"
    for k in s:
        if k not in (*KEYS, "model", "interfaces"):
            return f"unknown nic setting {k!r}"
    ifs = s.get("interfaces") or []
    if not isinstance(ifs, list) or not all(
        isinstance(i, str) and IFNAME.fullmatch(i) for i in ifs
    ):
        return "interfaces must be a list of interface names"
    mtu = s.get("mtu")
    if mtu is not None and (not _is_int(mtu) or not 68 <= mtu <= 65535):
        return f"mtu must be an integer from 68 to 65535, got {mtu!r}"
    rings = s.get("rings")
    if rings is not None:
        if not isinstance(rings, dict) or not set(rings) <= {"rx", "tx"} or not rings:
            return "rings must be a mapping with rx and/or tx"
        for k, v in rings.items():
            if v != "max" and (not _is_int(v) or not 1 <= v <= 1 << 20):
                return f"rings.{k} must be 'max' or a positive integer, got {v!r}"
    if s.get("irq_affinity") not in (None, "numa"):
        return f"irq_affinity must be 'numa', got {s.get('irq_affinity')!r}"
    mrrs = s.get("max_read_request")
    if mrrs is not None and mrrs not in MRRS:
        return f"max_read_request must be one of {', '.join(map(str, MRRS))}, got {mrrs!r}"
    ro = s.get("relaxed_ordering")
    if ro is not None and not isinstance(ro, bool):
        return f"relaxed_ordering must be true or false, got {ro!r}"
    pfc = s.get("pfc_priority")
    if pfc is not None:
        if not _is_int(pfc) or not 0 <= pfc <= 7:
            return f"pfc_priority must be an integer from 0 to 7, got {pfc!r}"
        if s["model"] in NO_DCB:
            return (
                f"pfc_priority: {s['model']} has no kernel DCB interface (its PFC is set "
                "with the vendor's nicctl, which tuner does not drive)"
            )
    tos = s.get("roce_tos")
    if tos is not None and (not _is_int(tos) or not 0 <= tos <= 255):
        return f"roce_tos must be an integer from 0 to 255, got {tos!r}"
    return ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------
# Discovery: the node's PCI network functions and what they are.


def _read(host: Host, p: str) -> str:
    return host.read(p).strip()


def ports(host: Host) -> list[dict[str, Any]]:
    """Every network interface backed by a PCI function -> {if, bdf, vendor, device, model,
    numa_node, ibdev} (model None: not one tuner knows)."""
    out = []
    for netdir in host.glob(NET + "/*"):
        name = os.path.basename(netdir)
        dev = f"{NET}/{name}/device"
        if not IFNAME.fullmatch(name) or not host.exists(dev + "/vendor"):
            continue  # lo, bridges, bonds: no PCI function
        bdf = os.path.basename(os.path.realpath(host.path(dev)))
        if not BDF.fullmatch(bdf):
            continue
        vendor, device = _read(host, dev + "/vendor").lower(), _read(host, dev + "/device").lower()
        model = next(
            (m for m, ids in MODELS.items() if ids["vendor"] == vendor and ids["device"] == device),
            None,
        )
        try:
            numa = int(_read(host, dev + "/numa_node"))
        except (KnobError, ValueError):
            numa = -1
        ib = [os.path.basename(p) for p in host.glob(dev + "/infiniband/*")] or _aux_ib(host, bdf)
        out.append(
            {
                "if": name,
                "bdf": bdf,
                "vendor": vendor,
                "device": device,
                "model": model,
                "numa_node": numa,
                "ibdev": ib[0] if ib and IBDEV.fullmatch(ib[0]) else None,
            }
        )
    return out


def _aux_ib(host: Host, bdf: str) -> list[str]:
    """RDMA devices on an auxiliary device of the PCI function (bnxt_re, ionic_rdma and
    mlx5_ib bind to `<bdf>/<driver>.rdma.<n>` on current kernels): the ones whose
    /sys/class/infiniband/<ib>/device is the function or a device under it."""
    out = []
    for ib in host.glob("/sys/class/infiniband/*"):
        try:
            real = os.path.realpath(host.path(ib + "/device"))
        except KnobError:
            continue
        if bdf in (os.path.basename(real), os.path.basename(os.path.dirname(real))):
            out.append(os.path.basename(ib))
    return out


def lacks(model: str, found: list[dict[str, Any]]) -> str:
    """The message for a host without a port of `model` (bad input: exit 2)."""
    have = sorted({p.get("model") or f"{p['vendor']}:{p['device']}" for p in found})
    return (
        f"no {model} NIC ({MODELS[model]['name']}) on this host (it has: "
        f"{', '.join(have) or 'no PCI NICs'}); the profile's nic.model names it"
    )


def facts(host: Host) -> dict[str, Any]:
    """What the nic layer shows of a host: its NICs and the models among them."""
    found = ports(host)
    return {"ports": found, "models": sorted({p["model"] for p in found if p["model"]})}


# ---------------------------------------------------------------------------------------
# Reading and writing the values.


def cpus_of(text: str) -> set[int]:
    """'0-3,8' -> {0, 1, 2, 3, 8} (the kernel's cpu list format)."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise NicError(f"not a CPU list: {text.strip()!r}")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _pcie_cap(data: bytes) -> int:
    """Offset of the PCI Express capability in a config space (PCI Local Bus spec 6.7)."""
    if len(data) < 0x40 or not (data[0x06] & 0x10):
        raise NicError("no capability list in the config space")
    ptr, seen = data[0x34] & 0xFC, set()
    while ptr and ptr not in seen and ptr + 1 < len(data):
        seen.add(ptr)
        if data[ptr] == 0x10:
            return ptr
        ptr = data[ptr + 1] & 0xFC
    raise NicError("no PCI Express capability")


def read_devctl(host: Host, bdf: str) -> tuple[str, int, int]:
    """-> (config path, offset of Device Control, its value)."""
    path = f"{PCI}/{bdf}/config"
    try:
        with open(host.path(path), "rb") as f:
            data = f.read(256)
    except OSError as e:
        raise NicError(f"cannot read {path}: {e.strerror}") from e
    off = _pcie_cap(data) + 8
    return path, off, int.from_bytes(data[off : off + 2], "little")


def write_devctl(host: Host, path: str, off: int, value: int) -> None:
    try:
        fd = os.open(host.path(path), os.O_WRONLY)
        try:
            os.pwrite(fd, value.to_bytes(2, "little"), off)
        finally:
            os.close(fd)
    except OSError as e:
        raise NicError(f"cannot write {path} at {off:#x}: {e.strerror}") from e


def _ethtool(host: Host, sim: bool) -> list[str]:
    if sim:
        tool = "/usr/sbin/ethtool"
        real = host.path(tool)
        if os.path.islink(real) or not os.path.isfile(real) or SIM_MARK not in host.read(tool):
            raise NicError(f"simulated node: {tool} is not the simulator's script")
        return [sys.executable, "-I", "-S", real, host.root]  # no site: starts in ms
    for t in ETHTOOL:
        if os.path.isfile(host.path(t)):
            return [host.path(t)]
    raise NicError("ethtool not found (Debian: apt-get install ethtool)")


def _dcb(host: Host, sim: bool) -> list[str]:
    """iproute2's dcb (the kernel's DCB netlink interface); in the simulator, its own."""
    if sim:
        tool = "/usr/sbin/dcb"
        real = host.path(tool)
        if os.path.islink(real) or not os.path.isfile(real) or DCB_MARK not in host.read(tool):
            raise NicError(f"simulated node: {tool} is not the simulator's script")
        return [sys.executable, "-I", "-S", real, host.root]
    for t in DCB:
        if os.path.isfile(host.path(t)):
            return [host.path(t)]
    raise NicError("dcb not found (iproute2 6.0 or later; Debian: apt-get install iproute2)")


def parse_pfc(text: str) -> list[bool]:
    """`dcb pfc show dev IF prio-pfc` -> PFC on/off of priorities 0..7."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "prio-pfc":
            got = dict(w.split(":", 1) for w in words[1:] if ":" in w)
            if sorted(got) == [str(i) for i in range(8)]:
                return [got[str(i)] == "on" for i in range(8)]
    raise NicError(f"dcb pfc show: no prio-pfc map in its output: {text.strip()[:120]!r}")


def read_pfc(host: Host, sim: bool, name: str) -> list[bool]:
    return parse_pfc(_run([*_dcb(host, sim), "pfc", "show", "dev", name, "prio-pfc"]))


def set_pfc(host: Host, sim: bool, name: str, on: list[bool]) -> None:
    pairs = [f"{i}:{'on' if v else 'off'}" for i, v in enumerate(on)]
    _run([*_dcb(host, sim), "pfc", "set", "dev", name, "prio-pfc", *pairs])


def _pfc_word(on: list[bool]) -> str:
    prios = [str(i) for i, v in enumerate(on) if v]
    return "on: " + (",".join(prios) if prios else "none")


def _run(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NicError(f"{os.path.basename(argv[0])} failed: {e}") from e
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-2:]
        tool = "dcb" if "pfc" in argv else "ethtool"
        raise NicError(f"{tool} {' '.join(argv[-5:])} exited {p.returncode}: {' / '.join(tail)}")
    return p.stdout


def parse_rings(text: str) -> dict[str, dict[str, int]]:
    """`ethtool -g` output -> {max: {rx, tx}, current: {rx, tx}} (n/a fields left out)."""
    out: dict[str, dict[str, int]] = {"max": {}, "current": {}}
    part = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Pre-set maximums"):
            part = "max"
        elif s.startswith("Current hardware settings"):
            part = "current"
        elif part and ":" in s:
            key, _, value = s.partition(":")
            key, value = key.strip().lower(), value.strip()
            if key in ("rx", "tx") and value.isdigit():
                out[part][key] = int(value)
    return out


def read_rings(host: Host, sim: bool, name: str) -> dict[str, dict[str, int]]:
    r = parse_rings(_run([*_ethtool(host, sim), "-g", name]))
    if not r["current"]:
        raise NicError(f"ethtool -g {name}: no ring sizes in its output")
    return r


def set_rings(host: Host, sim: bool, name: str, rings: dict[str, int]) -> None:
    argv = [*_ethtool(host, sim), "-G", name]
    for k in ("rx", "tx"):
        if k in rings:
            argv += [k, str(int(rings[k]))]
    _run(argv)


# ---------------------------------------------------------------------------------------
# Observe -> plan: one item per setting and port, each with what to write.


def _item(sid: str, port: str, wanted: str, actual: str | None, **kw: Any) -> dict[str, Any]:
    return {"id": sid, "if": port, "wanted": wanted, "actual": actual, "error": "", **kw}


def observe(host: Host, s: dict[str, Any], sim: bool) -> tuple[list[dict[str, Any]], str]:
    """-> (items, bad input message). An item: id, if, wanted, actual, error and `do` (the
    writes: [(kind, target, value)]) when it differs."""
    found = [p for p in ports(host) if p["model"] == s["model"]]
    if s.get("interfaces"):
        names = {p["if"] for p in found}
        missing = [i for i in s["interfaces"] if i not in names]
        if missing:
            return [], (
                f"no {MODELS[s['model']]['name']} ({s['model']}) port named "
                f"{', '.join(missing)} on this node"
            )
        found = [p for p in found if p["if"] in s["interfaces"]]
    if not found:
        return [], lacks(s["model"], ports(host))
    items: list[dict[str, Any]] = []
    for p in found:
        for key in KEYS:
            if s.get(key) is None:
                continue
            sid = f"nic.{p['if']}.{key}"
            try:
                items.append(_observe_one(host, s, sim, p, key, sid))
            except KnobError as e:
                items.append(_item(sid, p["if"], _wanted_word(s, key), None, error=str(e)))
    return items, ""


def _wanted_word(s: dict[str, Any], key: str) -> str:
    v = s[key]
    if key == "rings":
        return " ".join(f"{k} {v[k]}" for k in ("rx", "tx") if k in v)
    if key == "relaxed_ordering":
        return "on" if v else "off"
    if key == "pfc_priority":
        return f"on: {v}"
    return str(v)


def _observe_one(
    host: Host, s: dict[str, Any], sim: bool, p: dict[str, Any], key: str, sid: str
) -> dict[str, Any]:
    name, bdf = p["if"], p["bdf"]
    if key == "mtu":
        path = f"{NET}/{name}/mtu"
        raw = host.read(path)
        want = str(s["mtu"])
        do: list[Write] = [("file", path, want + "\n")] if raw.strip() != want else []
        return _item(sid, name, want, raw.strip(), do=do, save=[("file", path, raw)])
    if key == "irq_affinity":
        if p["numa_node"] < 0:
            raise NicError(f"{bdf} has no NUMA node (numa_node -1): nothing to pin its IRQs to")
        want_text = _read(host, f"{NODE}/node{p['numa_node']}/cpulist")
        cpus = cpus_of(want_text)
        irqs = sorted((os.path.basename(x) for x in host.glob(f"{PCI}/{bdf}/msi_irqs/*")), key=int)
        if not irqs:
            raise NicError(f"{bdf} has no MSI/MSI-X interrupts (msi_irqs is empty)")
        do = []
        save: list[Write] = []
        off = 0
        for n in irqs:
            path = f"/proc/irq/{n}/smp_affinity_list"
            raw = host.read(path)
            save.append(("file", path, raw))
            if cpus_of(raw) != cpus:
                off += 1
                do.append(("file", path, want_text + "\n"))
        actual = f"node {p['numa_node']}" if not off else f"{off} of {len(irqs)} IRQs elsewhere"
        return _item(sid, name, f"node {p['numa_node']} ({want_text})", actual, do=do, save=save)
    if key in ("max_read_request", "relaxed_ordering"):
        path, off, reg = read_devctl(host, bdf)
        if key == "max_read_request":
            have = MRRS[(reg >> 12) & 7] if (reg >> 12) & 7 < len(MRRS) else -1
            new = (reg & ~0x7000) | (MRRS.index(s[key]) << 12)
            actual, want = str(have), str(s[key])
        else:
            have_ro = bool(reg & 0x10)
            new = (reg | 0x10) if s[key] else (reg & ~0x10)
            actual, want = ("on" if have_ro else "off"), ("on" if s[key] else "off")
        do = [("pci", f"{path}@{off}", new)] if actual != want else []
        return _item(sid, name, want, actual, do=do, save=[("pci", f"{path}@{off}", reg)])
    if key == "rings":
        r = read_rings(host, sim, name)
        want_r = {}
        for k, v in s["rings"].items():
            top = r["max"].get(k)
            if v == "max":
                if top is None:
                    raise NicError(f"ethtool -g {name} shows no {k} maximum")
                v = top
            elif top is not None and v > top:
                raise NicError(f"{name}: {k} {v} is more than the driver's maximum {top}")
            want_r[k] = v
        cur = {k: r["current"].get(k) for k in want_r}
        do = [("rings", name, want_r)] if cur != want_r else []
        word = " ".join(f"{k} {want_r[k]}" for k in ("rx", "tx") if k in want_r)
        actual = " ".join(f"{k} {cur[k]}" for k in ("rx", "tx") if k in cur)
        return _item(sid, name, word, actual, do=do, save=[("rings", name, r["current"])])
    if key == "pfc_priority":
        pfc = read_pfc(host, sim, name)
        want_on = [i == s[key] for i in range(8)]  # lossless on the RoCE priority only
        do = [("pfc", name, want_on)] if pfc != want_on else []
        return _item(
            sid, name, _pfc_word(want_on), _pfc_word(pfc), do=do, save=[("pfc", name, pfc)]
        )
    # roce_tos
    ib = p["ibdev"]
    if not ib:
        raise NicError(f"{name} has no RDMA device (device/infiniband is empty)")
    if not os.path.isdir(host.path(RDMA_CM)):
        raise NicError(f"{RDMA_CM} not found (configfs not mounted or rdma_cm not loaded)")
    group = f"{RDMA_CM}/{ib}"
    path = f"{group}/ports/1/default_roce_tos"
    want = str(s["roce_tos"])
    if not os.path.isdir(host.path(group)):
        return _item(
            sid, name, want, "not set (no rdma_cm group)", do=[("mkgroup", group, want)], save=[]
        )
    raw = host.read(path)
    do = [("file", path, want + "\n")] if raw.strip() != want else []
    return _item(sid, name, want, raw.strip(), do=do, save=[("file", path, raw)])


# ---------------------------------------------------------------------------------------
# The record of originals (its own file: entries a rollback restores, groups it removes).


def load_record(host: Host) -> dict[str, Any] | None:
    real = host.path(RECORD)
    if not os.path.exists(real):
        return None
    try:
        with open(real, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise NicError(f"cannot read {RECORD} ({real}): {e}") from e
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("entries"), dict)
        or not isinstance(data.get("groups", []), list)
    ):
        raise NicError(
            f"{RECORD} ({real}) is not a record tuner wrote; nothing was changed "
            "(move the file away to start a new record)"
        )
    return data


def _save_record(host: Host, data: dict[str, Any]) -> None:
    host.write_file(RECORD, json.dumps(data, indent=1, sort_keys=True) + "\n", [])


def _key(kind: str, target: str) -> str:
    return f"{kind}:{target}"


def _remember(host: Host, todo: list[dict[str, Any]]) -> None:
    data = load_record(host) or {"version": 1, "saved": time.time(), "entries": {}, "groups": []}
    changed = False
    for it in todo:
        for kind, target, value in it["save"]:
            k = _key(kind, target)
            if k not in data["entries"]:  # the first original wins
                data["entries"][k] = {
                    "kind": kind,
                    "target": target,
                    "value": value,
                    "order": len(data["entries"]),
                }
                changed = True
        for kind, target, _ in it["do"]:
            if kind == "mkgroup" and target not in data["groups"]:
                data["groups"].append(target)
                changed = True
    if changed:
        _save_record(host, data)


def _write(host: Host, sim: bool, kind: str, target: str, value: Any) -> None:
    if kind == "file":
        host.write_kernel(target, value)
    elif kind == "pci":
        path, _, off = target.rpartition("@")
        write_devctl(host, path, int(off), int(value))
    elif kind == "rings":
        set_rings(host, sim, target, value)
    elif kind == "pfc":
        set_pfc(host, sim, target, list(value))
    elif kind == "mkgroup":
        try:
            os.mkdir(host.path(target), 0o755)
        except OSError as e:
            raise NicError(f"cannot mkdir {target}: {e.strerror}") from e
        if sim:  # what the kernel creates in a new rdma_cm group (docs/sim-nic.md)
            ports_dir = host.path(target + "/ports/1")
            os.makedirs(ports_dir)
            for f, v in (("default_roce_tos", "0"), ("default_roce_mode", "RoCE v2")):
                with open(os.path.join(ports_dir, f), "w", encoding="utf-8") as fh:
                    fh.write(v + "\n")
        host.write_kernel(target + "/ports/1/default_roce_tos", str(value) + "\n")
    else:
        raise NicError(f"unknown write kind {kind!r}")


# ---------------------------------------------------------------------------------------
# The three operations.


def _row(it: dict[str, Any], status: str, after: str | None, message: str = "") -> dict[str, Any]:
    return {
        "id": it["id"],
        "interface": it["if"],
        "wanted": it["wanted"],
        "before": it["actual"],
        "after": after,
        "status": status,
        "message": message or it["error"],
    }


def apply(
    host: Host, s: dict[str, Any], sim: bool, check: bool, lock_timeout: float | None = None
) -> dict[str, Any]:
    """-> {status, message, bad_input, settings: [rows]}."""
    bad = check_settings(s)
    if bad:
        return {"status": "failed", "message": bad, "bad_input": True, "settings": []}
    with locked(host, create=not check, timeout=lock_timeout):
        items, bad = observe(host, s, sim)
        if bad:
            return {"status": "failed", "message": bad, "bad_input": True, "settings": []}
        todo = [it for it in items if not it["error"] and it["do"]]
        if check:
            rows = [_planned(it, "would change" if it in todo else None) for it in items]
            return _summary(rows, check)
        if todo:
            _remember(host, todo)
        rows = []
        for it in items:
            if it not in todo:
                rows.append(_planned(it, None))
                continue
            try:
                for kind, target, value in it["do"]:
                    _write(host, sim, kind, target, value)
            except KnobError as e:
                rows.append(_row(it, "failed", None, str(e)))
                continue
            rows.append(_reread(host, s, sim, it))
        return _summary(rows, check)


def _planned(it: dict[str, Any], status: str | None) -> dict[str, Any]:
    if it["error"]:
        return _row(it, "failed", None)
    if status:
        return _row(it, status, it["wanted"])
    return _row(it, "unchanged", it["actual"])


def _reread(host: Host, s: dict[str, Any], sim: bool, it: dict[str, Any]) -> dict[str, Any]:
    key = it["id"].rsplit(".", 1)[1]  # only this setting of this port
    again, _ = observe(host, {"model": s["model"], "interfaces": [it["if"]], key: s[key]}, sim)
    now = next((a for a in again if a["id"] == it["id"]), None)
    if now is None or now["error"] or now["do"]:
        why = (now or {}).get("error") or (
            f"'{it['id']}' = '{(now or {}).get('actual')}', expected '{it['wanted']}' after write"
        )
        return _row(it, "failed", (now or {}).get("actual"), why)
    return _row(it, "changed", now["actual"])


def _summary(rows: list[dict[str, Any]], check: bool) -> dict[str, Any]:
    if any(r["status"] == "failed" for r in rows):
        status = "failed"
    elif any(r["status"] in ("changed", "would change") for r in rows):
        status = "would change" if check else "changed"
    else:
        status = "unchanged"
    failed = [f"{r['id']}: {r['message']}" for r in rows if r["status"] == "failed"]
    return {"status": status, "message": "; ".join(failed), "bad_input": False, "settings": rows}


def verify(host: Host, s: dict[str, Any], sim: bool) -> dict[str, Any]:
    """-> {status: ok | drift | failed, settings: [{id, wanted, actual, status, message}]}."""
    bad = check_settings(s)
    if bad:
        return {"status": "failed", "message": bad, "bad_input": True, "settings": []}
    items, bad = observe(host, s, sim)
    if bad:
        return {"status": "failed", "message": bad, "bad_input": True, "settings": []}
    rows = []
    for it in items:
        if it["error"]:
            st, msg = "failed", it["error"]
        elif it["do"]:
            st, msg = "drift", f"'{it['id']}' = '{it['actual']}', expected '{it['wanted']}'"
        else:
            st, msg = "ok", ""
        rows.append(
            {
                "id": it["id"],
                "interface": it["if"],
                "wanted": it["wanted"],
                "actual": it["actual"],
                "status": st,
                "message": msg,
            }
        )
    status = (
        "failed"
        if any(r["status"] == "failed" for r in rows)
        else ("drift" if any(r["status"] == "drift" for r in rows) else "ok")
    )
    failed = [f"{r['id']}: {r['message']}" for r in rows if r["status"] == "failed"]
    return {"status": status, "message": "; ".join(failed), "bad_input": False, "settings": rows}


def _current(host: Host, sim: bool, kind: str, target: str) -> Any:
    if kind == "file":
        return host.read(target) if host.exists(target) else None
    if kind == "pci":
        path, _, off = target.rpartition("@")
        with open(host.path(path), "rb") as f:
            f.seek(int(off))
            return int.from_bytes(f.read(2), "little")
    if kind == "pfc":
        return read_pfc(host, sim, target)
    return read_rings(host, sim, target)["current"]


def rollback(
    host: Host, sim: bool, check: bool, lock_timeout: float | None = None
) -> dict[str, Any]:
    """Write the saved originals back (newest first) and remove the configfs groups tuner
    made -> {status: nothing to do | would restore | restored | failed, files: [rows]}."""
    with locked(host, create=False, timeout=lock_timeout):
        data = load_record(host)
        if data is None:
            return {"status": "nothing to do", "message": "", "files": []}
        rows: list[dict[str, Any]] = []
        failed = False
        entries = sorted(data["entries"].values(), key=lambda e: -int(e.get("order", 0)))
        for e in entries:
            kind, target, value = e["kind"], e["target"], e["value"]
            label = {"rings": f"ethtool -G {target}", "pfc": f"dcb pfc set dev {target}"}.get(
                kind, target
            )
            try:
                cur = _current(host, sim, kind, target)
                if cur is None:
                    rows.append({"path": label, "status": "gone", "message": "no longer here"})
                    continue
                todo = cur != value
                if todo and not check:
                    _write(host, sim, kind, target, value)
                st = ("would restore" if check else "restored") if todo else "unchanged"
                rows.append({"path": label, "status": st, "message": ""})
            except (KnobError, OSError) as err:
                failed = True
                rows.append({"path": label, "status": "failed", "message": str(err)})
        for g in reversed(data.get("groups", [])):
            real = host.path(g)
            if not os.path.isdir(real):
                rows.append({"path": g, "status": "gone", "message": ""})
                continue
            if not check:
                try:
                    if sim:  # the kernel drops a group's own files with it
                        shutil.rmtree(host.path(g + "/ports"))
                    os.rmdir(real)
                except OSError as err:
                    failed = True
                    rows.append({"path": g, "status": "failed", "message": err.strerror or ""})
                    continue
            rows.append({"path": g, "status": "would remove" if check else "removed"})
        done = [r for r in rows if r["status"] not in ("unchanged", "gone")]
        if failed:
            return {
                "status": "failed",
                "message": "some originals were not restored",
                "files": rows,
            }
        if check:
            return {"status": "would restore" if done else "nothing to do", "files": rows}
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        hist = host.path(f"{STATE_DIR}/history")
        os.makedirs(hist, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(host.path(RECORD), os.path.join(hist, f"nic-rolled-back-{stamp}.json"))
        return {"status": "restored" if done else "nothing to do", "message": "", "files": rows}
