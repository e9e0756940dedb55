#!/usr/bin/python
"""Ansible module: plan, apply or verify tuner's BIOS settings on one host through its BMC.

Runs on the control node (the playbook delegates to localhost) and talks Redfish to the
host's BMC. Planning lives in module_utils/tuner_bios_plan.py (= agent/bios/plan.py), the
HTTP client in module_utils/tuner_redfish.py (= agent/bios/redfish.py).

mode=plan sends GETs only (what `tuner apply --check` uses; with session auth, plus the
login POST and the logout DELETE). mode=apply PATCHes the settings object, then, with
reboot=if-needed and something pending, resets the system, waits until the BIOS took the
values (power state, settings object, Settings.Time/ETag, job, messages) and checks them.
mode=verify compares. A failure that is bad input (an unknown `system`, a registry that does
not parse, a value the registry forbids) sets facts.bad_input: nothing was sent.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_bios_plan import attr_text, plan, topology
from ansible.module_utils.tuner_redfish import (
    BmcClient,
    RedfishError,
    classify_messages,
)

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
  system: {type: str}
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


def _texts(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in msgs]


def _client(p: dict[str, Any]) -> BmcClient:
    return BmcClient(
        p["url"],
        p["username"],
        _password(p),
        auth=p["auth"],
        verify=p["validate_certs"],
        ca_bundle=p.get("ca_bundle"),
        timeout=p["timeout"],
        system=p.get("system"),
    )


def run(p: dict[str, Any], check_mode: bool) -> tuple[bool, dict[str, Any]]:
    """-> (failed, result). Never raises RedfishError (it becomes a failure with the reason)."""
    mode = "plan" if check_mode else p["mode"]
    facts: dict[str, Any] = {
        "mode": mode,
        "status": "failed",
        "reboot": "not needed",
        "bad_input": False,
    }
    res: dict[str, Any] = {"results": [], "facts": facts, "changed": False}
    c: BmcClient | None = None
    stage = "connect"
    try:
        c = _client(p)
        c.connect()
        stage = "read"
        d = c.discover()
        pl = plan(p["settings"], d["registry"], d["current"], d["pending"], verify=mode == "verify")
        msgs = classify_messages(d["messages"])
        facts.update(
            vendor=pl["vendor"],
            bmc_vendor=d["vendor"],
            system=d["system_id"],
            serial=d["serial"],
            registry=pl["registry"],
            warnings=pl["warnings"],
            topology=pl["topology"],
            power_state=d["power_state"],
            settings_messages=_texts([m for m in msgs if m["kind"] != "ok"]),
        )
        rows = pl["rows"]
        res["results"] = rows
        if pl["errors"]:
            facts["status"] = "failed"
            facts["bad_input"] = bool(pl.get("forbidden"))
            res["msg"] = "nothing sent: " + "; ".join(pl["errors"])
            return True, res
        if mode == "verify":
            drift = [r for r in rows if r["status"] != "ok"]
            facts["status"] = "drift" if drift else "ok"
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
        before = {
            "settings_time": d["settings_time"],
            "bios_settings_etag": d["bios_settings_etag"],
            "messages": d["messages"],
            "pending": dict(d["pending"]),
            "job": d["job"],  # a committed BIOS job (iDRAC) the reset will run
        }
        if d["job"]:
            facts["job"] = d["job"]
        if pl["patch"] and d["job"]:
            # iDRAC refuses another set while a BIOS job is committed; tuner does not fight it
            facts["status"] = "failed"
            res["msg"] = (
                f"nothing sent: a BIOS configuration job ({d['job']['uri'].split('/')[-1]}, "
                f"{d['job']['state']}) is already committed on this BMC with other values; "
                "tuner leaves it alone: reboot the system to apply it (or delete the job), "
                "then run tuner again"
            )
            return True, res
        if pl["patch"]:
            stage = "patch"
            sent = c.patch_settings(pl["patch"], d["supported_apply_times"])
            res["changed"] = True
            facts["sent"] = True
            facts["apply_time"] = sent["apply_time"]
            facts["job"] = sent["job"]
            before["job"] = sent["job"]
            notes = []
            if sent["etag_retry"]:
                notes.append("the settings ETag changed under us: sent again with a fresh one")
            if sent["apply_time_retry"]:
                notes.append("the BMC refused @Redfish.SettingsApplyTime: sent without it")
            if sent["job"]:
                notes.append(f"BMC job {sent['job']['uri'].split('/')[-1]}: {sent['job']['state']}")
            facts["warnings"] = facts["warnings"] + notes
            staged = c.pending()
            lost = [n for n, v in pl["patch"].items() if attr_text(staged.get(n)) != attr_text(v)]
            if lost:
                raise RedfishError(
                    "the BMC accepted the PATCH but does not show pending: " + ", ".join(lost)
                )
            before["pending"].update(pl["patch"])
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
        c.reset(p["reset_type"], d["reset_types"], d["power_state"])
        res["changed"] = True
        facts["reboot"] = "done"
        stage = "wait"
        w = c.wait_applied(before, p["reset_timeout"], p["poll_interval"])
        facts["reset_states"] = w["states"]
        facts["settings_messages"] = _texts([m for m in w["messages"] if m["kind"] != "ok"])
        if w["stale"]:
            facts["warnings"] = facts["warnings"] + [
                "older than tuner's PATCH, ignored: " + m["text"] for m in w["stale"]
            ]
        if w["outcome"] == "timeout":
            raise RedfishError(w["reason"])
        stage = "verify"
        bios = w["bios"]
        after = bios.get("Attributes") or {}
        failed_attrs = []
        for r in rows:
            before_status = r["status"]
            r["after"] = attr_text(after.get(r["attribute"]))
            if before_status == "ok":
                r["status"] = "unchanged"
            elif r["after"] == r["wanted"]:
                r["status"] = "changed"
            else:
                r["status"] = "failed"
                r["message"] = "not in effect after the reset"
                failed_attrs.append(r["attribute"])
        facts["topology"] = topology(d["registry"], after)
        if failed_attrs or w["outcome"] == "failed":
            failures = [m["text"] for m in w["messages"] if m["kind"] == "failure"]
            if w["outcome"] == "failed" and not failures and w.get("reason"):
                failures = [w["reason"]]
            res["msg"] = "after the reset: " + "; ".join(
                ([f"not applied: {', '.join(failed_attrs)}"] if failed_attrs else []) + failures
            )
            return True, res
        facts["status"] = "changed"
        return False, res
    except RedfishError as e:
        res["msg"] = f"BMC {stage} failed: {e}"
        if e.bad_input:
            facts["bad_input"] = True
            res["msg"] = f"nothing sent: {e}"
        if stage == "patch":
            for r in res["results"]:
                if r["status"] == "change":
                    r["status"] = "failed"
        return True, res
    except Exception as e:  # noqa: BLE001 - a BMC answer the client did not expect
        res["msg"] = f"BMC {stage} failed: unexpected answer ({type(e).__name__}: {e})"[:600]
        return True, res
    finally:
        if c is not None:
            facts["retries"] = c.retries
            c.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["plan", "apply", "verify"], "required": True},
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "password_file": {"type": "path", "no_log": False},
            "auth": {"type": "str", "choices": ["basic", "session"], "default": "basic"},
            "system": {"type": "str"},
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
