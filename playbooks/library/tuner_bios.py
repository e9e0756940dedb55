#!/usr/bin/python
"""Ansible module: plan, apply or verify tuner's BIOS settings on one host through its BMC.

Runs on the control node (the playbook delegates to localhost) and talks Redfish to the
host's BMC. Planning lives in module_utils/tuner_bios_plan.py (= agent/bios/plan.py), the
HTTP client in module_utils/tuner_redfish.py (= agent/bios/redfish.py).

mode=plan sends GETs only (what `tuner apply --check` uses; with session auth, plus the
login POST and the logout DELETE). mode=apply PATCHes the settings object, then, with
reboot=if-needed and something pending, resets the system, waits until the BIOS took the
values (power state, settings object, Settings.Time/ETag, job, messages) and checks them.
mode=verify compares (a wanted value waiting for a reset is `pending`, not drift).
Before its first PATCH, mode=apply records the values in effect of every attribute it
changes (module_utils/tuner_bios_record.py, on the control node under I(record_dir)); if the
record cannot be written nothing is sent. mode=restore puts the recorded values back
(PATCH, and with reboot=if-needed a reset per stage). A failure that is bad input (an
unknown `system`, a registry that does not parse, a value the registry forbids) sets
facts.bad_input: nothing was sent.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_bios_plan import Registry, attr_text, plan, topology
from ansible.module_utils.tuner_bios_record import RecordError, forget, load, remember, same_board
from ansible.module_utils.tuner_modargs import TUNER_BIOS
from ansible.module_utils.tuner_redfish import (
    BmcClient,
    RedfishError,
    classify_messages,
)

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

PASSWORD_ENV = "TUNER_BMC_PASSWORD"

# What each stage is called in tuner's progress (agent/runner.py reads the stage files).
STAGE_WORDS = {
    "connect": "connecting to the BMC",
    "read": "reading BIOS settings",
    "read record": "reading tuner's record",
    "record": "recording originals",
    "patch": "PATCH",
    "reset": "reset",
    "wait": "waiting for POST",
    "verify": "verify",
    "forget": "closing the record",
}


def _say(p: dict[str, Any], stage: str) -> str:
    """Tell tuner's progress this host's stage (a file under stage_dir named by a hash of the
    host name, written atomically); best effort. Returns `stage`."""
    d = p.get("stage_dir")
    if d and p.get("host"):
        import hashlib

        f = os.path.join(d, hashlib.sha256(p["host"].encode()).hexdigest()[:24])
        try:
            with open(f + ".tmp", "w") as fh:
                fh.write(STAGE_WORDS.get(stage, stage))
            os.replace(f + ".tmp", f)
        except OSError:
            pass
    return stage


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


FOREIGN = "values this profile does not set are pending and will apply at the next reset: "


def _after_reset(warning: str) -> str:
    """A plan warning about pending values, as it reads once this run's reset applied them."""
    if warning.startswith(FOREIGN):
        return (
            "values this profile does not set were pending before this run's reset (a reset "
            "applies them): " + warning[len(FOREIGN) :]
        )
    return warning


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
    sent_job = ""  # the note on the BMC job a PATCH of this run created
    stage = _say(p, "connect")
    try:
        c = _client(p)
        c.connect()
        stage = _say(p, "read")
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
            facts["status"] = _verify_status(rows)
            if facts["status"] == "pending":
                facts["reboot"] = "needed"
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
            stage = _say(p, "record")
            facts["warnings"] = facts["warnings"] + _remember(c, d, p, rows, pl["patch"])
            stage = _say(p, "patch")
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
                sent_job = f"BMC job {sent['job']['uri'].split('/')[-1]}: {sent['job']['state']}"
                notes.append(sent_job)
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
            if p.get("also_reset") and p["reboot"] == "if-needed":
                # another layer (the kernel command line) waits for a reboot: one reset for both
                stage = "reset"
                c.reset(p["reset_type"], d["reset_types"], d["power_state"])
                res["changed"] = True
                facts["reboot"] = "done"
                stage = "wait"
                w = c.wait_applied(
                    {"settings_time": d["settings_time"], "pending": {}},
                    p["reset_timeout"],
                    p["poll_interval"],
                )
                facts["reset_states"] = w["states"]
                if w["outcome"] == "timeout":
                    raise RedfishError(w["reason"])
            return False, res
        if p["reboot"] == "never":
            for r in rows:
                r["status"] = {"ok": "unchanged"}.get(r["status"], "pending reboot")
            facts["status"] = "pending reboot"
            facts["reboot"] = "needed"
            return False, res
        stage = _say(p, "reset")
        c.reset(p["reset_type"], d["reset_types"], d["power_state"])
        res["changed"] = True
        facts["reboot"] = "done"
        # this run's reset applied what was pending: say so, not "at the next reset"
        facts["warnings"] = [_after_reset(w) for w in facts["warnings"]]
        stage = _say(p, "wait")
        w = c.wait_applied(
            before,
            p["reset_timeout"],
            p["poll_interval"],
            report=lambda text: _say(p, "waiting for POST: " + text.split(",")[0]),
        )
        facts["reset_states"] = w["states"]
        facts["settings_messages"] = _texts([m for m in w["messages"] if m["kind"] != "ok"])
        if w["stale"]:
            facts["warnings"] = facts["warnings"] + [
                "older than tuner's PATCH, ignored: " + m["text"] for m in w["stale"]
            ]
        if w["outcome"] == "timeout":
            raise RedfishError(w["reason"])
        stage = _say(p, "verify")
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
        if sent_job:  # the job noted at PATCH time ran at this reset
            ran = sent_job.split(":")[0] + ": ran at this reset"
            facts["warnings"] = [ran if w_ == sent_job else w_ for w_ in facts["warnings"]]
        return False, res
    except RecordError as e:
        res["msg"] = f"nothing sent: {e}"
        return True, res
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


