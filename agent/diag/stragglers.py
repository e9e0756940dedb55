"""Fleet-relative stragglers: values far below the fleet's own median (pure).

One slow engine sets the pace of a data-parallel run, so a node or GPU that passes every
fixed threshold can still be the one to leave out. The score is the modified z-score of
Iglewicz and Hoaglin, 0.6745 * (x - median) / MAD, robust to the outliers it looks for
(NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.17); only the slow side is flagged,
and never less than `min_drop` below the median (a fleet whose values barely differ has a
tiny MAD)."""

from __future__ import annotations

from statistics import median

from pydantic import BaseModel

from agent.diag.policy import Stragglers


class Straggler(BaseModel):
    key: str
    value: float
    median: float
    score: float | None  # None when the MAD is 0 (flagged on the drop alone)
    drop: float  # fraction below the median


def stragglers(values: dict[str, float], policy: Stragglers) -> list[Straggler]:
    """`values`: key (node, or node/GPU) -> a higher-is-better measurement."""
    if len(values) < policy.min_samples:
        return []
    med = median(values.values())
    if med <= 0:
        return []
    mad = median(abs(v - med) for v in values.values())
    out: list[Straggler] = []
    for key, v in sorted(values.items()):
        drop = (med - v) / med
        if drop < policy.min_drop:
            continue
        score = 0.6745 * (v - med) / mad if mad > 0 else None
        if score is None or score <= -policy.score:
            out.append(Straggler(key=key, value=v, median=med, score=score, drop=round(drop, 4)))
    return out
