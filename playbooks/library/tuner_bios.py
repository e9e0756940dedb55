#!/usr/bin/python
"""Ansible module: plan, apply, verify or restore tuner's BIOS settings on one host (its BMC).

Runs on the control node (the playbook delegates to localhost) and talks Redfish to the
host's BMC. The whole sequence lives in module_utils/tuner_bios_sequence.py (the same file as
agent/bios/sequence.py; its docstring describes the modes), planning in tuner_bios_plan.py,
the record in tuner_bios_record.py and the HTTP client in tuner_redfish.py.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_bios_sequence import BiosArgs, Outcome
from ansible.module_utils.tuner_bios_sequence import restore as _restore
from ansible.module_utils.tuner_bios_sequence import run as _run
from ansible.module_utils.tuner_modargs import TUNER_BIOS

DOCUMENTATION = r"""
module: tuner_bios
short_description: Plan, apply or verify tuner BIOS settings through a Redfish BMC
description:
  - Runs on the control node and talks Redfish to the node's BMC - reads the BIOS
    attributes and registry, plans, records originals, PATCHes, resets (with I(reboot) if-needed),
    waits for POST and verifies; restore puts the recorded originals back.
author: [tuner engineers]
options:
  mode:
    description: plan, apply, verify or restore.
    type: str
    choices: [plan, apply, verify, restore]
    required: true
  url:
    description: The BMC's Redfish base URL.
    type: str
    required: true
  username:
    description: The BMC user.
    type: str
    required: true
  password:
    description: The BMC password (e.g. an Ansible-vault variable).
    type: str
  password_file:
    description: A file whose first line is the BMC password.
    type: path
  auth:
    description: HTTP basic or a Redfish session.
    type: str
    choices: [basic, session]
    default: basic
  system:
    description: The Redfish system to work on (default the only one).
    type: str
  validate_certs:
    description: Verify the BMC's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description: CA certificates to verify the BMC with.
    type: path
  timeout:
    description: Seconds per Redfish request.
    type: float
    default: 30
  reset_timeout:
    description: Seconds to wait for the node to come back after a reset.
    type: float
    default: 1200
  poll_interval:
    description: Seconds between polls while waiting.
    type: float
    default: 2
  reboot:
    description: Reset the system when BIOS values wait for it.
    type: str
    choices: [never, if-needed]
    default: never
  reset_type:
    description: The Redfish ResetType of the reset.
    type: str
    default: GracefulRestart
  also_reset:
    description: Reset even when no BIOS value waits (another layer needs the reboot).
    type: bool
    default: false
  settings:
    description: Vendor-neutral BIOS settings (nps, smt, determinism...) and vendor_attributes.
    type: dict
    default: {}
  host:
    description: The inventory host name (the record's key).
    type: str
  record_dir:
    description: Where tuner keeps the BIOS record (apply, restore).
    type: path
  stage_dir:
    description: Where to write this host's current stage (progress).
    type: path
  lock_timeout:
    description: Seconds to wait for another tuner run on the same BMC.
    type: float
    default: 300
notes:
  - The password comes from I(password), else the first line of I(password_file), else the
    environment variable TUNER_BMC_PASSWORD.
"""

EXAMPLES = r"""
- name: Plan the BIOS changes of a node
  tuner.tuner.tuner_bios:
    mode: plan
    url: https://bmc01.example
    username: admin
    password_file: /etc/tuner/bmc-password
    settings: {nps: 1, smt: false}
  delegate_to: localhost
"""

RETURN = r"""
results:
  description: >-
    One row per BIOS attribute (name, wanted, current, status) or, for restore, per
    restored value.
  returned: always
  type: list
  elements: dict
facts:
  description: >-
    What the BMC showed (vendor, system, registry, the reset and reboot state, the stages
    done).
  returned: always
  type: dict
"""


def run(p: dict[str, Any], check_mode: bool) -> tuple[bool, dict[str, Any]]:
    """mode plan/apply/verify on a params dict -> (failed, result)."""
    o: Outcome = _run(BiosArgs.from_params(p), check_mode)
    return o.failed, o.result()


def restore(p: dict[str, Any], check_mode: bool) -> tuple[bool, dict[str, Any]]:
    """mode restore on a params dict -> (failed, result)."""
    o: Outcome = _restore(BiosArgs.from_params(p), check_mode)
    return o.failed, o.result()


def main() -> None:
    module = AnsibleModule(argument_spec=TUNER_BIOS.spec(), supports_check_mode=True)
    mode = restore if module.params["mode"] == "restore" else run
    failed, res = mode(module.params, module.check_mode)
    if failed:
        module.fail_json(**res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
