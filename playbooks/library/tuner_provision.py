#!/usr/bin/python
"""Ansible module: a node's facts for `tuner provision`, and its runtime (/opt/tuner/venv).

Runs under the node's own Python (standard library only). All the work is in
module_utils/tuner_provision_node.py (= agent/provision_node.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_provision_node import ProvisionError, apply, facts

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
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["mode"] == "facts":
        module.exit_json(changed=False, facts=facts(p["root"], p["venv"], p["became"]))
        return
    try:
        steps, after = apply(
            p["root"], p["venv"], p["wheelhouse"], p["requirements"], module.check_mode, p["became"]
        )
    except ProvisionError as e:
        module.fail_json(msg=str(e), facts=facts(p["root"], p["venv"], p["became"]))
        return
    module.exit_json(changed=bool(steps), results=[{"step": s} for s in steps], facts=after)


if __name__ == "__main__":
    main()
