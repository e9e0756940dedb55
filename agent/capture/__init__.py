"""Capture bundles (`tuner capture`, docs/capture.md): `node.py` reads a node (host side,
stdlib), `bmc.py` its BMC (Redfish GETs), `bundle.py` assembles, redacts, writes and reads
bundles back safely, `run.py` runs it on this node or the fleet."""
