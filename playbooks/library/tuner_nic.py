#!/usr/bin/python
"""Ansible module: facts, apply, verify or roll back tuner's NIC settings on one host.

All the logic lives in module_utils/tuner_nic.py (the same file as agent/nic.py).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_knobs import Host, KnobError
from ansible.module_utils.tuner_nic import TUNER_NIC, apply, facts, rollback, verify

DOCUMENTATION = r"""
module: tuner_nic
short_description: Tune the scale-out NICs (MTU, rings, IRQ affinity, PCIe, RoCE ToS)
description:
  - Finds the host's ports of one NIC model by PCI vendor and device id and sets, per port,
    the MTU, the ring sizes (ethtool -G), the IRQ affinity to the port's NUMA node, the PCIe
    Max_Read_Request_Size and relaxed ordering (Device Control in the config space), priority
    flow control (dcb pfc) and the RDMA CM default RoCE type of service (configfs).
  - Saves the originals in /var/lib/tuner/nic.json before the first write; rollback restores
    them byte for byte.
options:
  mode:
    description: facts (read the NICs), apply, verify or rollback.
    type: str
    choices: [facts, apply, verify, rollback]
    required: true
  root:
    description: The host root every path is resolved under (no path may leave it).
    type: path
    default: /
  sim:
    description: A simulated node (runs only the node tree's own ethtool).
    type: bool
    default: false
  settings:
    description: >-
      The profile's nic section: model (pollara-400, thor2, connectx-7), interfaces, mtu,
      rings ({rx, tx}: a number or max), irq_affinity (numa), max_read_request (128..4096),
      relaxed_ordering (bool), roce_tos (0..255), pfc_priority (0..7, through dcb).
    type: dict
    default: {}
  lock_timeout:
    description: Seconds to wait for another tuner run's lock on the host.
    type: float
    default: 300
"""

EXAMPLES = r"""
- name: Tune the node's Thor 2 ports as tuner's nic-thor2 profile does
  tuner.tuner.tuner_nic:
    mode: apply
    settings:
      {model: thor2, mtu: 9000, rings: {rx: max, tx: max}, irq_affinity: numa, roce_tos: 104}
"""

RETURN = r"""
facts:
  description: >-
    The result: status (facts; apply unchanged/changed/would change/failed; verify
    ok/drift/failed; rollback nothing to do/would restore/restored/failed), message,
    bad_input (the host cannot take the profile, e.g. no NIC of the model), settings (apply
    and verify rows: id, interface, wanted, before/after or actual, status, message), files
    (rollback rows: path, status, message), ports and models (facts).
  returned: always
  type: dict
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec=TUNER_NIC.spec(),
        supports_check_mode=True,
    )
    p = module.params
    host = Host(root=p["root"], sim_kernel=p["sim"])
    try:
        if p["mode"] == "facts":
            res = {"status": "ok", **facts(host)}
            changed = False
        elif p["mode"] == "apply":
            res = apply(host, p["settings"], p["sim"], module.check_mode, p["lock_timeout"])
            changed = res["status"] == "changed"
        elif p["mode"] == "verify":
            res = verify(host, p["settings"], p["sim"])
            changed = False
        else:
            res = rollback(host, p["sim"], module.check_mode, p["lock_timeout"])
            changed = res["status"] == "restored"
    except (KnobError, OSError) as e:
        module.fail_json(msg=f"tuner_nic {p['mode']} failed: {e}", facts={})
        return
    if res["status"] == "failed" and not res.get("bad_input"):
        module.fail_json(msg=res.get("message") or "failed", facts=res, changed=changed)
    module.exit_json(changed=changed, facts=res)


if __name__ == "__main__":
    main()
