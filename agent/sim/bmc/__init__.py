"""Simulated Redfish BMCs (Dell, HPE, Supermicro, AMD CBS personalities) for tests and demos.

Run ``python -m agent.sim.bmc --config FILE`` or, in-process::

    handle = start_bmcs({"nodes": [...]})
    ...
    handle.stop()

See docs/sim-bmc.md.
"""

from agent.sim.bmc.config import FAULT_NAMES, Faults, NodeConfig, load_config
from agent.sim.bmc.node import BmcNode
from agent.sim.bmc.personalities import VENDORS, Personality, get_personality
from agent.sim.bmc.server import BmcHandle, BmcServer, generate_self_signed, start_bmcs

__all__ = [
    "FAULT_NAMES",
    "VENDORS",
    "BmcHandle",
    "BmcNode",
    "BmcServer",
    "Faults",
    "NodeConfig",
    "Personality",
    "generate_self_signed",
    "get_personality",
    "load_config",
    "start_bmcs",
]
