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
description:
  - Read only. Reads what tuner's capture bundle holds of a node (/proc, /sys subsets,
    versions, amdgpu kernel log lines, every amdsmi call with its status) and returns it.
author: [tuner engineers]
options:
  root:
    description: The host root.
    type: path
    default: /
  rocm_path:
    description: Where ROCm is (default ROCm's own search).
    type: str
  name:
    description: The inventory host name, recorded in the bundle.
    type: str
  sysctls:
    description: The sysctl keys to read (the ones tuner's profiles manage).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read this node for a bundle
  tuner.tuner.tuner_capture:
    name: "{{ inventory_hostname }}"
"""

RETURN = r"""
facts:
  description: >-
    The files read (path, content, hash), what could not be read and why, and the amdsmi
    calls.
  returned: always
  type: dict
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
