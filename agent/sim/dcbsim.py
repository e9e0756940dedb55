#!/usr/bin/env python3
# tuner-sim-dcb
"""The simulator's dcb (iproute2): priority flow control of a simulated NIC port.

Copied into every simulated node tree as ``/usr/sbin/dcb`` (the line above marks it: tuner's
nic module runs nothing else in the simulator, never the machine's dcb) and run as
``python3 dcb <node root> pfc show dev IF [prio-pfc]`` or
``... pfc set dev IF prio-pfc P:on|off ...``. Standard library only.

The driver's state lives in ``<root>/var/lib/tuner-sim/nic/<IF>.pfc`` (JSON, written at
boot by agent/sim/nicsim.py for the drivers that have the kernel's DCB interface: mlx5_core
and bnxt_en; ionic has none, so its ports have no file and dcb fails as on such a port).
The output follows iproute2 6.1's dcb_pfc.c: ``prio-pfc 0:off 1:off ...`` (docs/sim-nic.md).
"""

from __future__ import annotations

import json
import os
import re
import sys

IFNAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
MAP = re.compile(r"(all|[0-7]):(on|off)")


def _path(root: str, name: str) -> str:
    return os.path.join(root, "var/lib/tuner-sim/nic", name + ".pfc")


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[1] != "pfc" or argv[2] not in ("show", "set") or argv[3] != "dev":
        sys.stderr.write("Usage: dcb pfc { show | set } dev STRING ...\n")
        return 1
    root, op, name, rest = argv[0], argv[2], argv[4], argv[5:]
    if not IFNAME.fullmatch(name) or not os.path.isdir(os.path.join(root, "sys/class/net", name)):
        sys.stderr.write(f'Device "{name}" does not exist.\n')
        return 1
    p = _path(root, name)
    if not os.path.isfile(p):  # the driver has no dcbnl_ops
        sys.stderr.write("Attribute failed policy validation\nError: Operation not supported\n")
        return 1
    with open(p, encoding="utf-8") as f:
        state = json.load(f)
    on: list[bool] = state["prio_pfc"]
    if op == "show":
        line = "prio-pfc " + " ".join(f"{i}:{'on' if v else 'off'}" for i, v in enumerate(on))
        if rest in ([], ["prio-pfc"]):
            if not rest:
                print(f"pfc-cap 8 macsec-bypass off delay {state.get('delay', 0)} ")
            print(line + " ")
            return 0
        sys.stderr.write(f'What is "{rest[0]}"?\n')
        return 1
    if not rest or rest[0] != "prio-pfc" or len(rest) < 2:
        sys.stderr.write("Usage: dcb pfc set dev STRING [ prio-pfc PFC-MAP ]\n")
        return 1
    new = list(on)
    for word in rest[1:]:
        m = MAP.fullmatch(word)
        if not m:
            sys.stderr.write(f'Invalid PFC mapping "{word}"\n')
            return 1
        prios = range(8) if m.group(1) == "all" else [int(m.group(1))]
        for i in prios:
            new[i] = m.group(2) == "on"
    tmp = p + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({**state, "prio_pfc": new}, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
