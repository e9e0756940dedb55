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
short_description: Apply, verify or roll back tuner's OS settings under a host root
description:
  - Sets sysctls, transparent huge pages, the CPU frequency governor and CPU idle states
    as knob specs describe them (tuner's profiles make them), saves the original of every
    file before the first write (/var/lib/tuner/originals.json) and rolls back byte for byte.
  - Standard library only on the host (module_utils tuner_knobs).
author: [tuner engineers]
options:
  mode:
    description: apply (converge; with check mode, plan), verify (read only) or rollback.
    type: str
    choices: [apply, verify, rollback]
    required: true
  root:
    description: The host root every path is resolved under; no path may leave it.
    type: path
    default: /
  sim_kernel:
    description: Kernel attribute files are plain files (tuner's simulator).
    type: bool
    default: false
  settings:
    description: >-
      Knob specs, each {id, kind (sysctl, selection, governor, cpuidle), value, and name,
      path or state as the kind needs}.
    type: list
    elements: dict
    default: []
  persist:
    description: Also write /etc/sysctl.d/90-tuner.conf and /etc/tmpfiles.d/tuner.conf.
    type: bool
    default: true
  lock_timeout:
    description: Seconds to wait for another tuner run's lock on the host.
    type: float
    default: 300
"""

EXAMPLES = r"""
- name: Apply two settings and keep them across reboots
  tuner.tuner.tuner_os:
    mode: apply
    settings:
      - id: thp.enabled
        kind: selection
        path: /sys/kernel/mm/transparent_hugepage/enabled
        value: always
      - {id: sysctl.kernel.numa_balancing, kind: sysctl, name: kernel.numa_balancing, value: "0"}
"""

RETURN = r"""
results:
  description: >-
    One row per setting (apply: id, wanted, before, after, status unchanged/changed/would
    change/failed/missing, message; verify: id, wanted, actual, status ok/drift/missing/failed,
    message) or per file (rollback: path, status, message).
  returned: always
  type: list
  elements: dict
facts:
  description: >-
    verify only, the topology the OS shows (logical_cpus, sockets, cores, threads_per_core,
    numa_nodes) and the node agent's last result.
  returned: always
  type: dict
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
