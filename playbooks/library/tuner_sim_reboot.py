#!/usr/bin/python
"""Ansible module (control node, simulated fleet only): boot a simulated node again.

The simulator's equivalent of an OS reboot: agent.sim.nodetree.reboot on the node tree (kernel
files back to boot values, sysctl.d/tmpfiles.d replayed, /proc/cmdline from grub.cfg), the
same as `tuner sim reboot NAME`. Refuses any folder that is not a simulated node tree.
"""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: tuner_sim_reboot
short_description: Reboot a simulated node tree (tuner's simulator only)
options:
  root: {type: path, required: true}
"""

MARK = "var/lib/tuner-sim/topology.json"


def main() -> None:
    module = AnsibleModule(argument_spec={"root": {"type": "path", "required": True}})
    root = os.path.realpath(module.params["root"])
    if root == "/" or not os.path.isfile(os.path.join(root, MARK)):
        module.fail_json(msg=f"{root} is not a simulated node tree (no {MARK}): not rebooted")
    try:
        from pathlib import Path

        from agent.sim.nodetree import reboot
    except ImportError as e:
        module.fail_json(msg=f"the simulator is not importable on the control node: {e}")
        return
    reboot(Path(root))
    with open(os.path.join(root, "proc/cmdline"), encoding="utf-8") as f:
        cmdline = f.read().strip()
    module.exit_json(changed=True, rebooted=True, cmdline=cmdline)


if __name__ == "__main__":
    main()
