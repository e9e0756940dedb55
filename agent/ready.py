"""`tuner ready`: one pre-run answer. Verify (OS + BIOS + cross-layer) and the GPU gate in
one run, one report: a node that does not conform to the profile is excluded from the
usable-GPU inventory with its reason (or, with --strict, fails the answer), and the gate
(minimums, blast-radius cap) is then decided on what is left.

Verify is called through `verify_fleet` only, so the entry point can move (agent/layers/)
without touching the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from rich.console import Console

from agent.gpu.gate import (
    GateOptions,
    GpuEntry,
    GpuInventory,
    NodeEntry,
    attach_addresses,
    evaluate_fleet,
    evaluate_node,
    failed_node,
)
from agent.view import n_of

SCHEMA = "tuner.ready/1"


def verify_fleet(prof: Any, inv: Any, options: Any) -> Any:
    """The verify entry point (every registered layer and their cross-layer checks,
    agent/layers/): a report.VerifyReport. `options`: a layers.base.RunOptions."""
    from agent import layers
    from agent.layers.base import Run
    from agent.layers.run import execute

    picked = layers.make("all", options.layers)
    run = Run(command="verify", profile=prof, inv=inv, options=options)
    return execute(run, picked)


def verify_steps(prof: Any, inv: Any) -> int:
    """How many layers verify will run (for the progress): the layers that want the run."""
    from agent import layers
    from agent.layers.base import Run

    run = Run(command="verify", profile=prof, inv=inv)
    return sum(1 for layer in layers.make("all") if layer.wants(run))


class HostReady(BaseModel):
    name: str
    verify: Literal["ok", "pending", "drift", "failed", "unreachable", "not checked"]
    reason: str = ""
    gpu_status: str = ""
    usable_gpus: int = 0  # physical GPUs (a GPU in compute partitions counts once)


class ReadyReport(BaseModel):
    schema_: str = SCHEMA
    command: Literal["ready"] = "ready"
    profile: str
    strict: bool
    passed: bool
    reasons: list[str]
    hosts: list[HostReady]
    verify_artifacts: str = ""
    gpus: dict[str, Any]  # the usable-GPU inventory (tuner.gpu-inventory/1), drift excluded

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def dump(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["schema"] = d.pop("schema_")
        return d


def drift_reason(h: Any) -> str:
    """Why a host does not conform, from a report.HostVerify: each registered layer's
    reasons (`Layer.reasons`, last layer first: the OS's settings lead), then the
    cross-layer checks."""
    from agent import layers

    parts = []
    for layer in reversed(layers.make("all")):
        if layer.name in h.layers:
            parts += layer.reasons(layer.part(h))
    for c in h.cross:
        if c.status == "mismatch":
            parts.append(f"cross-layer {getattr(c, 'id', '')}: {getattr(c, 'message', '')}")
    if h.message and not parts:
        parts.append(h.message)
    return "; ".join(parts[:6]) + (f" (+{len(parts) - 6} more)" if len(parts) > 6 else "")


def combine(
    profile: str,
    verify: Any,
    facts: list[Any],
    failures: dict[str, str],
    order: list[str],
    policy: Any,
    options: GateOptions,
    hosts: list[Any],
    inventory_path: str,
    strict: bool,
    diagnose: Callable[[GpuInventory], GpuInventory] | None = None,
) -> ReadyReport:
    """The verify report and the GPU facts -> one answer (pure but for `diagnose`: levels
    2/3 on the GPUs still usable once drifted nodes are out, agent/diag/run.py)."""
    entries: dict[str, NodeEntry] = {f.name: evaluate_node(f, policy) for f in facts}
    entries.update({n: failed_node(n, why) for n, why in failures.items()})
    vby = {h.host: h for h in verify.hosts}
    rows: list[HostReady] = []
    drifted: list[str] = []
    for name in order:
        v = vby.get(name)
        status: Any = v.status if v is not None else "not checked"
        reason = drift_reason(v) if v is not None and v.status != "ok" else ""
        if v is None:
            reason = "not in the verify run"
        e = entries.get(name)
        if status != "ok" and e is not None and e.usable:
            drifted.append(name)
            why = f"{'drift' if status == 'drift' else status}: {reason}"
            res = {
                "check": "node.conforms",
                "status": "fail",
                "evidence": {"verify": status},
                "message": why,
            }
            e.excluded = e.excluded + [
                GpuEntry(**{**g.model_dump(exclude={"checks"}), "checks": [res]}) for g in e.usable
            ]
            e.usable = []
            e.status, e.reason = (
                ("failed" if status in ("failed", "unreachable") else "excluded"),
                why,
            )
        rows.append(HostReady(name=name, verify=status, reason=reason))
    names = order + [n for n in entries if n not in order]
    inv: GpuInventory = evaluate_fleet(
        [entries[n] for n in names if n in entries], facts, policy, options
    )
    attach_addresses(inv, hosts)
    inv.inventory = inventory_path
    if diagnose is not None:
        inv = diagnose(inv)
    by = {n.name: n for n in inv.nodes}
    for r in rows:
        n = by.get(r.name)
        if n is not None:
            from agent.gpu.gate import physical_counts

            r.gpu_status, r.usable_gpus = n.status, physical_counts(n)[0]
            if not r.reason and n.status != "ok":
                r.reason = n.reason
    reasons = list(inv.gate.reasons)
    not_ok = [r for r in rows if r.verify != "ok"]
    if not_ok:
        msg = f"{len(not_ok)} node(s) do not conform to {profile}: " + ", ".join(
            r.name for r in not_ok[:10]
        )
        if strict:
            reasons.insert(0, msg + " (--strict)")
        elif drifted:
            inv.fleet.warnings.append(msg + ": excluded from the inventory")
    if strict and not_ok:
        inv.gate.passed = False
        inv.gate.reasons = reasons
    return ReadyReport(
        profile=profile,
        strict=strict,
        passed=not reasons,
        reasons=reasons,
        hosts=rows,
        verify_artifacts=getattr(verify, "artifacts", ""),
        gpus=inv.model_dump_inventory(),
    )


def print_ready(r: ReadyReport, console: Console, detail: bool = False) -> None:
    from agent.view import HostView, fleet_table

    views = [
        HostView(
            host=h.name,
            status=h.verify,
            summary=f"{h.gpu_status}: {n_of(h.usable_gpus, 'usable GPU')}",
            notes=[h.reason] if h.reason else [],
        )
        for h in r.hosts
    ]
    fleet_table(f"tuner ready: {r.profile}", ["GPUs"], views, console, detail=detail)
    for w in r.gpus.get("fleet", {}).get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
    g = r.gpus
    verdict = "[green]READY[/]" if r.passed else "[bold red]NOT READY[/]"
    # physical GPUs (a GPU split into compute partitions counts once); older reports: as said
    pu = g.get("usable_physical_gpus")
    pu = g["usable_gpus"] if pu is None else pu
    pi = g.get("installed_physical_gpus") or g["installed_gpus"]
    console.print(
        f"{pu} of {n_of(pi, 'GPU')} usable on {g['nodes_usable']} "
        f"of {n_of(g['nodes_total'], 'node')}. {verdict}"
    )
    for reason in r.reasons:
        console.print(f"  - {reason}")
