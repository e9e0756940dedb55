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
options:
  mode: {type: str, choices: [facts, apply], default: facts}
  root: {type: path, default: /}
  venv: {type: str, default: /opt/tuner/venv}
  wheelhouse: {type: str, default: /opt/tuner/wheelhouse}
  requirements: {type: list, elements: str, default: []}
  became: {type: bool, default: false}
  expect: {type: dict, description: "sha256 of the pushed tar and of every wheel (apply)"}
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
