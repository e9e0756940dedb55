"""BIOS tuning through each node's BMC (Redfish): planning, the client, runs and reports.

`plan.py`, `record.py`, `sequence.py` and `redfish.py` also run inside the `tuner_bios` Ansible
module (playbooks/module_utils symlinks). See docs/bios.md.
"""
