#!/usr/bin/python
"""Ansible module: a node's facts for `tuner provision`, and its runtime (/opt/tuner/venv).

Runs under the node's own Python (standard library only). All the work is in
module_utils/tuner_provision_node.py (= agent/provision_node.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_provision_node import ProvisionError, apply, check_expect, facts

DOCUMENTATION = r"""
module: tuner_provision
short_description: Report a node's ROCm/amdsmi/Python and make tuner's node runtime
description:
  - facts reports the node's Python, ROCm and amdsmi; apply makes tuner's runtime (a venv
    with amdsmi from the node's ROCm and tuner's requirements from a wheelhouse).
author: [tuner engineers]
options:
  mode:
    description: facts (read only) or apply.
    type: str
    choices: [facts, apply]
    default: facts
  root:
    description: The host root.
    type: path
    default: /
  venv:
    description: Where tuner's runtime goes.
    type: str
    default: /opt/tuner/venv
  wheelhouse:
    description: The wheels copied to the node.
    type: str
    default: /opt/tuner/wheelhouse
  requirements:
    description: Requirement lines installed from the wheelhouse only.
    type: list
    elements: str
    default: []
  became:
    description: The task runs with become (recorded in the facts).
    type: bool
    default: false
  expect:
    description: sha256 of the pushed tar and of every wheel (apply).
    type: dict
  tuner:
    description: tuner's own wheel in the wheelhouse (wheel, sha256, version), installed
      with --no-deps (apply).
    type: dict
"""

EXAMPLES = r"""
- name: What the node has
  tuner.tuner.tuner_provision:
    mode: facts
"""

RETURN = r"""
facts:
  description: The node's Python, ROCm and amdsmi versions and tuner's runtime state.
  returned: always
  type: dict
results:
  description: apply, the steps taken.
  returned: when mode is apply
  type: list
  elements: dict
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["facts", "apply"], "default": "facts"},
            "root": {"type": "path", "default": "/"},
            "venv": {"type": "str", "default": "/opt/tuner/venv"},
            "wheelhouse": {"type": "str", "default": "/opt/tuner/wheelhouse"},
            "requirements": {"type": "list", "elements": "str", "default": []},
            "became": {"type": "bool", "default": False},
            "expect": {"type": "dict", "default": None},
            "tuner": {"type": "dict", "default": None},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["mode"] == "facts":
        try:
            module.exit_json(changed=False, facts=facts(p["root"], p["venv"], p["became"]))
        except ProvisionError as e:
            module.fail_json(msg=str(e))
        return
    try:
        expect = check_expect(p["expect"])  # apply never runs without the controller's hashes
        steps, after = apply(
            p["root"],
            p["venv"],
            p["wheelhouse"],
            p["requirements"],
            module.check_mode,
            p["became"],
            expect,
            p["tuner"],
        )
    except ProvisionError as e:
        try:
            f = facts(p["root"], p["venv"], p["became"])
        except ProvisionError:
            f = {}
        module.fail_json(msg=str(e), facts=f)
        return
    module.exit_json(changed=bool(steps), results=[{"step": s} for s in steps], facts=after)


if __name__ == "__main__":
    main()