def _patch_settings(c: BmcClient, d: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """PATCH `values` into the settings object and check the BMC shows them pending."""
    sent: dict[str, Any] = c.patch_settings(values, d["supported_apply_times"])
    # the settings object itself, not the diff with the values in effect: a restore may
    # send a value that is in effect (to replace a pending one)
    doc, _ = c.get_settings()
    staged = doc.get("Attributes") or {}
    lost = [n for n, v in values.items() if attr_text(staged.get(n)) != attr_text(v)]
    if lost:
        raise RedfishError(
            "the BMC accepted the PATCH but does not show pending: " + ", ".join(lost)
        )
    return sent


def _verify_status(rows: list[dict[str, Any]]) -> str:
    """ok, pending (set, waiting for a reset: not drift) or drift; marks the pending rows."""
    for r in rows:
        if r["status"] == "drift" and r["pending"] is not None and r["pending"] == r["wanted"]:
            r["status"] = "pending"
            r["message"] = "set and pending: takes effect at the next reset"
    if any(r["status"] not in ("ok", "pending") for r in rows):
        return "drift"
    return "pending" if any(r["status"] == "pending" for r in rows) else "ok"


def _before(d: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """What the reboot wait compares with (see BmcClient.wait_applied)."""
    return {
        "settings_time": d["settings_time"],
        "bios_settings_etag": d["bios_settings_etag"],
        "messages": d["messages"],
        "pending": {**d["pending"], **sent},
        "job": d["job"],
    }


def _system_ids(c: BmcClient, d: dict[str, Any]) -> tuple[str | None, str | None]:
    """The system's serial number and UUID: what tells one board from another."""
    serial, uuid = d.get("serial"), (c.system_doc or {}).get("UUID")
    return (str(serial) if serial else None, str(uuid) if uuid else None)


def _remember(
    c: BmcClient, d: dict[str, Any], p: dict[str, Any], rows: list[dict[str, Any]], patch: dict
) -> list[str]:
    """Before the first PATCH: record the values in effect of every attribute tuner changes
    (first value wins). -> warnings. Raises RecordError/RedfishError: then nothing is sent."""
    if not p.get("record_dir") or not p.get("host"):
        raise RecordError("no record_dir/host: refusing to change BIOS values without a record")
    touched = set(patch) | {r["attribute"] for r in rows if r["status"] == "pending"}
    values = {n: d["current"][n] for n in sorted(touched) if n in d["current"]}
    serial, uuid = _system_ids(c, d)
    try:
        return remember(p["record_dir"], p["host"], d["system_uri"], serial, uuid, values)
    except OSError as e:
        raise RecordError(f"cannot write tuner's BIOS record: {e}") from None


def restore_order(registry: dict[str, Any], patch: dict[str, Any]) -> list[dict[str, Any]]:
    """The restore PATCH in parts: attributes the registry locks behind a gate first (while
    the gate still has tuner's value, e.g. a profile set to Custom), the gates after.

    One PATCH would restore a gate and ask for a value it locks at the same time, which a
    BMC that checks dependencies on PATCH (Dell) rejects."""
    gates = Registry(registry).gates

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        ups = [g for g, _ in gates.get(name, []) if g in patch and g not in seen]
        return 1 + max((depth(g, seen | {name}) for g in ups), default=-1)

    parts: dict[int, dict[str, Any]] = {}
    for name, value in patch.items():
        parts.setdefault(depth(name), {})[name] = value
    return [parts[k] for k in sorted(parts, reverse=True)]


def restore(p: dict[str, Any], check_mode: bool) -> tuple[bool, dict[str, Any]]:
    """Put back the values tuner recorded before its first change (tuner rollback).

    Row status: unchanged (the recorded value is in effect, nothing pending), would restore
    (--check), restored (in effect again, or a pending tuner value replaced by the original),
    pending reboot (the original is pending: it takes effect at the next reset), failed."""
    facts: dict[str, Any] = {"mode": "restore", "status": "failed", "reboot": "not needed"}
    res: dict[str, Any] = {"results": [], "facts": facts, "changed": False}
    c: BmcClient | None = None
    stage = _say(p, "read record")
    try:
        rec = load(p["record_dir"], p["host"]) if p.get("record_dir") and p.get("host") else None
        if not rec or not rec["systems"]:
            facts["status"] = "nothing to do"
            return False, res
        stage = _say(p, "connect")
        c = _client(p)
        c.connect()
        stage = _say(p, "read")
        d = c.discover()
        system = d["system_uri"]
        facts.update(bmc_vendor=d["vendor"], system=system)
        entry = rec["systems"].get(system)
        if entry is None:
            res["msg"] = (
                f"nothing restored: tuner recorded {', '.join(sorted(rec['systems']))}, "
                f"but the BMC shows {system}"
            )
            return True, res
        serial, uuid = _system_ids(c, d)
        facts["serial"] = serial
        if not same_board(entry, serial, uuid):
            res["msg"] = (
                f"nothing restored: {system} has serial {serial!r}, but tuner recorded its "
                f"values on serial {entry.get('serial')!r} (board replaced?); the record is "
                "kept, remove it to accept this board as it is"
            )
            return True, res
        rows: list[dict[str, Any]] = []
        patch: dict[str, Any] = {}
        for name, orig in sorted(entry["attributes"].items()):
            row = {
                "attribute": name,
                "original": attr_text(orig),
                "current": attr_text(d["current"].get(name)),
                "pending": attr_text(d["pending"][name]) if name in d["pending"] else None,
                "after": None,
                "status": "unchanged",
                "message": "",
            }
            rows.append(row)
            if name in d["pending"] and row["pending"] != row["original"]:
                patch[name] = orig  # cancel tuner's pending value, or undo the one in effect
            elif row["current"] == row["original"]:
                continue
            elif name in d["pending"]:
                row["status"] = "pending reboot"  # the original already waits for a reset
            else:
                patch[name] = orig
        res["results"] = rows
        needs_reset = [r for r in rows if r["current"] != r["original"]]
        if check_mode:
            for r in rows:
                if r["attribute"] in patch:
                    r["status"] = "would restore"
            facts["status"] = "would restore" if patch or needs_reset else "nothing to do"
            if needs_reset:
                facts["reboot"] = "would reboot" if p["reboot"] == "if-needed" else "needed"
            return False, res
        if not (needs_reset and p["reboot"] == "if-needed"):
            held: set[str] = set()  # later stages a committed BMC job keeps for now
            if patch and d["job"]:
                res["msg"] = (
                    f"nothing sent: a BIOS configuration job ({d['job']['state']}) is "
                    "committed on this BMC; tuner rollback --reboot if-needed lets the reset "
                    "run it, then restores"
                )
                return True, res
            if patch:
                stage = _say(p, "patch")
                parts = restore_order(d["registry"], patch)  # dependents first
                for i, part in enumerate(parts):
                    _patch_settings(c, d, part)
                    res["changed"] = True
                    facts["sent"] = True
                    if i + 1 < len(parts) and c.committed_job():
                        # iDRAC: the PATCH made a job, no other set before the reset
                        held = {n for later in parts[i + 1 :] for n in later}
                        break
            for r in rows:
                if r["attribute"] in held:
                    r["status"] = "pending reboot"
                    r["message"] = (
                        "not sent yet: the BMC's job holds the first stage; "
                        "tuner rollback sends this after that reset"
                    )
                elif r["attribute"] in patch and r["current"] == r["original"]:
                    r["status"] = "restored"
                    r["message"] = f"the pending value {r['pending']} was replaced by the original"
            if needs_reset or held:
                for r in needs_reset:
                    r["status"] = "pending reboot"
                facts["status"] = "pending reboot"
                facts["reboot"] = "needed"
                return False, res
        else:
            # One reset per stage: the attributes a gate locks are restored (and reset into
            # effect) while the gate still allows them, holding the gate at its value in
            # effect; the gate follows in the next stage.
            values = {
                r["attribute"]: entry["attributes"][r["attribute"]]
                for r in rows
                if r["attribute"] in patch or r in needs_reset
            }
            groups = restore_order(d["registry"], values)
            for i, group in enumerate(groups):
                later = {n for g in groups[i + 1 :] for n in g}
                want = {n: values[n] for n in group}
                want.update({n: d["current"][n] for n in later if n in d["current"]})
                staged = {**d["current"], **d["pending"]}
                send = {n: v for n, v in want.items() if attr_text(staged.get(n)) != attr_text(v)}
                if send and d["job"]:
                    # a committed job (iDRAC) takes no other set: let the reset run it first
                    stage = _say(p, "reset")
                    c.reset(p["reset_type"], d["reset_types"], d["power_state"])
                    res["changed"] = True
                    facts["reboot"] = "done"
                    stage = _say(p, "wait")
                    w = c.wait_applied(_before(d, {}), p["reset_timeout"], p["poll_interval"])
                    if w["outcome"] == "timeout":
                        raise RedfishError(w["reason"])
                    stage = _say(p, "read")
                    d = c.discover()
                    staged = {**d["current"], **d["pending"]}
                    send = {
                        n: v for n, v in want.items() if attr_text(staged.get(n)) != attr_text(v)
                    }
                job = d["job"]
                if send:
                    stage = _say(p, "patch")
                    job = _patch_settings(c, d, send).get("job") or job
                    res["changed"] = True
                    facts["sent"] = True
                if all(attr_text(d["current"].get(n)) == attr_text(values[n]) for n in group):
                    continue
                stage = _say(p, "reset")
                before = {**_before(d, send), "job": job}
                c.reset(p["reset_type"], d["reset_types"], d["power_state"])
                res["changed"] = True
                facts["reboot"] = "done"
                stage = _say(p, "wait")
                w = c.wait_applied(before, p["reset_timeout"], p["poll_interval"])
                if w["outcome"] == "timeout":
                    raise RedfishError(w["reason"])
                stage = _say(p, "read")
                d = c.discover()
            stage = _say(p, "verify")
            failed = []
            for r in rows:
                if r["attribute"] not in values:
                    continue
                r["after"] = attr_text(d["current"].get(r["attribute"]))
                if r["after"] == r["original"]:
                    r["status"] = "restored"
                else:
                    r["status"] = "failed"
                    r["message"] = "not in effect after the reset"
                    failed.append(r["attribute"])
            if failed:
                res["msg"] = f"after the reset: not restored: {', '.join(failed)}"
                return True, res
        stage = _say(p, "forget")
        forget(p["record_dir"], p["host"], system)
        facts["status"] = "restored" if (patch or needs_reset) else "nothing to do"
        return False, res
    except (RedfishError, RecordError) as e:
        res["msg"] = f"BMC {stage} failed: {e}" if isinstance(e, RedfishError) else str(e)
        if stage == "patch":
            for r in res["results"]:
                if r["status"] == "unchanged" and r["current"] != r["original"]:
                    r["status"] = "failed"
        return True, res
    except Exception as e:  # noqa: BLE001 - a BMC answer the client did not expect
        res["msg"] = f"BMC {stage} failed: unexpected answer ({type(e).__name__}: {e})"[:600]
        return True, res
    finally:
        if c is not None:
            c.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec=TUNER_BIOS.spec(),  # typed once: module_utils/tuner_modargs.py
        supports_check_mode=True,
    )
    if module.params["mode"] == "restore":
        failed, res = restore(module.params, module.check_mode)
    else:
        failed, res = run(module.params, module.check_mode)
    if failed:
        module.fail_json(**res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
