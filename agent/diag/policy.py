"""The diagnostics policy (checks/diagnostics.yml): tests, levels, costs and thresholds.

Typed values only; a bad policy is bad input (exit 2, file and field named)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.errors import BadInput
from agent.paths import share_dir
from agent.yamlfile import load_model


class _T(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    level: int = Field(default=2, ge=2, le=3)
    seconds: float = Field(gt=0, le=86400)
    value: float = Field(default=1, gt=0, le=100)


class LinkTest(_T):  # rvs.pbqt
    min_link_gbps: float | None = Field(default=None, gt=0)
    node_relative: float = Field(default=0.25, gt=0, lt=1)


class PcieTest(_T):  # rvs.pebb
    min_h2d_gbps: float | None = Field(default=None, gt=0)
    node_relative: float = Field(default=0.25, gt=0, lt=1)


class CollectiveTest(_T):  # rccl.all_reduce
    message_bytes: int = Field(default=8 * 2**30, gt=0)
    min_busbw_gbps: float | None = Field(default=None, gt=0)


class HbmTest(_T):  # rvs.babel
    min_triad_mbps: float | None = Field(default=None, gt=0)
    node_relative: float = Field(default=0.15, gt=0, lt=1)


class ComputeTest(_T):  # rvs.gst
    target_gflops: float = Field(gt=0)
    tolerance: float = Field(default=0.05, ge=0, lt=1)


class PowerTest(_T):  # rvs.iet
    target_power_w: float = Field(gt=0)


class TransferTest(_T):  # transferbench.p2p
    min_uni_gbps: float | None = Field(default=None, gt=0)  # every CPU<->GPU, GPU->GPU copy
    min_bi_gbps: float | None = Field(default=None, gt=0)  # GPU<->GPU, both ways summed
    node_relative: float = Field(default=0.25, gt=0, lt=1)


class ClusterTest(_T):  # rccl.all_reduce.cluster (level 3, across nodes)
    message_bytes: int = Field(default=8 * 2**30, gt=0)
    min_busbw_gbps: float | None = Field(default=None, gt=0)
    relative: float = Field(default=0.25, gt=0, lt=1)  # a set this far below the best is slow
    max_runs: int = Field(default=12, ge=1, le=200)  # bisect reruns at most


class Tests(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    pbqt: LinkTest | None = Field(default=None, alias="rvs.pbqt")
    pebb: PcieTest | None = Field(default=None, alias="rvs.pebb")
    all_reduce: CollectiveTest | None = Field(default=None, alias="rccl.all_reduce")
    babel: HbmTest | None = Field(default=None, alias="rvs.babel")
    gst: ComputeTest | None = Field(default=None, alias="rvs.gst")
    iet: PowerTest | None = Field(default=None, alias="rvs.iet")
    transfer: TransferTest | None = Field(default=None, alias="transferbench.p2p")
    cluster: ClusterTest | None = Field(default=None, alias="rccl.all_reduce.cluster")

    def named(self) -> dict[str, _T]:
        """Test name (as in the policy file) -> its settings, enabled ones only."""
        out: dict[str, _T] = {}
        for attr, f in type(self).model_fields.items():
            t = getattr(self, attr)
            if t is not None and t.enabled:
                out[f.alias or attr] = t
        return out


class Stragglers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Literal["warn", "fail"] = "fail"  # warn: reported, the GPUs stay usable
    score: float = Field(default=3.5, gt=0)
    min_drop: float = Field(default=0.05, ge=0, lt=1)
    min_samples: int = Field(default=4, ge=3)


class Bisect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stand_out: float = Field(default=0.15, gt=0, lt=10)


class DiagPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    tests: Tests = Tests()
    stragglers: Stragglers = Stragglers()
    bisect: Bisect = Bisect()
    file: str | None = None


def default_path() -> Path:
    return share_dir("checks") / "diagnostics.yml"


def load_diag_policy(path: str | Path | None = None) -> DiagPolicy:
    p = Path(path) if path else default_path()
    if not p.is_file():
        raise BadInput(f"diagnostics policy {p} not found", field="--diag-policy")
    pol, _ = load_model(p, DiagPolicy, "diagnostics policy")
    pol.file = str(p)
    return pol
