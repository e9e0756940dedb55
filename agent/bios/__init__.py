"""BIOS tuning through each node's BMC (Redfish): planning, the client, runs and reports.

`plan.py` and `redfish.py` are stdlib only: they also run inside the `tuner_bios` Ansible
module (playbooks/module_utils symlinks). See docs/bios.md.
"""
