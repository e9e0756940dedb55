"""Level 3 across nodes: an RCCL all-reduce over the usable nodes, and the node (or the path
between nodes) at fault found by bisecting the node set (stdlib only: it runs on the
launching node as module_utils/tuner_diag_cluster.py, and again on the controller to replay
the recorded runs into verdicts).

The test is rccl-tests' `all_reduce_perf` under `mpirun`, one rank per GPU, as ROCm documents
multi-node RCCL tests (`mpirun -np <nodes x 8> --host a:8,b:8 ... all_reduce_perf -b 8 -e 8G
-f 2 -g 1`). A set of nodes is slow when its in-place bus bandwidth at the policy's message
size is below the policy's floor (`min_busbw_gbps`, none published by AMD for MI355X across
nodes) or more than `relative` below the best set measured in this run (fleet-relative)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Measure = Callable[[list[str]], "float | None"]


class OutOfRuns(Exception):
    pass


def bisect_nodes(
    nodes: list[str],
    measure: Measure,
    relative: float = 0.25,
    floor: float | None = None,
    max_runs: int = 12,
) -> dict[str, object]:
    """Find the nodes that slow a cross-node all-reduce. `measure(subset)`: the bus
    bandwidth of the test over `subset` (None: no result). Pure given `measure`.

    1. All nodes. 2. With 4 or more, the two halves: a half far below the other holds the
    fault; it is bisected again, a single node tested beside a node of a good half. With 3,
    every pair (the pair without the culprit stands out). Returns {passed, bad, unresolved,
    reason, runs: {"a,b": busbw}}; `unresolved` nodes could not be cleared (fail closed)."""
    runs: dict[tuple[str, ...], float | None] = {}

    def m(subset: list[str]) -> float | None:
        key = tuple(sorted(subset))
        if key not in runs:
            if len(runs) >= max_runs:
                raise OutOfRuns
            runs[key] = measure(list(key))
        return runs[key]

    def best() -> float:
        vals = [v for v in runs.values() if v is not None]
        return max(vals) if vals else 0.0

    def slow(v: float | None) -> bool | None:
        if v is None:
            return None
        if floor is not None and v < floor:
            return True
        return v < best() * (1 - relative)

    good: set[str] = set()
    bad: list[str] = []
    unresolved: list[str] = []
    notes: list[str] = []

    def out(passed: bool, reason: str) -> dict[str, object]:
        return {
            "passed": passed,
            "bad": sorted(bad),
            "unresolved": sorted(set(unresolved) - set(bad)),
            "reason": reason,
            "runs": {",".join(k): v for k, v in runs.items()},
        }

    def search(s: list[str]) -> None:
        """`s` is slow; nodes outside it in `good` are references."""
        if len(s) == 1:
            bad.append(s[0])
            return
        halves = [s[: len(s) // 2], s[len(s) // 2 :]]
        vals: list[float | None] = []
        for h in halves:
            if len(h) >= 2:
                vals.append(m(h))
            else:
                ref = next((g for g in sorted(good) if g not in s), None)
                vals.append(None if ref is None else m([*h, ref]))
        flags = [slow(v) for v in vals]
        for h, f in zip(halves, flags, strict=True):
            if f is False:
                good.update(h)
        if not any(flags):
            if all(f is False for f in flags):
                notes.append(f"{','.join(s)}: each half is fast, together slow (between them)")
                unresolved.extend(s)
            else:
                unresolved.extend(
                    n for h, f in zip(halves, flags, strict=True) if f is None for n in h
                )
            return
        for h, f in zip(halves, flags, strict=True):
            if f:
                search(h)
            elif f is None:
                unresolved.extend(h)

    try:
        full = m(nodes)
        if full is None:
            unresolved.extend(nodes)
            return out(False, "the run over all nodes gave no result")
        if floor is not None and full >= floor:
            good.update(nodes)
            return out(True, f"{len(nodes)} nodes: {full:g} GB/s (floor {floor:g})")
        if len(nodes) == 2:
            # two nodes: nothing to compare against unless the floor says so
            if floor is None:
                return out(True, f"2 nodes: {full:g} GB/s (no floor, nothing to compare)")
            unresolved.extend(nodes)
            return out(False, f"2 nodes: {full:g} GB/s below {floor:g}: cannot tell which")
        if len(nodes) == 3:
            pairs = [[a, b] for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
            vals = {tuple(p): m(p) for p in pairs}
            if not slow(full):
                return out(True, f"3 nodes: {full:g} GB/s, no pair faster")
            fast = [p for p, v in vals.items() if slow(v) is False]
            for p in fast:
                good.update(p)
            bad.extend(n for n in nodes if n not in good)
            if not fast:
                unresolved.extend(nodes)
                return out(False, f"3 nodes: {full:g} GB/s and every pair slow")
            return out(False, f"3 nodes: {full:g} GB/s; without {', '.join(bad)} {best():g}")
        half = len(nodes) // 2
        a, b = m(nodes[:half]), m(nodes[half:])
        if not slow(full) and len(nodes) >= 8:
            # the halves alike: faults in both halves look like none; the quarters tell
            q = len(nodes) // 4
            for part in (nodes[:q], nodes[q:half], nodes[half : half + q], nodes[half + q :]):
                m(part)
        if not slow(full):
            return out(True, f"{len(nodes)} nodes: {full:g} GB/s, halves {a} and {b}")
        search(nodes)
    except OutOfRuns:
        unresolved.extend(n for n in nodes if n not in good)
        notes.append(f"stopped after {max_runs} runs")
    why = f"{len(nodes)} nodes: {full:g} GB/s, best set {best():g}"
    if bad:
        why += f"; slow with {', '.join(sorted(bad))}"
    return out(False, "; ".join([why, *notes]))


def mpi_argv(
    mpirun: str,
    tool: str,
    hosts: list[str],
    slots: dict[str, int],
    extra: list[str] | None = None,
) -> list[str]:
    """`mpirun -np N --host a:8,b:8 all_reduce_perf -b 8 -e 8G -f 2 -g 1` (one rank per
    usable GPU; the acceptance command's sizes). An argument list, never a shell string."""
    return [
        mpirun,
        "-np",
        str(sum(slots.get(h, 8) for h in hosts)),
        "--host",
        ",".join(f"{h}:{slots.get(h, 8)}" for h in hosts),
        *(extra or []),
        tool,
        "-b",
        "8",
        "-e",
        "8G",
        "-f",
        "2",
        "-g",
        "1",
    ]


def replay(
    hosts: list[str],
    runs: list[Any],
    size: int,
    relative: float,
    floor: float | None,
    max_runs: int,
) -> dict[str, object]:
    """The launching node's recorded runs ({test: rccl.all_reduce.cluster/<a,b>, output,
    timed_out}) through the same bisect (controller side): what was not run (the budget or
    the run cap) stays unresolved."""
    from agent.diag.parse import parse_rccl

    got: dict[str, Any] = {}
    for r in runs:
        test = r["test"] if isinstance(r, dict) else r.test
        if "/" in test:
            got[test.split("/", 1)[1]] = r

    def measure(subset: list[str]) -> float | None:
        r = got.get(",".join(subset))
        if r is None:
            raise OutOfRuns
        timed_out = r.get("timed_out") if isinstance(r, dict) else r.timed_out
        output = r.get("output", "") if isinstance(r, dict) else r.output
        return None if timed_out else parse_rccl(str(output)).busbw_at(size)

    return bisect_nodes(hosts, measure, relative, floor, max_runs)
