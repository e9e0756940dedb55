#!/usr/bin/python
"""Ansible module: read a node for tuner capture (files, kernel log lines, amdsmi calls).

Read-only. The work is in module_utils/tuner_capture_node.py (= agent/capture/node.py) and
the GPU collector's recording hook (module_utils/tuner_gpu_collect.py = agent/gpu/collect.py);
the controller assembles the bundle.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_capture_node import read_node
from ansible.module_utils.tuner_gpu_collect import RocmNotFound, gather

DOCUMENTATION = r"""
module: tuner_capture
short_description: Read a node for a tuner capture bundle
options:
  root: {type: path, default: /}
  rocm_path: {type: str}
  name: {type: str}
  sysctls: {type: list, elements: str, default: []}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "rocm_path": {"type": "str", "default": None},
            "name": {"type": "str", "default": None},
            "sysctls": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    facts: dict[str, Any] = {"node": read_node(p["root"], p["sysctls"], p["name"])}
    calls: list[dict[str, Any]] = []
    try:
        gather(p["root"], p["rocm_path"], p["name"], record=calls)
        facts["calls"] = calls
    except RocmNotFound as e:
        facts["calls"] = None
        facts["amdsmi_error"] = str(e)
    module.exit_json(changed=False, facts=facts)


if __name__ == "__main__":
    main()
