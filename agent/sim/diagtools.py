"""AMD's diagnostic tools on simulated nodes: stand-ins that print the real formats
(agent/sim/diagstandin.py), driven by a per-node diagnostics state (docs/sim-diag.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from agent.sim.gpu.state import NodeGpuState

STATE = "opt/rocm/share/tuner-sim/diag-state.json"
TOOLS = (
    "opt/rocm/bin/rvs",
    "opt/rccl-tests/build/all_reduce_perf",
    "opt/rocm/bin/TransferBench",
    "opt/ompi/bin/mpirun",
)
FLEET = "opt/rocm/share/tuner-sim/fleet.json"  # host name -> node tree (the mpirun stand-in)

# What a diagnostics state may hold (besides `gpus`): per-GPU factors on healthy figures,
# per-link factors ("bdfA>bdfB"), links with no XGMI path, tests whose tool hangs.
KINDS = ("gflops", "hbm", "h2d", "power", "collective", "gpu_links", "links")
# links with no XGMI path, tests whose tool hangs, the node's network factor (across nodes)
OTHER = ("down_links", "hang", "net")


def diag_state(state: NodeGpuState, faults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The node's diagnostics state: its enumerated GPUs as RVS and HIP number them
    (RVS prints the KFD gpu_id and node; HIP_VISIBLE_DEVICES counts HIP indices)."""
    gpus = []
    for g in state.gpus:
        if not g.enumerated:
            continue
        gpus.append(
            {
                "bdf": g.bdf,
                "gpu_id": g.kfd_id,
                "node": g.kfd_node_id,
                "hip": g.hip_id,
                "numa": g.numa_node or 0,
            }
        )
    out: dict[str, Any] = {"gpus": gpus}
    for k, v in (faults or {}).items():
        if k not in (*KINDS, *OTHER):
            raise ValueError(f"unknown diagnostics fault {k!r}")
        out[k] = _by_bdf(state, v)
    return out


def _by_bdf(state: NodeGpuState, v: Any) -> Any:
    """`@N` (GPU N of the node) -> its BDF, in keys ("@3", "@3>@5") and list items."""

    def one(s: str) -> str:
        return ">".join(
            (state.gpus[int(x[1:])].bdf or x) if x.startswith("@") else x for x in s.split(">")
        )

    if isinstance(v, dict):
        return {one(k): x for k, x in v.items()}
    if isinstance(v, list):
        return [one(x) if isinstance(x, str) else x for x in v]
    return v


def install_diag(root: Path, state: NodeGpuState, faults: dict[str, Any] | None = None) -> None:
    """Write the node's diagnostics state and the two tool stand-ins under `root`."""
    st = root / STATE
    st.parent.mkdir(parents=True, exist_ok=True)
    st.write_text(json.dumps(diag_state(state, faults), indent=1) + "\n")
    src = Path(__file__).with_name("diagstandin.py")
    for rel in TOOLS:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        dst.chmod(0o755)


def set_faults(root: Path, faults: dict[str, Any]) -> None:
    """Change a running node's diagnostics faults (tests and scenarios)."""
    p = root / STATE
    data = json.loads(p.read_text())
    for k in (*KINDS, *OTHER):
        data.pop(k, None)
    for k, v in faults.items():
        if k not in (*KINDS, *OTHER):
            raise ValueError(f"unknown diagnostics fault {k!r}")
        data[k] = v
    p.write_text(json.dumps(data, indent=1) + "\n")


def install_fleet_map(roots: dict[str, Path]) -> None:
    """Every node's map of the fleet's host names to node trees: the mpirun stand-in
    reads each host's state from it (a real mpirun starts its daemons over ssh)."""
    data = json.dumps({name: str(root) for name, root in roots.items()}, indent=1) + "\n"
    for root in roots.values():
        p = root / FLEET
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
