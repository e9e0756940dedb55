"""Narrow a failing multi-GPU test to the GPU at fault, so a node keeps 7 of 8 (pure).

Leave-one-out: the test runs once on every set of all GPUs but one. A set without the
culprit stands out (its result is `stand_out` above the median of the others); when none
stands out the fault is not one GPU's, and nothing is attributed (the node's GPUs stay as
the full test judged them: fail closed)."""

from __future__ import annotations

from collections.abc import Callable
from statistics import median

from pydantic import BaseModel


class Narrowed(BaseModel):
    culprit: str | None
    runs: dict[str, float | None]  # left-out GPU -> the result without it
    reason: str


def leave_one_out(
    gpus: list[str], measure: Callable[[list[str]], float | None], stand_out: float
) -> Narrowed:
    """`measure(subset)`: a higher-is-better result of the test on `subset`, None when the
    run gave none (then that GPU's set proves nothing)."""
    runs: dict[str, float | None] = {}
    for g in gpus:
        runs[g] = measure([x for x in gpus if x != g])
    got = {g: v for g, v in runs.items() if v is not None}
    if len(got) < 2:
        return Narrowed(culprit=None, runs=runs, reason="too few runs gave a result")
    best = max(got, key=lambda g: got[g])
    others = [v for g, v in got.items() if g != best]
    med = median(others)
    if med > 0 and got[best] >= med * (1 + stand_out):
        return Narrowed(
            culprit=best,
            runs=runs,
            reason=f"without {best}: {got[best]:g}, the other sets' median {med:g}",
        )
    return Narrowed(
        culprit=None,
        runs=runs,
        reason=f"no set stands out (best {got[best]:g} vs median {med:g}): not one GPU",
    )
