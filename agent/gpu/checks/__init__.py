"""GPU health checks: one module per family, each check a pure function of the facts.

A check takes a GPU's facts and its policy section and returns a CheckResult with a status
(pass / warn / fail / unknown) and the evidence it saw. Checks never touch hardware; to add
one, write a function here, give it a policy model in agent/gpu/policy.py and list it in
GPU_CHECKS (docs/checks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from agent.gpu.model import GpuFacts

Status = Literal["pass", "warn", "fail", "unknown"]
RANK = {"pass": 0, "warn": 1, "unknown": 2, "fail": 3}


class CheckResult(BaseModel):
    check: str
    status: Status
    required: bool = True
    evidence: dict[str, Any] = {}
    message: str = ""

    @property
    def blocks(self) -> bool:
        """Does this result make the GPU unusable? Unknown on a required check does."""
        return self.status == "fail" or (self.status == "unknown" and self.required)


#: Queries whose data comes from debugfs (/sys/kernel/debug/dri/N/...), which only root may
#: read: without root amdsmi answers NOT_SUPPORTED (bad-page threshold) or NO_PERM (CPER).
ROOT_ONLY = {"bad_page_threshold": "bad-page threshold", "cper": "CPER records"}


def needs_root(gpu: GpuFacts, key: str) -> bool:
    """Did ``key`` fail the way a root-only query fails without root?"""
    if key not in ROOT_ONLY:
        return False
    return key in gpu.unsupported or "NO_PERM" in gpu.errors.get(key, "")


def unknown(check: str, gpu: GpuFacts, keys: tuple[str, ...], required: bool) -> CheckResult:
    """The facts a check needs are missing: say why (query error, not supported, needs root)."""
    errs = {k: gpu.errors[k] for k in keys if k in gpu.errors}
    unsup = [k for k in keys if k in gpu.unsupported]
    root = [ROOT_ONLY[k] for k in keys if needs_root(gpu, k)]
    why = (
        f"needs root: {', '.join(root)} (debugfs; run the collector as root, tuner_become)"
        if root
        else "; ".join(errs.values())
        or (f"not supported: {', '.join(unsup)}" if unsup else "no data")
    )
    return CheckResult(
        check=check,
        status="unknown",
        required=required,
        evidence={"errors": errs, "unsupported": unsup, **({"needs_root": root} if root else {})},
        message=why,
    )


def verdict(check: str, p: Any, evidence: dict[str, Any], problem: str | None) -> CheckResult:
    """The result of a check that found `problem` (None: it passed), at the policy's severity."""
    if problem is None:
        return CheckResult(check=check, status="pass", required=p.required, evidence=evidence)
    return CheckResult(
        check=check,
        status=getattr(p, "severity", "fail"),
        required=p.required,
        evidence=evidence,
        message=problem,
    )


GpuCheck = Callable[[GpuFacts, Any], CheckResult]
