#!/usr/bin/python
"""Ansible module: keep the gate's verdict of this node where the node agent reads it.

Writes `/var/lib/tuner/gate.json` (atomically, under the host root) and removes
`/var/lib/tuner/gpu-facts-stale.json` when every GPU event in it is older than the facts
this verdict came from (an event during the check keeps it). Standard library and
tuner_knobs only.
"""

from __future__ import annotations

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_knobs import Host, KnobError, read_record

GATE = "/var/lib/tuner/gate.json"
STALE = "/var/lib/tuner/gpu-facts-stale.json"


DOCUMENTATION = r"""
module: tuner_gate_record
short_description: Keep the GPU gate's verdict on a node for tuner's node agent
description:
  - Writes /var/lib/tuner/gate.json atomically and clears the GPU-facts-stale marker when
    every event in it is older than the facts of this verdict.
author: [tuner engineers]
options:
  root:
    description: The host root.
    type: path
    default: /
  record:
    description: The gate's verdict for this node (tuner check makes it).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Keep a verdict
  tuner.tuner.tuner_gate_record:
    record: {time: 1767225600, usable: 8, verdict: pass}
"""

RETURN = r"""
stale_cleared:
  description: The stale marker was removed.
  returned: success
  type: bool
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "record": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    host = Host(p["root"])
    rec = p["record"]
    text = json.dumps(rec, indent=1, sort_keys=True) + "\n"
    try:
        old = host.read(GATE) if host.exists(GATE) else None
        stale_cleared = False
        if host.exists(STALE):
            try:
                events = read_record(host.path(STALE), STALE).get("events") or []
                newest = max(float(e.get("time") or 0) for e in events) if events else 0.0
            except (KnobError, ValueError, AttributeError, TypeError):
                newest = float("inf")  # unreadable: keep it, the next gate decides again
            if newest < float(rec.get("facts_time") or 0):
                stale_cleared = True
                if not module.check_mode:
                    host.remove_file(STALE)
        changed = old != text or stale_cleared
        if changed and old != text and not module.check_mode:
            host.write_file(GATE, text, [])
    except KnobError as e:
        module.fail_json(msg=f"tuner_gate_record: {e}")
        return
    module.exit_json(changed=changed, stale_cleared=stale_cleared)


if __name__ == "__main__":
    main()
