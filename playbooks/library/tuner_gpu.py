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
options:
  root: {type: path, default: /}
  rocm_path: {type: str}
  name: {type: str}
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
