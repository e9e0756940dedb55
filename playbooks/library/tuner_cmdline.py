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
description:
  - Adds and removes kernel parameters through a GRUB drop-in (/etc/default/grub.d/90-tuner.cfg
    and update-grub or grub2-mkconfig) or grubby, saving the originals first; in effect after a
    reboot (verify reports pending until then).
author: [tuner engineers]
options:
  mode:
    description: apply, verify or rollback.
    type: str
    choices: [apply, verify, rollback]
    required: true
  root:
    description: The host root every path is resolved under.
    type: path
    default: /
  sim:
    description: A simulated node (only its own update-grub script is run).
    type: bool
    default: false
  add:
    description: Parameters (name or name=value) to have on the command line.
    type: list
    elements: str
    default: []
  remove:
    description: Parameters to take off (name, any value; or name=value).
    type: list
    elements: str
    default: []
  lock_timeout:
    description: Seconds to wait for another tuner run's lock on the host.
    type: float
    default: 300
  allow_boot_critical:
    description: Boot-critical parameters (init=, rd.break, ...) the operator allows by name.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: IOMMU pass-through from the next boot
  tuner.tuner.tuner_cmdline:
    mode: apply
    add: [iommu=pt]
"""

RETURN = r"""
facts:
  description: >-
    status (apply unchanged/changed/would change/failed; verify ok/pending/drift/failed;
    rollback nothing to do/would restore/restored/failed), tool, config (as wanted/differs),
    booted (/proc/cmdline), off (+param not booted, -param still booted), pending, files,
    message.
  returned: always
  type: dict
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
