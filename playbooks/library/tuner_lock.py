#!/usr/bin/python
"""Ansible module: say whether another tuner run holds tuner's lock on this host, and whose.

Runs just before tuner_os (playbooks/os.yml) and never waits or fails: when the lock is held,
its result carries `tuner_stage`, the words tuner's progress shows for the host while
tuner_os waits ("waiting for another tuner run's lock on this host (held by pid 4242 on ctl,
since ...); gives up at 04:31:07 UTC (--lock-timeout 300 s)"). The lock logic is
module_utils/tuner_knobs.py's (the same file as agent/knobs.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_knobs import Host, lock_holder, waiting_words

DOCUMENTATION = r"""
module: tuner_lock
short_description: Report who holds tuner's lock on a host (never waits)
description:
  - Read only. Says whether another tuner run holds the host's lock, which (pid, host, start),
    and when a run waiting on it would give up.
author: [tuner engineers]
options:
  root:
    description: The host root.
    type: path
    default: /
  lock_timeout:
    description: Seconds a waiting run would wait (to say when it gives up).
    type: float
    default: 300
"""

EXAMPLES = r"""
- name: Who holds tuner's lock here
  tuner.tuner.tuner_lock:
"""

RETURN = r"""
holder:
  description: The lock's holder (pid, host, start), or null when the lock is free.
  returned: always
  type: dict
tuner_stage:
  description: What a run waiting on it says (whose lock, until when it waits).
  returned: when the lock is held
  type: str
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "lock_timeout": {"type": "float", "default": 300.0},
        },
        supports_check_mode=True,
    )
    holder = lock_holder(Host(root=module.params["root"], sim_kernel=False))
    res = {"changed": False, "holder": holder}
    if holder:
        res["tuner_stage"] = waiting_words(holder, module.params["lock_timeout"])
    module.exit_json(**res)


if __name__ == "__main__":
    main()
