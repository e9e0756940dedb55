"""Cross-layer checks: does the OS show what the BIOS decides?

NUMA nodes = NPS x sockets, and one thread per core when SMT is off. The BIOS side is the
value in effect (a pending value is not in effect yet), else the profile's; the OS side is
the topology the OS layer read (`facts`)."""

from __future__ import annotations

from typing import Any

from agent.bios.models import CrossCheck, HostBios
from agent.profiles import Profile  # noqa: TC001


def cross_checks(prof: Profile, hb: HostBios | None, facts: dict[str, Any]) -> list[CrossCheck]:
    """The OS must show what the BIOS decides: NUMA nodes = NPS x sockets, SMT off = 1."""
    if not facts or hb is None or hb.status not in ("ok", "pending", "drift"):
        return []  # no BIOS read (no BMC, or it failed): nothing to compare the OS with
    topo = hb.topology
    bios = prof.section("bios")
    out: list[CrossCheck] = []
    nps, src = topo.get("nps"), "bios"
    if nps is None:
        nps, src = bios.nps, "profile"
    sockets = facts.get("sockets")
    if nps is not None and sockets:
        want = sockets * nps if nps else 1
        actual = facts.get("numa_nodes")
        ok = actual == want
        out.append(
            CrossCheck(
                id="numa_nodes",
                wanted=str(want),
                actual=None if actual is None else str(actual),
                status="unknown" if actual is None else ("ok" if ok else "mismatch"),
                source=src,  # type: ignore[arg-type]
                message=""
                if ok
                else f"NPS {nps} x {sockets} sockets should give {want} NUMA nodes",
            )
        )
    smt, src = topo.get("smt"), "bios"
    if smt is None:
        smt, src = bios.smt, "profile"
    tpc = facts.get("threads_per_core")
    if smt is not None:
        ok = tpc == 1 if smt is False else (tpc is not None and tpc > 1)
        out.append(
            CrossCheck(
                id="threads_per_core",
                wanted="1" if smt is False else ">1",
                actual=None if tpc is None else str(tpc),
                status="unknown" if tpc is None else ("ok" if ok else "mismatch"),
                source=src,  # type: ignore[arg-type]
                message="" if ok else f"SMT {'off' if smt is False else 'on'} in the BIOS",
            )
        )
    return out
