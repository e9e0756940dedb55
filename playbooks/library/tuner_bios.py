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
short_description: Plan, apply, verify or restore tuner BIOS settings through a Redfish BMC
options:
  mode: {type: str, choices: [plan, apply, verify, restore], required: true}
  url: {type: str, required: true}
  username: {type: str, required: true}
  password: {type: str, no_log: true}
  password_file: {type: path}
  auth: {type: str, choices: [basic, session], default: basic}
  system: {type: str}
  validate_certs: {type: bool, default: true}
  ca_bundle: {type: path}
  timeout: {type: float, default: 30}
  reset_timeout: {type: float, default: 1200}
  poll_interval: {type: float, default: 2}
  reboot: {type: str, choices: [never, if-needed], default: never}
  reset_type: {type: str, default: GracefulRestart}
  also_reset: {type: bool, default: false}
  settings: {type: dict, default: {}}
  host: {type: str, description: the inventory host name (the record's key)}
  record_dir: {type: path, description: where tuner keeps the BIOS record (apply, restore)}
  stage_dir: {type: path, description: where to write this host's current stage (progress)}
  lock_timeout: {type: float, default: 300, description: seconds to wait for another run on the BMC}
notes:
  - The password comes from I(password) (e.g. an Ansible-vault variable), else the first line
    of I(password_file), else the environment variable TUNER_BMC_PASSWORD.
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
