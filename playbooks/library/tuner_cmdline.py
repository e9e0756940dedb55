#!/usr/bin/python
"""Ansible module: apply, verify or roll back the kernel command line on one host.

All the logic lives in module_utils/tuner_bootloader.py (the same file as agent/bootloader.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_bootloader import apply, rollback, verify
from ansible.module_utils.tuner_knobs import Host, KnobError
from ansible.module_utils.tuner_modargs import TUNER_CMDLINE

DOCUMENTATION = r"""
module: tuner_cmdline
short_description: Apply, verify or roll back the kernel command line (GRUB drop-in, grubby)
options:
  mode: {type: str, choices: [apply, verify, rollback], required: true}
  root: {type: path, default: /}
  sim: {type: bool, default: false}
  add: {type: list, elements: str, default: []}
  remove: {type: list, elements: str, default: []}
  lock_timeout: {type: float, default: 300}
  allow_boot_critical: {type: list, elements: str, default: []}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec=TUNER_CMDLINE.spec(),  # typed once: module_utils/tuner_modargs.py
        supports_check_mode=True,
    )
    p = module.params
    host = Host(root=p["root"], sim_kernel=p["sim"])
    try:
        if p["mode"] == "apply":
            res = apply(
                host,
                p["add"],
                p["remove"],
                p["sim"],
                module.check_mode,
                p["lock_timeout"],
                p["allow_boot_critical"],
            )
            changed = res["status"] == "changed"
        elif p["mode"] == "verify":
            res = verify(host, p["add"], p["remove"], p["sim"])
            changed = False
        else:
            res = rollback(host, p["sim"], module.check_mode, p["lock_timeout"])
            changed = res["status"] == "restored"
    except (KnobError, OSError) as e:
        module.fail_json(msg=f"tuner_cmdline {p['mode']} failed: {e}", facts={})
        return
    if res["status"] == "failed":
        module.fail_json(msg=res.get("message") or "failed", facts=res, changed=changed)
    module.exit_json(changed=changed, facts=res)


if __name__ == "__main__":
    main()
