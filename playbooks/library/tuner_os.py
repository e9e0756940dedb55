#!/usr/bin/python
"""Ansible module: apply, verify or roll back tuner's OS settings on one host.

All the knob logic lives in module_utils/tuner_knobs.py (the same file as agent/knobs.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_knobs import (
    Host,
    KnobError,
    apply,
    host_facts,
    load_agent_result,
    rollback,
    verify,
)
from ansible.module_utils.tuner_modargs import TUNER_OS

DOCUMENTATION = r"""
module: tuner_os
short_description: Apply, verify or roll back tuner OS settings under a host root
options:
  mode: {type: str, choices: [apply, verify, rollback], required: true}
  root: {type: path, default: /}
  sim_kernel: {type: bool, default: false}
  settings: {type: list, elements: dict, default: []}
  persist: {type: bool, default: true}
  lock_timeout: {type: float, default: 300}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec=TUNER_OS.spec(),  # typed once: module_utils/tuner_modargs.py
        supports_check_mode=True,
    )
    p = module.params
    host = Host(root=p["root"], sim_kernel=p["sim_kernel"])
    facts: dict = {}
    try:
        if p["mode"] == "apply":
            results = apply(
                host,
                p["settings"],
                p["persist"],
                module.check_mode,
                p["lock_timeout"],
                record=True,  # the node agent re-applies what apply wanted (applied.json)
            )
            changed = any(r["status"] in ("changed", "would change") for r in results)
        elif p["mode"] == "verify":
            results = verify(host, p["settings"], p["persist"])
            facts = host_facts(host)
            agent = load_agent_result(host)
            if agent is not None:
                facts["agent"] = agent
            changed = False
        else:
            results = rollback(host, module.check_mode, p["lock_timeout"])
            changed = any(r["status"] in ("restored", "removed") for r in results)
    except (KnobError, OSError) as e:
        module.fail_json(msg=f"tuner_os {p['mode']} failed: {e}", results=[])
        return
    failed = any(r["status"] == "failed" for r in results)
    if failed:
        module.fail_json(msg="some settings failed", results=results, changed=changed, facts=facts)
    module.exit_json(changed=changed, results=results, facts=facts)


if __name__ == "__main__":
    main()
