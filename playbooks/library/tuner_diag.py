#!/usr/bin/python
"""Ansible module: run tuner's planned diagnostics on a node (AMD's RVS and rccl-tests).

Stresses the GPUs but changes no setting. All the work is in module_utils/tuner_diag_node.py
(= agent/diag/node.py); the output is parsed and judged on the controller."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_diag_node import run_plan

DOCUMENTATION = r"""
module: tuner_diag
short_description: Run tuner's active GPU diagnostics on a node
options:
  root: {type: path, default: /}
  tests: {type: list, elements: dict, required: true}
  gpus: {type: list, elements: dict, required: true}
  narrow: {type: dict}
  budget: {type: float}
  rvs: {type: path}
  all_reduce_perf: {type: path}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "tests": {"type": "list", "elements": "dict", "required": True},
            "gpus": {"type": "list", "elements": "dict", "required": True},
            "narrow": {"type": "dict", "default": None},
            "budget": {"type": "float", "default": None},
            "rvs": {"type": "path", "default": None},
            "all_reduce_perf": {"type": "path", "default": None},
        },
        supports_check_mode=False,
    )
    p = module.params
    tools = {k: p[k] for k in ("rvs", "all_reduce_perf") if p[k]}
    runs = run_plan(p["root"], p["tests"], p["gpus"], p["narrow"], p["budget"], tools)
    module.exit_json(changed=False, facts={"runs": runs})


if __name__ == "__main__":
    main()
