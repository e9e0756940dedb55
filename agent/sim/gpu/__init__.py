"""Simulated AMD GPUs: a ``libamd_smi.so`` the real ``amdsmi`` package loads via ROCM_PATH.

- :func:`build_library` compiles the library (C source + stubs generated from the installed
  amdsmi wrapper) with the system C compiler.
- :class:`NodeGpuState` / :class:`GpuState` describe a node's GPUs; :func:`write_state`
  renders the state file the library re-reads at every ``amdsmi_init``;
  :func:`install_node` lays a simulated node out under a root directory.

State file format: docs/sim-gpu-state.md.
"""

from agent.sim.gpu.build import BuildError, build_library
from agent.sim.gpu.state import (
    BadPage,
    BadPageStatus,
    CperEntry,
    DriverInfo,
    EccCounts,
    GpuProcess,
    GpuState,
    NodeGpuState,
    PcieState,
    Temperatures,
    TempSensor,
    VbiosInfo,
    XgmiState,
    install_node,
    render_state,
    write_pci_view,
    write_state,
)

__all__ = [
    "BadPage",
    "BadPageStatus",
    "BuildError",
    "CperEntry",
    "DriverInfo",
    "EccCounts",
    "GpuProcess",
    "GpuState",
    "NodeGpuState",
    "PcieState",
    "TempSensor",
    "Temperatures",
    "VbiosInfo",
    "XgmiState",
    "build_library",
    "install_node",
    "render_state",
    "write_pci_view",
    "write_state",
]
