#!/usr/bin/python
"""Ansible module: plan, apply or verify tuner's BIOS settings on one host through its BMC.

Runs on the control node (the playbook delegates to localhost) and talks Redfish to the
host's BMC. Planning lives in module_utils/tuner_bios_plan.py (= agent/bios/plan.py), the
HTTP client in module_utils/tuner_redfish.py (= agent/bios/redfish.py).

mode=plan sends GETs only (what `tuner apply --check` uses). mode=apply PATCHes the settings
object, then, with reboot=if-needed and something pending, resets the system, waits for
PowerState On and checks the values took effect. mode=verify compares.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_bios_plan import attr_text, plan, topology
from ansible.module_utils.tuner_redfish import Client, RedfishError, discover, wait_power_on

DOCUMENTATION = r"""
module: tuner_bios
short_description: Plan, apply or verify tuner BIOS settings through a Redfish BMC
options:
  mode: {type: str, choices: [plan, apply, verify], required: true}
  url: {type: str, required: true}
  username: {type: str, required: true}
  password: {type: str, no_log: true}
  password_file: {type: path}
  auth: {type: str, choices: [basic, session], default: basic}
  validate_certs: {type: bool, default: true}
  ca_bundle: {type: path}
  timeout: {type: float, default: 30}
  reset_timeout: {type: float, default: 1200}
  poll_interval: {type: float, default: 2}
  reboot: {type: str, choices: [never, if-needed], default: never}
  reset_type: {type: str, default: GracefulRestart}
  settings: {type: dict, default: {}}
notes:
  - The password comes from I(password) (e.g. an Ansible-vault variable), else the first line
    of I(password_file), else the environment variable TUNER_BMC_PASSWORD.
