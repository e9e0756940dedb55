"""amdgpu events in the kernel log since boot (pure): ring timeouts, GPU resets, RAS
uncorrectable errors, each mapped to the GPU whose PCI address the line names.

The node's collector keeps the amdgpu/KFD lines that may be events (agent/gpu/collect.py:
``kernel_events``); this module parses them. Message formats, from the Linux amdgpu driver
(drivers/gpu/drm/amd/amdgpu):

* ``amdgpu_job.c: amdgpu_job_timedout``: ``ring %s timeout, signaled seq=%u, emitted
  seq=%u`` (``dev_err`` since Linux 6.x: ``amdgpu 0000:05:00.0: amdgpu: ring gfx_0.0.0
  timeout, ...``; older kernels ``DRM_ERROR``: ``[drm:amdgpu_job_timedout [amdgpu]] *ERROR*
  ring gfx timeout, ...`` without a PCI address), and ``ring %s timeout, but soft
  recovered`` when the ring recovered without a reset;
* ``amdgpu_device.c: amdgpu_device_gpu_recover``: ``GPU reset begin!``, ``GPU reset(%d)
  failed``, ``GPU Recovery Failed``;
* ``amdgpu_ras.c``: ``uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!``
  (the RAS interrupt; newer drivers prefix a ``{seqno}`` and capitalise it) and ``%ld
  uncorrectable hardware errors detected in %s block`` (a count of 0 is not an event).

docs/checks.md "gpu.kernel_log".
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from agent.gpu.checks import RANK, CheckResult
from agent.gpu.model import GpuFacts, NodeFacts
from agent.gpu.policy import KernelLogCheck

KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("soft_recovered", re.compile(r"\bring (\S+) timeout, but soft recovered")),
    ("ring_timeout", re.compile(r"\bring (\S+) timeout\b")),
    (
        "gpu_reset",
        re.compile(r"GPU reset begin!|GPU reset\(\d+\) failed|GPU Recovery Failed", re.I),
    ),
    (
        "ras_uncorrectable",
        re.compile(
            r"uncorrectable hardware error\s*\(|\b[1-9]\d* uncorrectable hardware errors? "
            r"detected",
            re.I,
        ),
    ),
)
LABEL = {
    "ring_timeout": "ring timeout",
    "soft_recovered": "ring timeout (soft recovered)",
    "gpu_reset": "GPU reset",
    "ras_uncorrectable": "RAS uncorrectable error",
}
BDF = re.compile(r"\b([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\b")


class Event(BaseModel):
    kind: str
    bdf: str | None  # the PCI address the line names (None: it names none)
    ring: str | None = None
    line: str


def parse(lines: list[str]) -> list[Event]:
    """Each line that is an event -> Event (first matching kind wins)."""
    out = []
    for line in lines:
        for kind, pat in KINDS:
            m = pat.search(line)
            if m:
                b = BDF.search(line)
                ring = m.group(1) if kind in ("ring_timeout", "soft_recovered") else None
                out.append(
                    Event(kind=kind, bdf=b.group(1).lower() if b else None, ring=ring, line=line)
                )
                break
    return out


def _device(bdf: str) -> str:
    return bdf.rsplit(".", 1)[0]  # domain:bus:device (partitions share it)


def belongs(e: Event, g: GpuFacts) -> bool:
    if e.bdf is None or not g.bdf:
        return False
    return e.bdf == g.bdf.lower() or _device(e.bdf) == _device(g.bdf.lower())


def foreign(events: list[Event], facts: NodeFacts) -> list[Event]:
    """Events naming a PCI address that is none of the node's enumerated GPUs."""
    return [e for e in events if e.bdf and not any(belongs(e, g) for g in facts.gpus)]


def kernel_log(g: GpuFacts, facts: NodeFacts, p: KernelLogCheck) -> CheckResult:
    check = "gpu.kernel_log"
    log = facts.kernel_log
    if log is None or log.error is not None:
        why = log.error if log is not None else "the facts hold no kernel log"
        return CheckResult(
            check=check,
            status="unknown",
            required=p.required,
            evidence={"kernel_log": why},
            message=f"kernel log not read: {why}",
        )
    events = parse(log.lines)
    mine = [e for e in events if belongs(e, g)]
    loose = [e for e in events if e.bdf is None]
    status = "pass"
    counts: dict[str, int] = {}
    problems: list[str] = []
    for group, unattributed in ((mine, False), (loose, True)):
        for kind, _ in KINDS:
            hits = [e for e in group if e.kind == kind]
            if not hits:
                continue
            severity = p.unattributed if unattributed else getattr(p, kind)
            if getattr(p, kind) == "ignore" or severity == "ignore":
                continue
            counts[kind] = counts.get(kind, 0) + len(hits)
            rings = sorted({e.ring for e in hits if e.ring})
            problems.append(
                f"{len(hits)} {LABEL[kind]}{' event' if len(hits) == 1 else ' events'} since boot"
                + (f" ({', '.join(rings)})" if rings else "")
                + (" without a PCI address: cannot tell which GPU" if unattributed else "")
            )
            if RANK[severity] > RANK[status]:
                status = severity
    evidence: dict[str, Any] = {
        "source": log.source,
        "events": counts,
        "lines": [e.line for e in mine + loose][-5:],
    }
    return CheckResult(
        check=check,
        status=status,  # type: ignore[arg-type]
        required=p.required,
        evidence=evidence,
        message="; ".join(problems),
    )
