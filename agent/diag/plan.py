"""Which tests run within a time budget: the most telling per second first (pure)."""

from __future__ import annotations

from pydantic import BaseModel

from agent.diag.policy import DiagPolicy


class Skipped(BaseModel):
    test: str
    reason: str


class DiagPlan(BaseModel):
    level: int
    budget: float | None
    run: list[str]  # in the order they run
    seconds: float  # what the planned tests cost on one node (nodes run in parallel)
    skipped: list[Skipped]


def plan(
    policy: DiagPolicy, level: int, budget: float | None, missing: dict[str, str] | None = None
) -> DiagPlan:
    """Tests of `level` and below, ordered by value per second, fitted into `budget`
    seconds (None: all). `missing`: test -> why its tool is absent (skipped, and the GPUs
    it would judge stay unknown: a level that needs it fails closed)."""
    missing = missing or {}
    tests = policy.tests.named()
    wanted = [(n, t) for n, t in tests.items() if t.level <= level]
    wanted.sort(key=lambda nt: (-nt[1].value / nt[1].seconds, nt[0]))
    run: list[str] = []
    skipped: list[Skipped] = []
    used = 0.0
    for name, t in wanted:
        if name in missing:
            skipped.append(Skipped(test=name, reason=f"tool missing: {missing[name]}"))
            continue
        if budget is not None and used + t.seconds > budget:
            left = max(0.0, budget - used)
            skipped.append(
                Skipped(test=name, reason=f"budget: needs {t.seconds:g} s, {left:g} s left")
            )
            continue
        run.append(name)
        used += t.seconds
    for name, t in tests.items():
        if t.level > level:
            skipped.append(Skipped(test=name, reason=f"level {t.level} (asked for {level})"))
    return DiagPlan(level=level, budget=budget, run=run, seconds=used, skipped=skipped)