"""

PASSWORD_ENV = "TUNER_BMC_PASSWORD"


def _password(p: dict[str, Any]) -> str:
    if p.get("password"):
        return str(p["password"])
    if p.get("password_file"):
        try:
            with open(p["password_file"], encoding="utf-8") as f:
                line = f.readline().rstrip("\r\n")
        except OSError as e:
            raise RedfishError(f"cannot read the BMC password file: {e.strerror}") from None
        if not line:
            raise RedfishError("the BMC password file is empty")
        return line
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    raise RedfishError(f"no BMC password: set bmc_password, bmc_password_file or {PASSWORD_ENV}")


def _messages(msgs: list[Any]) -> list[str]:
    out = []
    for m in msgs:
        if isinstance(m, dict):
            mid = str(m.get("MessageId", "")).split(".")[-1]
            rel = ",".join(str(r).split("/")[-1] for r in m.get("RelatedProperties") or [])
            out.append(f"{mid}{'(' + rel + ')' if rel else ''}: {m.get('Message', '')}".strip())
    return out


def run(p: dict[str, Any], check_mode: bool) -> tuple[bool, dict[str, Any]]:
    """-> (failed, result). Never raises RedfishError (it becomes a failure with the reason)."""
    mode = "plan" if check_mode else p["mode"]
    facts: dict[str, Any] = {"mode": mode, "status": "failed", "reboot": "not needed"}
    res: dict[str, Any] = {"results": [], "facts": facts, "changed": False}
    c: Client | None = None
    stage = "connect"
    try:
        c = Client(
            p["url"],
            p["username"],
            _password(p),
            auth="basic" if mode != "apply" else p["auth"],  # plan/verify: GETs only
            verify=p["validate_certs"],
            ca_bundle=p.get("ca_bundle"),
            timeout=p["timeout"],
        )
        c.login()
        stage = "read"
        d = discover(c)
        pl = plan(p["settings"], d["registry"], d["current"], d["pending"], verify=mode == "verify")
        facts.update(
            vendor=pl["vendor"],
            bmc_vendor=d["vendor"],
            registry=pl["registry"],
            warnings=pl["warnings"],
            topology=pl["topology"],
            power_state=d["power_state"],
            settings_messages=_messages(d["messages"]),
        )
        rows = pl["rows"]
        res["results"] = rows
        if pl["errors"]:
            facts["status"] = "failed"
            res["msg"] = "nothing sent: " + "; ".join(pl["errors"])
            return True, res
        if mode == "verify":
            drift = [r for r in rows if r["status"] != "ok"]
            facts["status"] = "drift" if drift else "ok"
            if facts["settings_messages"]:
                facts["status"] = "drift"
            return False, res
        if mode == "plan":
            for r in rows:
                r["status"] = {"ok": "unchanged", "change": "would change"}.get(
                    r["status"], r["status"]
                )
            facts["status"] = "would change" if pl["patch"] else "unchanged"
            if pl["reboot_needed"]:
                facts["reboot"] = "would reboot" if p["reboot"] == "if-needed" else "needed"
                if not pl["patch"]:
                    facts["status"] = "pending reboot"
            return False, res
        # apply
        if pl["patch"]:
            stage = "patch"
            c.request(
                "PATCH",
                d["settings_uri"],
                {"Attributes": pl["patch"], "@Redfish.SettingsApplyTime": {"ApplyTime": "OnReset"}},
            )
            res["changed"] = True
            facts["sent"] = True
            staged = c.get(d["settings_uri"]).get("Attributes") or {}
            lost = [n for n, v in pl["patch"].items() if attr_text(staged.get(n)) != attr_text(v)]
            if lost:
                raise RedfishError(
                    "the BMC accepted the PATCH but does not show pending: " + ", ".join(lost)
                )
        if not pl["reboot_needed"]:
            for r in rows:
                r["status"] = {"ok": "unchanged", "change": "changed"}.get(r["status"], r["status"])
            facts["status"] = "changed" if pl["patch"] else "unchanged"
            return False, res
        if p["reboot"] == "never":
            for r in rows:
                r["status"] = {"ok": "unchanged"}.get(r["status"], "pending reboot")
            facts["status"] = "pending reboot"
            facts["reboot"] = "needed"
            return False, res
        stage = "reset"
        reset_type = p["reset_type"]
        if d["reset_types"] and reset_type not in d["reset_types"]:
            reset_type = "ForceRestart" if "ForceRestart" in d["reset_types"] else reset_type
        if d["power_state"] != "On":
            reset_type = "On"
        c.request("POST", d["reset_uri"], {"ResetType": reset_type})
        res["changed"] = True
        facts["reboot"] = "done"
        stage = "wait"
        bios = wait_power_on(
            c,
            d["system_uri"],
            d["bios_uri"],
            d["settings_time"],
            p["reset_timeout"],
            p["poll_interval"],
        )
        stage = "verify"
        after = bios.get("Attributes") or {}
        msgs = _messages((bios.get("@Redfish.Settings") or {}).get("Messages") or [])
        facts["settings_messages"] = msgs
        failed_attrs = []
        for r in rows:
            before = r["status"]
            r["after"] = attr_text(after.get(r["attribute"]))
            if before == "ok":
                r["status"] = "unchanged"
            elif r["after"] == r["wanted"]:
                r["status"] = "changed"
            else:
                r["status"] = "failed"
                r["message"] = "not in effect after the reset"
                failed_attrs.append(r["attribute"])
        facts["topology"] = topology(d["registry"], after)
        if failed_attrs or msgs:
            res["msg"] = "after the reset: " + "; ".join(
                ([f"not applied: {', '.join(failed_attrs)}"] if failed_attrs else []) + msgs
            )
            return True, res
        facts["status"] = "changed"
        return False, res
    except RedfishError as e:
        res["msg"] = f"BMC {stage} failed: {e}"
        if stage == "patch":
            for r in res["results"]:
                if r["status"] == "change":
                    r["status"] = "failed"
        return True, res
    finally:
        if c is not None:
            c.logout()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["plan", "apply", "verify"], "required": True},
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "password_file": {"type": "path", "no_log": False},
            "auth": {"type": "str", "choices": ["basic", "session"], "default": "basic"},
            "validate_certs": {"type": "bool", "default": True},
            "ca_bundle": {"type": "path"},
            "timeout": {"type": "float", "default": 30.0},
            "reset_timeout": {"type": "float", "default": 1200.0},
            "poll_interval": {"type": "float", "default": 2.0},
            "reboot": {"type": "str", "choices": ["never", "if-needed"], "default": "never"},
            "reset_type": {"type": "str", "default": "GracefulRestart"},
            "settings": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    failed, res = run(module.params, module.check_mode)
    if failed:
        module.fail_json(**res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
