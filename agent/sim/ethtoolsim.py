#!/usr/bin/env python3
# tuner-sim-ethtool
"""The simulator's ethtool: ring sizes of a simulated NIC port (``-g`` shows, ``-G`` sets).

Copied into every simulated node tree as ``/usr/sbin/ethtool`` (the line above marks it:
tuner's nic module runs nothing else in the simulator, never the machine's ethtool) and run
as ``python3 ethtool <node root> -g IF`` or ``... -G IF [rx N] [tx N]``. Standard library
only: a simulated node has a bare Python.

The driver's state lives in ``<root>/var/lib/tuner-sim/nic/<IF>.rings`` (JSON: the current
and maximum sizes, written by agent/sim/nicsim.py at boot). What it prints and refuses
follows ethtool 6.1 (Debian 12) and the kernel's ring-parameter checks
(docs/sim-nic.md): ``-g`` prints "Ring parameters for IF:" with the pre-set maximums and the
current settings; ``-G`` with a size above the maximum fails with EINVAL; an unknown
interface fails with ENODEV; ``-G`` with nothing to change fails ("no ring parameters
changed, aborting").
"""

from __future__ import annotations

import json
import os
import re
import sys

IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


def _state_path(root: str, name: str) -> str:
    return os.path.join(root, "var/lib/tuner-sim/nic", name + ".rings")


def _load(root: str, name: str) -> dict[str, int]:
    p = _state_path(root, name)
    if not IFNAME.fullmatch(name) or not os.path.isfile(p):
        sys.stderr.write("netlink error: no device matches name\nnetlink error: No such device\n")
        sys.exit(1)
    with open(p, encoding="utf-8") as f:
        data: dict[str, int] = json.load(f)
    return data


def show(root: str, name: str) -> int:
    s = _load(root, name)
    print(f"Ring parameters for {name}:")
    print("Pre-set maximums:")
    print(f"RX:\t\t\t{s['rx_max']}\nRX Mini:\t\tn/a\nRX Jumbo:\t\tn/a\nTX:\t\t\t{s['tx_max']}")
    print("Current hardware settings:")
    print(f"RX:\t\t\t{s['rx']}\nRX Mini:\t\tn/a\nRX Jumbo:\t\tn/a\nTX:\t\t\t{s['tx']}")
    print("RX Buf Len:\t\tn/a\nCQE Size:\t\tn/a\nTX Push:\t\toff\nTCP data split:\t\tn/a")
    return 0


def set_rings(root: str, name: str, args: list[str]) -> int:
    s = _load(root, name)
    if len(args) % 2 or not args:
        sys.stderr.write("ethtool: bad command line argument(s)\n")
        return 1
    new = dict(s)
    for key, value in zip(args[::2], args[1::2], strict=True):
        if key not in ("rx", "tx") or not value.isdigit():
            sys.stderr.write(f"ethtool: bad command line argument(s): {key} {value}\n")
            return 1
        n = int(value)
        if n < 1 or n > s[key + "_max"]:
            sys.stderr.write("netlink error: Invalid argument\n")
            return 1
        new[key] = n
    if new == s:
        sys.stderr.write("no ring parameters changed, aborting\n")
        return 1
    p = _state_path(root, name)
    tmp = p + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(new, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("-g", "-G", "--show-ring", "--set-ring"):
        sys.stderr.write("usage: ethtool ROOT -g IF | ROOT -G IF [rx N] [tx N]\n")
        return 1
    root, op, name = argv[0], argv[1], argv[2]
    if op in ("-g", "--show-ring"):
        return show(root, name)
    return set_rings(root, name, argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
