"""tuner's record of BIOS values before its first change: what `tuner rollback` restores.

Stdlib only: the `tuner_bios` module (which runs on the control node) writes the record just
before its first PATCH to a host, through `playbooks/module_utils/tuner_bios_record.py` (a
symlink), and tuner reads it to know which hosts have something to restore.

One file per inventory host under `$TUNER_STATE_DIR/bios/originals/`, keyed inside by the
Redfish system (`/redfish/v1/Systems/...`), with the system's serial number and UUID so that
a swapped board is noticed (a record made on another board is never restored to this one):

    {"host": "node01",
     "systems": {"/redfish/v1/Systems/System.Embedded.1": {
         "serial": "CN7016...", "uuid": "...", "recorded": "2026-11-23T18:40:00Z",
         "attributes": {"LogicalProc": "Enabled", "NumaNodesPerSocket": 1}}}}

Each entry also keeps what tuner has staged on the BMC and no reset has applied yet, so that
a rollback (or an apply that changed its mind) can undo it before any reboot, and never
touches what someone else staged: `staged` (attribute -> value tuner PATCHed into the
settings object), `jobs` (the BMC jobs those PATCHes created, iDRAC) and `jobs_before` (the
waiting BIOS jobs seen just before tuner's last PATCH: a job that is not among them appeared
with that PATCH, even when tuner was killed before it could note the job's URI).

The first value wins (like the OS record on each host): a second apply, or another profile,
adds attributes but never overwrites one already recorded. Writes are atomic (temp file,
fsync, rename), so a run killed at any point leaves the old record or the new one. A rollback
that put every value back in effect moves the system's entry to `history/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Any

try:  # as Ansible module_utils (the tuner_bios module)
    from ansible.module_utils.tuner_knobs import (  # type: ignore[import-not-found,unused-ignore]
        write_atomic,
    )
except ImportError:  # on the controller
    from agent.knobs import write_atomic

SUBDIR = ("bios", "originals")


def record_dir(state_dir: str) -> str:
    return os.path.join(state_dir, *SUBDIR)


def file_name(host: str) -> str:
    """A file name for an (untrusted) inventory host name: never a path, never '..'."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host)[:80].lstrip(".") or "host"
    digest = hashlib.sha256(host.encode("utf-8")).hexdigest()[:12]
    return f"{safe}-{digest}.json"


def record_path(directory: str, host: str) -> str:
    return os.path.join(directory, file_name(host))


def load(directory: str, host: str) -> dict[str, Any]:
    """The host's record ({"host", "systems"}); an empty one when there is none."""
    path = record_path(directory, host)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {"host": host, "systems": {}}
    except (OSError, ValueError) as e:
        raise RecordError(f"cannot read tuner's BIOS record {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("systems"), dict):
        raise RecordError(f"tuner's BIOS record {path} is not a record (no 'systems')")
    return doc


class RecordError(Exception):
    pass


def _write_atomic(path: str, doc: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", 0o600)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def remember(
    directory: str,
    host: str,
    system: str,
    serial: str | None,
    uuid: str | None,
    values: dict[str, Any],
) -> list[str]:
    """Record `values` (attribute -> value in effect) before tuner changes them.

    First value wins. When the system's serial or UUID differ from the record's, the board
    was swapped: the old entry moves to history and a new one starts. -> warnings."""
    doc = load(directory, host)
    warnings: list[str] = []
    entry = doc["systems"].get(system)
    if entry is not None and not same_board(entry, serial, uuid):
        warnings.append(
            f"{system}: serial {serial!r} (recorded {entry.get('serial')!r}): the board was "
            "replaced; the old BIOS record was moved to history and a new one started"
        )
        _to_history(directory, host, system, entry)
        entry = None
    if entry is None:
        entry = {"serial": serial, "uuid": uuid, "recorded": _now(), "attributes": {}}
    attrs = entry.setdefault("attributes", {})
    added = {k: v for k, v in values.items() if k not in attrs}
    if not added and system in doc["systems"]:
        return warnings
    attrs.update(added)
    doc["host"] = host
    doc["systems"][system] = entry
    _write_atomic(record_path(directory, host), doc)
    return warnings


def same_board(entry: dict[str, Any], serial: str | None, uuid: str | None) -> bool:
    return entry.get("serial") == serial and entry.get("uuid") == uuid


def forget(directory: str, host: str, system: str) -> None:
    """Every value of `system` is back in effect: move its entry to history."""
    doc = load(directory, host)
    entry = doc["systems"].pop(system, None)
    if entry is None:
        return
    _to_history(directory, host, system, entry)
    if doc["systems"]:
        _write_atomic(record_path(directory, host), doc)
    else:
        try:
            os.unlink(record_path(directory, host))
        except FileNotFoundError:
            pass


def stage(
    directory: str, host: str, system: str, values: dict[str, Any], jobs_before: list[str]
) -> None:
    """Just before tuner PATCHes `values`: note them (and the jobs waiting already)."""
    doc = load(directory, host)
    entry = doc["systems"].get(system)
    if entry is None:
        raise RecordError(f"no record of {system}: refusing to stage BIOS values without one")
    entry.setdefault("staged", {}).update(values)
    entry["jobs_before"] = sorted(jobs_before)
    entry.setdefault("jobs", [])
    _write_atomic(record_path(directory, host), doc)


def staged_job(directory: str, host: str, system: str, uri: str) -> None:
    """The PATCH tuner just sent created the BMC job `uri`."""
    doc = load(directory, host)
    entry = doc["systems"].get(system)
    if entry is None or uri in entry.get("jobs", []):
        return
    entry.setdefault("jobs", []).append(uri)
    _write_atomic(record_path(directory, host), doc)


def settle(directory: str, host: str, system: str, staged: dict[str, Any], jobs: list[str]) -> None:
    """What of tuner's staging is still on the BMC (the rest was applied or undone)."""
    doc = load(directory, host)
    entry = doc["systems"].get(system)
    if entry is None:
        return
    old = (entry.get("staged") or {}, entry.get("jobs") or [])
    if old == (staged, jobs) and "staged" in entry:
        return
    entry["staged"] = dict(staged)
    entry["jobs"] = list(jobs)
    if not staged and not jobs:
        entry.pop("jobs_before", None)
    _write_atomic(record_path(directory, host), doc)


def _to_history(directory: str, host: str, system: str, entry: dict[str, Any]) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"
    path = os.path.join(directory, "history", f"{stamp}-{file_name(host)}")
    _write_atomic(path, {"host": host, "systems": {system: entry}})
