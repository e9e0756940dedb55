#!/usr/bin/python
"""Ansible module: gather a node's GPU facts (amdsmi, PCI bus, host) for tuner's gate.

Read-only. All the work is in module_utils/tuner_gpu_collect.py (= agent/gpu/collect.py);
the checks are evaluated on the controller.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_gpu_collect import RocmNotFound, gather

DOCUMENTATION = r"""
module: tuner_gpu
short_description: Gather GPU facts for tuner's health gate
description:
  - Reads every GPU through amdsmi and the PCI bus view, plus the node's driver and device
    nodes, read only; tuner's checks judge them on the control node.
author: [tuner engineers]
requirements: [amdsmi (ROCm)]
options:
  root:
    description: The host root.
    type: path
    default: /
  rocm_path:
    description: ROCm's folder (default /opt/rocm under the root).
    type: str
  name:
    description: The node's name in the facts (default the host name).
    type: str
"""

EXAMPLES = r"""
- name: GPU facts of a node
  tuner.tuner.tuner_gpu: {}
  register: gpu
"""

RETURN = r"""
facts:
  description: The node's GPU facts (tuner's NodeFacts - GPUs, firmware, links, PCI, node access).
  returned: success
  type: dict
rocm_missing:
  description: ROCm or amdsmi was not found on the node.
  returned: failure
  type: bool
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "rocm_path": {"type": "str", "default": None},
            "name": {"type": "str", "default": None},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        facts = gather(p["root"], p["rocm_path"], p["name"])
    except RocmNotFound as e:
        module.fail_json(msg=str(e), rocm_missing=True)
        return
    module.exit_json(changed=False, facts=facts)


if __name__ == "__main__":
    main()
