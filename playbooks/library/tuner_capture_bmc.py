#!/usr/bin/python
"""Ansible module: read a host's BMC for tuner capture (Redfish GETs only).

Runs on the control node (the playbook delegates to localhost). The work is in
module_utils/tuner_capture_bmc.py (= agent/capture/bmc.py) on tuner's Redfish client
(module_utils/tuner_redfish.py). The password is used for the requests and never returned.
"""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_capture_bmc import read_bmc
from ansible.module_utils.tuner_redfish import BmcClient, RedfishError

DOCUMENTATION = r"""
module: tuner_capture_bmc
short_description: Read a BMC's Redfish resources for a tuner capture bundle
description:
  - Read only (GET). Reads the service root, the System, its Bios, the settings object and the
    whole attribute registry, in DMTF's mockup layout; no credential enters the result.
author: [tuner engineers]
options:
  url:
    description: The BMC's Redfish base URL.
    type: str
    required: true
  username:
    description: The BMC user.
    type: str
    required: true
  password:
    description: The BMC password.
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
    description: The Redfish system (default the only one).
    type: str
  validate_certs:
    description: Verify the BMC's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description: CA certificates to verify the BMC with.
    type: path
  timeout:
    description: Seconds per request.
    type: float
    default: 30
"""

EXAMPLES = r"""
- name: Read a node's BMC for a bundle
  tuner.tuner.tuner_capture_bmc:
    url: https://bmc01.example
    username: admin
    password_file: /etc/tuner/bmc.pw
  delegate_to: localhost
"""

RETURN = r"""
facts:
  description: The Redfish resources read, by path, and what could not be read and why.
  returned: always
  type: dict
"""

PASSWORD_ENV = "TUNER_BMC_PASSWORD"


def _password(p: dict) -> str:  # type: ignore[type-arg]
    if p.get("password"):
        return str(p["password"])
    if p.get("password_file"):
        try:
            with open(p["password_file"], encoding="utf-8") as f:
                line = f.readline().rstrip("\r\n")
        except OSError as e:
            raise RedfishError(f"cannot read the BMC password file: {e.strerror}") from None
        if line:
            return line
        raise RedfishError("the BMC password file is empty")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    raise RedfishError(f"no BMC password: set bmc_password, bmc_password_file or {PASSWORD_ENV}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True, "default": None},
            "password_file": {"type": "path", "default": None},
            "auth": {"type": "str", "choices": ["basic", "session"], "default": "basic"},
            "system": {"type": "str", "default": None},
            "validate_certs": {"type": "bool", "default": True},
            "ca_bundle": {"type": "path", "default": None},
            "timeout": {"type": "float", "default": 30.0},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        c = BmcClient(
            p["url"],
            p["username"],
            _password(p),
            auth=p["auth"],
            verify=p["validate_certs"],
            ca_bundle=p.get("ca_bundle"),
            timeout=p["timeout"],
            system=p.get("system"),
        )
    except RedfishError as e:
        module.fail_json(msg=str(e))
        return
    try:
        facts = {"bmc": read_bmc(c)}
    finally:
        c.close()
    module.exit_json(changed=False, facts=facts)


if __name__ == "__main__":
    main()
