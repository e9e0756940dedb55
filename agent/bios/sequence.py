"""The BIOS sequence on one host: plan, apply, verify and restore through its BMC (Redfish).

Runs inside the `tuner_bios` Ansible module (on the control node, shipped as
`playbooks/module_utils/tuner_bios_sequence.py`, a symlink), so it imports only the standard
library and its siblings `plan.py`, `record.py` and `redfish.py` (as module_utils there, as
`agent.bios.*` here). The module itself only parses its arguments and calls `run`/`restore`.

`BiosArgs` are the module's arguments, typed (names and defaults from agent/modargs.py's
`TUNER_BIOS`, which generates the module's argument_spec); `Outcome` is what a mode
returns: failed, changed, msg, the rows (`ApplyRow` or `RestoreRow`) and the facts
(`ApplyFacts` or `RestoreFacts`), the shapes the BIOS layer reads back into
`agent/bios/models.py`.

Modes: `plan` sends GETs only (`tuner apply --check`; with session auth, plus the login POST
and the logout DELETE). `apply` PATCHes the settings object, then, with reboot=if-needed and
something pending, resets the system, waits until the BIOS took the values (power state,
settings object, Settings.Time/ETag, job, messages) and checks them. `verify` compares (a
wanted value waiting for a reset is `pending`, not drift). Before its first PATCH, `apply`
records the values in effect of every attribute it changes (`record.py`, under `record_dir`);
if the record cannot be written nothing is sent. `restore` puts the recorded values back
(PATCH, and with reboot=if-needed a reset per stage). A failure that is bad input (an unknown
`system`, a registry that does not parse, a value the registry forbids) sets
facts.bad_input: nothing was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

try:  # inside the tuner_bios Ansible module
    from ansible.module_utils.tuner_bios_plan import (  # type: ignore[import-not-found,unused-ignore]
        Registry,
        attr_text,
        plan,
        topology,
    )
    from ansible.module_utils.tuner_bios_record import (  # type: ignore[import-not-found,unused-ignore]
        RecordError,
        forget,
        load,
        remember,
        same_board,
        settle,
        stage,
        staged_job,
    )
    from ansible.module_utils.tuner_knobs import (  # type: ignore[import-not-found,unused-ignore]
        hold_flock,
        waiting_words,
        write_atomic,
    )
    from ansible.module_utils.tuner_modargs import (  # type: ignore[import-not-found,unused-ignore]
        TUNER_BIOS,
    )
    from ansible.module_utils.tuner_redfish import (  # type: ignore[import-not-found,unused-ignore]
        BmcClient,
        RedfishError,
        classify_messages,
    )
except ImportError:  # in tuner (tests, docs)
    from agent.bios.plan import Registry, attr_text, plan, topology
    from agent.bios.record import (
        RecordError,
        forget,
        load,
        remember,
        same_board,
        settle,
        stage,
        staged_job,
    )
    from agent.bios.redfish import BmcClient, RedfishError, classify_messages
    from agent.knobs import hold_flock, waiting_words, write_atomic
    from agent.modargs import TUNER_BIOS

PASSWORD_ENV = "TUNER_BMC_PASSWORD"

# ----------------------------------------------------------------------------- arguments


@dataclass
class BiosArgs:
    """The tuner_bios module's arguments, typed. Names, Ansible types and defaults are
    agent/modargs.py's `TUNER_BIOS` (which generates the module's argument_spec): a name
    missing here or there fails `BiosArgs.from_params` at once."""

    mode: str
    url: str
    username: str
    password: str | None
    password_file: str | None
    auth: str
    system: str | None
    validate_certs: bool
    ca_bundle: str | None
    timeout: float
    reset_timeout: float
    poll_interval: float
    reboot: str
    reset_type: str
    also_reset: bool
    settings: dict[str, Any]
    host: str | None  # the inventory host name (the record's key)
    record_dir: str | None  # where tuner keeps the BIOS record
    stage_dir: str | None  # where to write this host's stage (progress)
    lock_timeout: float  # seconds to wait for another run on the BMC

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> BiosArgs:
        """From Ansible's params (or a test's dict): missing or None -> modargs' default."""
        names = {f.name for f in dataclasses.fields(cls)}
        if names != set(TUNER_BIOS.args):
            raise TypeError(
                f"BiosArgs and modargs TUNER_BIOS differ: {names ^ set(TUNER_BIOS.args)}"
            )
        kw: dict[str, Any] = {}
        for name in names:
            if p.get(name) is not None:
                kw[name] = p[name]
            else:
                try:
                    kw[name] = TUNER_BIOS.default(name)
                except KeyError:
                    kw[name] = None
        return cls(**kw)


# ----------------------------------------------------------------------------- results


class ApplyRow(TypedDict, total=False):
    """One attribute of the plan (plan.py makes it; the models' BiosAttribute reads it)."""

    setting: str
    attribute: str
    wanted: str | None
    current: str | None
    pending: str | None
    after: str | None
    status: str
    message: str


class RestoreRow(TypedDict):
    """One attribute of a restore (the models' BiosRestore reads it)."""

    attribute: str
    original: str | None
    current: str | None
    pending: str | None
    after: str | None
    status: str
    message: str


class ApplyFacts(TypedDict, total=False):
    mode: str
    status: str
    reboot: str
    bad_input: bool
    vendor: str
    bmc_vendor: str
    system: str
    serial: Any
    registry: str
    warnings: list[str]
    topology: dict[str, Any]
    power_state: Any
    settings_messages: list[str]
    job: dict[str, Any] | None
    sent: bool
    apply_time: str | None
    reset_states: list[str]
    retries: int


class RestoreFacts(TypedDict, total=False):
    mode: str
    status: str
    reboot: str
    warnings: list[str]
    bmc_vendor: str
    system: str
    serial: str | None
    sent: bool


@dataclass
class Outcome:
    """What one mode of the sequence returns (the module's exit_json/fail_json body)."""

    facts: Any  # ApplyFacts or RestoreFacts
    results: list[Any] = field(default_factory=list)  # ApplyRow or RestoreRow
    changed: bool = False
    failed: bool = False
    msg: str = ""

    def result(self) -> dict[str, Any]:
        res: dict[str, Any] = {
            "results": self.results,
            "facts": self.facts,
            "changed": self.changed,
        }
        if self.msg:
            res["msg"] = self.msg
        return res

    def fail(self, msg: str) -> Outcome:
        self.failed = True
        self.msg = msg
        return self


# ----------------------------------------------------------------------------- helpers

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
    "undo": "undoing tuner's pending values",
}


def say(a: BiosArgs, stage: str) -> str:
    """Tell tuner's progress this host's stage (a file under stage_dir named by a hash of the
    host name, written atomically); best effort. Returns `stage`."""
    if a.stage_dir and a.host:
        f = os.path.join(a.stage_dir, hashlib.sha256(a.host.encode()).hexdigest()[:24])
        try:
            write_atomic(f, STAGE_WORDS.get(stage, stage))
        except OSError:
            pass
    return stage


def password(a: BiosArgs) -> str:
    """I(password), else the first line of I(password_file), else $TUNER_BMC_PASSWORD."""
    if a.password:
        return str(a.password)
    if a.password_file:
        try:
            with open(a.password_file, encoding="utf-8") as f:
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


def client(a: BiosArgs) -> BmcClient:
    return BmcClient(
        a.url,
        a.username,
        password(a),
        auth=a.auth,
        verify=a.validate_certs,
        ca_bundle=a.ca_bundle,
        timeout=a.timeout,
        system=a.system,
    )


FOREIGN = "values this profile does not set are pending and will apply at the next reset: "


def after_reset(warning: str) -> str:
    """A plan warning about pending values, as it reads once this run's reset applied them."""
    if warning.startswith(FOREIGN):
        return (
            "values this profile does not set were pending before this run's reset (a reset "
            "applies them): " + warning[len(FOREIGN) :]
        )
    return warning


def texts(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in msgs]


def verify_status(rows: list[ApplyRow]) -> str:
    """ok, pending (set, waiting for a reset: not drift) or drift; marks the pending rows."""
    for r in rows:
        if r["status"] == "drift" and r["pending"] is not None and r["pending"] == r["wanted"]:
            r["status"] = "pending"
            r["message"] = "set and pending: takes effect at the next reset"
    if any(r["status"] not in ("ok", "pending") for r in rows):
        return "drift"
    return "pending" if any(r["status"] == "pending" for r in rows) else "ok"


def patch_checked(c: BmcClient, d: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
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


def before_wait(d: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """What the reboot wait compares with (see BmcClient.wait_applied)."""
    return {
        "settings_time": d["settings_time"],
        "bios_settings_etag": d["bios_settings_etag"],
        "messages": d["messages"],
        "pending": {**d["pending"], **sent},
        "job": d["job"],
    }


def system_ids(c: BmcClient, d: dict[str, Any]) -> tuple[str | None, str | None]:
    """The system's serial number and UUID: what tells one board from another."""
    serial, uuid = d.get("serial"), (c.system_doc or {}).get("UUID")
    return (str(serial) if serial else None, str(uuid) if uuid else None)


def remember_originals(
    c: BmcClient, d: dict[str, Any], a: BiosArgs, rows: list[ApplyRow], patch: dict[str, Any]
) -> list[str]:
    """Before the first PATCH: record the values in effect of every attribute tuner changes
    (first value wins). -> warnings. Raises RecordError/RedfishError: then nothing is sent."""
    if not a.record_dir or not a.host:
        raise RecordError("no record_dir/host: refusing to change BIOS values without a record")
    touched = set(patch) | {r["attribute"] for r in rows if r["status"] == "pending"}
    values = {n: d["current"][n] for n in sorted(touched) if n in d["current"]}
    serial, uuid = system_ids(c, d)
    try:
        return remember(a.record_dir, a.host, d["system_uri"], serial, uuid, values)
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


def job_name(job: dict[str, Any]) -> str:
    return str(job["uri"]).split("/")[-1]


# ----------------------------------------------------------------------------- one run per BMC


class BmcBusy(RecordError):
    """Another tuner run works on this BMC and did not finish within the lock timeout."""


def lock_path(a: BiosArgs) -> str:
    """One lock per BMC system on this control node, whatever the state folder of the run."""
    d = os.path.join(tempfile.gettempdir(), f"tuner-bmc-locks-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    key = hashlib.sha256(f"{a.url.rstrip('/')}|{a.system or ''}".encode()).hexdigest()[:24]
    return os.path.join(d, key + ".lock")


@contextlib.contextmanager
def bmc_lock(a: BiosArgs) -> Iterator[None]:
    """Hold this BMC for the run (apply, restore): a second run waits, saying for whom and
    until when (its progress stage), and gives up after lock_timeout (BmcBusy)."""

    def busy(holder: str) -> Exception:
        return BmcBusy(
            f"another tuner run holds this BMC ({holder}); waited {a.lock_timeout:g} s "
            "(--lock-timeout)"
        )

    def on_wait(holder: str) -> None:
        say(a, waiting_words(holder, max(0.0, a.lock_timeout), "this BMC"))

    with hold_flock(lock_path(a), a.lock_timeout, busy, on_wait):
        yield


# ----------------------------------------------------------------------------- tuner's staging


class Staging:
    """What of the pending state of one BMC tuner staged (docs/bios.md "Undo before the
    reboot"): `ours` are pending values equal to what tuner's record says it PATCHed, `foreign`
    the other pending values; the committed BIOS job (iDRAC) is tuner's when the record names
    it, or when it appeared with tuner's last PATCH and holds nothing but tuner's values."""

    def __init__(self, entry: dict[str, Any] | None, d: dict[str, Any]) -> None:
        entry = entry or {}
        self.legacy = bool(entry) and "staged" not in entry  # a record from before staging
        staged = entry.get("staged") or {}
        pending: dict[str, Any] = d["pending"]
        if self.legacy:  # the old rule: a pending value on an attribute tuner changed is tuner's
            orig = entry.get("attributes") or {}
            staged = {n: v for n, v in pending.items() if n in orig}
        self.ours = {
            n: v for n, v in pending.items() if n in staged and attr_text(staged[n]) == attr_text(v)
        }
        self.foreign = {n: v for n, v in pending.items() if n not in self.ours}
        job = d["job"]
        self.job: dict[str, Any] | None = job
        self.job_ours = bool(job) and (
            job["uri"] in (entry.get("jobs") or [])
            or (
                "jobs_before" in entry
                and job["uri"] not in entry["jobs_before"]
                and bool(self.ours)
                and not self.foreign
            )
        )

    def jobs(self) -> list[str]:
        return [self.job["uri"]] if self.job and self.job_ours else []


def job_foreign(job: dict[str, Any], pending: dict[str, Any]) -> str:
    """What tuner says about a committed BIOS job it did not create."""
    held = ", ".join(f"{n}={attr_text(v)}" for n, v in sorted(pending.items())) or "values"
    return (
        f"a BIOS configuration job tuner did not create ({job_name(job)}, {job['state']}) is "
        f"committed on this BMC and applies {held} at the next reset; tuner leaves it alone: "
        f"delete it (DELETE {job['uri']}) or let a reset run it, then run tuner again"
    )


def undo_staged(
    c: BmcClient, a: BiosArgs, d: dict[str, Any], st: Staging
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Take back what tuner staged and no reset applied: delete tuner's own BMC job (iDRAC:
    the pending values it holds go with it), else the settings object's clear-pending action
    when every pending value is tuner's, else PATCH the values in effect back over tuner's
    pending ones. Never touches a job or a pending value tuner did not stage (RedfishError
    saying what to do instead). -> (the new discovery, {attribute: the value undone}, notes)."""
    undone = dict(st.ours)
    notes: list[str] = []
    if st.job and not st.job_ours:
        raise RedfishError(job_foreign(st.job, d["pending"]))
    if st.job and st.job_ours and st.foreign:
        raise RedfishError(
            f"tuner's BIOS job {job_name(st.job)} also holds pending values tuner did not stage "
            f"({', '.join(sorted(st.foreign))}); tuner leaves it alone: delete it "
            f"(DELETE {st.job['uri']}) and stage those values again, or let a reset run it"
        )
    if st.job:
        c.delete_job(st.job["uri"])
        notes.append(f"deleted tuner's BMC job {job_name(st.job)} ({st.job['state']})")
        d = c.discover()
    left = {n: v for n, v in d["pending"].items() if n in st.ours}
    if left:
        if d.get("clear_pending") and set(d["pending"]) == set(left):
            c.clear_pending(d["clear_pending"])
            notes.append("cleared tuner's pending values (the BMC's clear-pending action)")
        else:
            back = {n: d["current"][n] for n in left if n in d["current"]}
            # dependents first, while their gate still holds tuner's pending value; no apply
            # time: no job, nothing to run at a reset
            for part in restore_order(d["registry"], back):
                c.patch_settings(part, [])
            notes.append(
                "set tuner's pending values back to the values in effect: "
                + ", ".join(sorted(back))
            )
        d = c.discover()
    still = sorted(n for n, v in d["pending"].items() if n in undone and n not in st.foreign)
    if still:
        raise RedfishError("tuner's pending values could not be undone: " + ", ".join(still))
    if a.record_dir and a.host:
        settle(a.record_dir, a.host, d["system_uri"], {}, [])
    return d, undone, notes


def record_entry(a: BiosArgs, system: str) -> dict[str, Any] | None:
    if not a.record_dir or not a.host:
        return None
    entry: dict[str, Any] | None = load(a.record_dir, a.host)["systems"].get(system)
    return entry


def stage_and_patch(
    c: BmcClient, a: BiosArgs, d: dict[str, Any], values: dict[str, Any], checked: bool = True
) -> dict[str, Any]:
    """Note `values` as tuner's staging in the record, PATCH them, note the job they made."""
    if a.record_dir and a.host:
        stage(a.record_dir, a.host, d["system_uri"], values, [d["job"]["uri"]] if d["job"] else [])
    if checked:
        sent = patch_checked(c, d, values)
    else:
        sent = c.patch_settings(values, d["supported_apply_times"])
    if sent.get("job") and a.record_dir and a.host:
        staged_job(a.record_dir, a.host, d["system_uri"], sent["job"]["uri"])
    return sent


def applied_by_reset(a: BiosArgs, d: dict[str, Any]) -> None:
    """A reset ran: nothing tuner staged waits any more."""
    if a.record_dir and a.host:
        settle(a.record_dir, a.host, d["system_uri"], {}, [])


# ----------------------------------------------------------------------------- plan/apply/verify


class _Apply:
    """mode plan, apply or verify on one host (see the module docstring for the stages)."""

    def __init__(self, a: BiosArgs, check_mode: bool) -> None:
        self.a = a
        self.mode = "plan" if check_mode else a.mode
        self.facts: ApplyFacts = {
            "mode": self.mode,
            "status": "failed",
            "reboot": "not needed",
            "bad_input": False,
        }
        self.out = Outcome(self.facts)
        self.c: BmcClient | None = None
        self.stage = "connect"
        self.sent_job = ""  # the note on the BMC job a PATCH of this run created

    def say(self, stage: str) -> None:
        self.stage = say(self.a, stage)

    def run(self) -> Outcome:
        try:
            with bmc_lock(self.a) if self.mode == "apply" else contextlib.nullcontext():
                self.say("connect")
                self.c = client(self.a)
                self.c.connect()
                return self._run(self.c)
        except RecordError as e:
            return self.out.fail(f"nothing sent: {e}")
        except RedfishError as e:
            self.out.fail(f"BMC {self.stage} failed: {e}")
            if e.bad_input:
                self.facts["bad_input"] = True
                self.out.msg = f"nothing sent: {e}"
            if self.stage == "patch":
                for r in self.out.results:
                    if r["status"] == "change":
                        r["status"] = "failed"
            return self.out
        except Exception as e:  # noqa: BLE001 - a BMC answer the client did not expect
            return self.out.fail(
                f"BMC {self.stage} failed: unexpected answer ({type(e).__name__}: {e})"[:600]
            )
        finally:
            if self.c is not None:
                self.facts["retries"] = self.c.retries
                self.c.close()

    def _run(self, c: BmcClient) -> Outcome:
        a, facts = self.a, self.facts
        self.say("read")
        d = c.discover()
        pl = plan(
            a.settings, d["registry"], d["current"], d["pending"], verify=self.mode == "verify"
        )
        notes: list[str] = []
        if self.mode in ("apply", "plan") and not pl["errors"]:
            d, pl, notes = self._take_back(c, d, pl)
        msgs = classify_messages(d["messages"])
        facts.update(
            {
                "vendor": pl["vendor"],
                "bmc_vendor": d["vendor"],
                "system": d["system_id"],
                "serial": d["serial"],
                "registry": pl["registry"],
                "warnings": pl["warnings"],
                "topology": pl["topology"],
                "power_state": d["power_state"],
                "settings_messages": texts([m for m in msgs if m["kind"] != "ok"]),
            }
        )
        facts["warnings"] = facts["warnings"] + notes
        rows: list[ApplyRow] = pl["rows"]
        self.out.results = rows
        if pl["errors"]:
            facts["bad_input"] = bool(pl.get("forbidden"))
            return self.out.fail("nothing sent: " + "; ".join(pl["errors"]))
        if self.mode == "verify":
            facts["status"] = verify_status(rows)
            if facts["status"] == "pending":
                facts["reboot"] = "needed"
            return self.out
        if self.mode == "plan":
            return self._plan(pl, rows)
        return self._apply(c, d, pl, rows)

    def _take_back(
        self, c: BmcClient, d: dict[str, Any], pl: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """An apply that changed its mind: what tuner staged earlier and this profile does not
        want (or a job of tuner's that blocks this PATCH) is undone first, then planned again.
        -> (discovery, plan, notes)."""
        a = self.a
        entry = record_entry(a, d["system_uri"])
        st = Staging(entry, d)
        if st.legacy:  # a record from before tuner noted its staging: as before, left alone
            return d, pl, []
        if entry is not None and self.mode == "apply":
            # forget what a reset (or someone) took out of the settings object since
            settle(a.record_dir or "", a.host or "", d["system_uri"], st.ours, st.jobs())
        wanted = {r["attribute"]: r["wanted"] for r in pl["rows"]}
        gates = Registry(d["registry"]).gates
        needed = {g for n in wanted for g, _ in gates.get(n, [])}  # a gate the plan relies on
        unwanted = sorted(
            n
            for n, v in st.ours.items()
            if (n in wanted and attr_text(v) != wanted[n]) or (n not in wanted and n not in needed)
        )
        if not unwanted and not (st.job_ours and pl["patch"]):
            return d, pl, []
        what = ", ".join(f"{n}={attr_text(st.ours[n])}" for n in unwanted) or "its job"
        if self.mode == "plan":
            return (
                d,
                pl,
                [f"would undo what tuner staged earlier and this run does not want: {what}"],
            )
        self.say("undo")
        d, _, notes = undo_staged(c, a, d, st)
        self.out.changed = True
        pl = plan(a.settings, d["registry"], d["current"], d["pending"])
        return d, pl, [f"undone before this run's PATCH (tuner staged it earlier): {what}"] + notes

    def _plan(self, pl: dict[str, Any], rows: list[ApplyRow]) -> Outcome:
        for r in rows:
            r["status"] = {"ok": "unchanged", "change": "would change"}.get(
                r["status"], r["status"]
            )
        self.facts["status"] = "would change" if pl["patch"] else "unchanged"
        if pl["reboot_needed"]:
            self.facts["reboot"] = "would reboot" if self.a.reboot == "if-needed" else "needed"
            if not pl["patch"]:
                self.facts["status"] = "pending reboot"
        return self.out

    def _apply(
        self, c: BmcClient, d: dict[str, Any], pl: dict[str, Any], rows: list[ApplyRow]
    ) -> Outcome:
        a, facts = self.a, self.facts
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
            return self.out.fail("nothing sent: " + job_foreign(d["job"], d["pending"]))
        if pl["patch"]:
            before["job"] = self._send(c, d, pl, rows)
            before["pending"].update(pl["patch"])
        if not pl["reboot_needed"]:
            for r in rows:
                r["status"] = {"ok": "unchanged", "change": "changed"}.get(r["status"], r["status"])
            facts["status"] = "changed" if pl["patch"] else "unchanged"
            if a.also_reset and a.reboot == "if-needed":
                # another layer (the kernel command line) waits for a reboot: one reset for both
                self.stage = "reset"
                c.reset(a.reset_type, d["reset_types"], d["power_state"])
                self.out.changed = True
                facts["reboot"] = "done"
                self.stage = "wait"
                w = c.wait_applied(
                    {"settings_time": d["settings_time"], "pending": {}},
                    a.reset_timeout,
                    a.poll_interval,
                )
                facts["reset_states"] = w["states"]
                if w["outcome"] == "timeout":
                    raise RedfishError(w["reason"])
                applied_by_reset(a, d)
            return self.out
        if a.reboot == "never":
            for r in rows:
                r["status"] = {"ok": "unchanged"}.get(r["status"], "pending reboot")
            facts["status"] = "pending reboot"
            facts["reboot"] = "needed"
            return self.out
        return self._reset_and_check(c, d, rows, before)

    def _send(
        self, c: BmcClient, d: dict[str, Any], pl: dict[str, Any], rows: list[ApplyRow]
    ) -> dict[str, Any] | None:
        """Record the originals, PATCH the plan, check it is pending. -> the BMC job, if any."""
        facts = self.facts
        self.say("record")
        facts["warnings"] = facts["warnings"] + remember_originals(c, d, self.a, rows, pl["patch"])
        self.say("patch")
        sent = stage_and_patch(c, self.a, d, pl["patch"], checked=False)
        self.out.changed = True
        facts["sent"] = True
        facts["apply_time"] = sent["apply_time"]
        facts["job"] = sent["job"]
        notes = []
        if sent["etag_retry"]:
            notes.append("the settings ETag changed under us: sent again with a fresh one")
        if sent["apply_time_retry"]:
            notes.append("the BMC refused @Redfish.SettingsApplyTime: sent without it")
        if sent["job"]:
            self.sent_job = f"BMC job {job_name(sent['job'])}: {sent['job']['state']}"
            notes.append(self.sent_job)
        facts["warnings"] = facts["warnings"] + notes
        staged = c.pending()
        lost = [n for n, v in pl["patch"].items() if attr_text(staged.get(n)) != attr_text(v)]
        if lost:
            raise RedfishError(
                "the BMC accepted the PATCH but does not show pending: " + ", ".join(lost)
            )
        job: dict[str, Any] | None = sent["job"]
        return job

    def _reset_and_check(
        self, c: BmcClient, d: dict[str, Any], rows: list[ApplyRow], before: dict[str, Any]
    ) -> Outcome:
        a, facts = self.a, self.facts
        self.say("reset")
        c.reset(a.reset_type, d["reset_types"], d["power_state"])
        self.out.changed = True
        facts["reboot"] = "done"
        # this run's reset applied what was pending: say so, not "at the next reset"
        facts["warnings"] = [after_reset(w) for w in facts["warnings"]]
        self.say("wait")
        w = c.wait_applied(
            before,
            a.reset_timeout,
            a.poll_interval,
            report=lambda text: say(a, "waiting for POST: " + text.split(",")[0]),
        )
        facts["reset_states"] = w["states"]
        facts["settings_messages"] = texts([m for m in w["messages"] if m["kind"] != "ok"])
        if w["stale"]:
            facts["warnings"] = facts["warnings"] + [
                "older than tuner's PATCH, ignored: " + m["text"] for m in w["stale"]
            ]
        if w["outcome"] == "timeout":
            raise RedfishError(w["reason"])
        applied_by_reset(a, d)
        self.say("verify")
        after = w["bios"].get("Attributes") or {}
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
            return self.out.fail(
                "after the reset: "
                + "; ".join(
                    ([f"not applied: {', '.join(failed_attrs)}"] if failed_attrs else []) + failures
                )
            )
        facts["status"] = "changed"
        if self.sent_job:  # the job noted at PATCH time ran at this reset
            ran = self.sent_job.split(":")[0] + ": ran at this reset"
            facts["warnings"] = [ran if w_ == self.sent_job else w_ for w_ in facts["warnings"]]
        return self.out


def run(a: BiosArgs, check_mode: bool) -> Outcome:
    """mode plan, apply or verify. Never raises RedfishError (a failure with the reason)."""
    return _Apply(a, check_mode).run()


# ----------------------------------------------------------------------------- restore


class _Restore:
    """Put back the values tuner recorded before its first change (tuner rollback).

    Row status: unchanged (the recorded value is in effect, nothing pending), would restore
    (--check), restored (in effect again, or a pending tuner value replaced by the original),
    pending reboot (the original is pending: it takes effect at the next reset), failed."""

    def __init__(self, a: BiosArgs, check_mode: bool) -> None:
        self.a = a
        self.check = check_mode
        self.facts: RestoreFacts = {"mode": "restore", "status": "failed", "reboot": "not needed"}
        self.out = Outcome(self.facts)
        self.c: BmcClient | None = None
        self.stage = "read record"

    def say(self, stage: str) -> None:
        self.stage = say(self.a, stage)

    def run(self) -> Outcome:
        self.say("read record")
        try:
            with bmc_lock(self.a) if not self.check else contextlib.nullcontext():
                return self._run()
        except (RedfishError, RecordError) as e:
            self.out.fail(
                f"BMC {self.stage} failed: {e}" if isinstance(e, RedfishError) else str(e)
            )
            if self.stage == "patch":
                for r in self.out.results:
                    if r["status"] == "unchanged" and r["current"] != r["original"]:
                        r["status"] = "failed"
            return self.out
        except Exception as e:  # noqa: BLE001 - a BMC answer the client did not expect
            return self.out.fail(
                f"BMC {self.stage} failed: unexpected answer ({type(e).__name__}: {e})"[:600]
            )
        finally:
            if self.c is not None:
                self.c.close()

    def _run(self) -> Outcome:
        a, facts = self.a, self.facts
        rec = load(a.record_dir, a.host) if a.record_dir and a.host else None
        if not rec or not rec["systems"]:
            facts["status"] = "nothing to do"
            return self.out
        self.say("connect")
        self.c = c = client(a)
        c.connect()
        self.say("read")
        d = c.discover()
        system = d["system_uri"]
        facts.update({"bmc_vendor": d["vendor"], "system": system})
        entry = rec["systems"].get(system)
        if entry is None:
            return self.out.fail(
                f"nothing restored: tuner recorded {', '.join(sorted(rec['systems']))}, "
                f"but the BMC shows {system}"
            )
        serial, uuid = system_ids(c, d)
        facts["serial"] = serial
        if not same_board(entry, serial, uuid):
            return self.out.fail(
                f"nothing restored: {system} has serial {serial!r}, but tuner recorded its "
                f"values on serial {entry.get('serial')!r} (board replaced?); the record is "
                "kept, remove it to accept this board as it is"
            )
        facts["warnings"] = []
        originals: dict[str, Any] = entry["attributes"]
        st = Staging(entry, d)
        # tuner's own pending values that are not the originals: taken back before any reset
        undo = {n: v for n, v in st.ours.items() if attr_text(v) != attr_text(originals.get(n))}
        undone: dict[str, Any] = {}
        if undo and self.check:
            undone = dict(undo)
        elif undo:
            self.say("undo")
            d, undone, notes = undo_staged(c, a, d, st)
            self.out.changed = True
            facts["sent"] = True
            facts["warnings"] += notes
            st = Staging({**entry, "staged": {}, "jobs": []}, d)
        pending = {n: v for n, v in d["pending"].items() if n not in undo or not self.check}
        rows: list[RestoreRow] = []
        patch: dict[str, Any] = {}
        blocked: list[str] = []
        for name, orig in sorted(originals.items()):
            row: RestoreRow = {
                "attribute": name,
                "original": attr_text(orig),
                "current": attr_text(d["current"].get(name)),
                "pending": attr_text(pending[name]) if name in pending else None,
                "after": None,
                "status": "unchanged",
                "message": "",
            }
            rows.append(row)
            if name in pending and row["pending"] != row["original"]:
                # a pending value tuner did not stage (or a legacy record's): left alone
                msg = (
                    f"the pending value {row['pending']} was not staged by tuner; tuner leaves "
                    "it: clear it on the BMC (or let a reset apply it), then run tuner "
                    "rollback again"
                )
                row["message"] = msg
                if row["current"] == row["original"]:
                    facts["warnings"].append(f"{name}: {msg}")
                else:
                    row["status"] = "failed"
                    blocked.append(name)
            elif row["current"] == row["original"]:
                if name in undone:
                    row["pending"] = attr_text(undone[name])
                    row["status"] = "would restore" if self.check else "restored"
                    row["message"] = f"tuner's pending value {row['pending']} was taken back"
            elif name in pending:
                row["status"] = "pending reboot"  # the original already waits for a reset
            else:
                patch[name] = orig
        self.out.results = rows
        needs_reset = [r for r in rows if r["current"] != r["original"] and r["status"] != "failed"]
        foreign_job = d["job"] if d["job"] and not st.job_ours else None
        if self.check:
            for r in rows:
                if r["attribute"] in patch:
                    r["status"] = "would restore"
            busy = patch or needs_reset or undone
            facts["status"] = "would restore" if busy else "nothing to do"
            if needs_reset:
                facts["reboot"] = "would reboot" if a.reboot == "if-needed" else "needed"
            if foreign_job:
                facts["warnings"].append(job_foreign(foreign_job, d["pending"]))
            return self.out
        if not (needs_reset and a.reboot == "if-needed"):
            if patch and foreign_job:
                return self.out.fail("nothing sent: " + job_foreign(foreign_job, d["pending"]))
            held = self._patch_only(c, d, rows, patch)
            if needs_reset or held:
                for r in needs_reset:
                    r["status"] = "pending reboot"
                facts["status"] = "pending reboot"
                facts["reboot"] = "needed"
                return self._blocked(blocked) if blocked else self.out
        else:
            if foreign_job:
                facts["warnings"].append(
                    "the reset this rollback asked for also ran a BIOS job tuner did not "
                    f"create ({job_name(foreign_job)})"
                )
            failed = self._with_resets(c, d, entry, rows, patch, needs_reset)
            if failed:
                return self.out.fail(f"after the reset: not restored: {', '.join(failed)}")
        if blocked:
            return self._blocked(blocked)
        self.say("forget")
        if not (a.record_dir and a.host):  # restore is only reached with a record (see above)
            raise RuntimeError("restore without record_dir and host")
        forget(a.record_dir, a.host, system)
        facts["status"] = "restored" if (patch or needs_reset or undone) else "nothing to do"
        return self.out

    def _blocked(self, names: list[str]) -> Outcome:
        return self.out.fail(
            f"not restored: {', '.join(names)}: a pending value tuner did not stage waits "
            "there; tuner leaves it: clear it on the BMC (or let a reset apply it), then run "
            "tuner rollback again"
        )

    def _patch_only(
        self, c: BmcClient, d: dict[str, Any], rows: list[RestoreRow], patch: dict[str, Any]
    ) -> set[str]:
        """No reset: PATCH the originals (dependents first). -> attributes a BMC job holds."""
        held: set[str] = set()  # later stages a committed BMC job keeps for now
        if patch:
            self.say("patch")
            parts = restore_order(d["registry"], patch)  # dependents first
            for i, part in enumerate(parts):
                stage_and_patch(c, self.a, d, part)
                self.out.changed = True
                self.facts["sent"] = True
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
        return held

    def _reset(self, c: BmcClient, d: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """Reset, wait for POST, read again. -> the new discovery."""
        a = self.a
        self.say("reset")
        c.reset(a.reset_type, d["reset_types"], d["power_state"])
        self.out.changed = True
        self.facts["reboot"] = "done"
        self.say("wait")
        w = c.wait_applied(before, a.reset_timeout, a.poll_interval)
        if w["outcome"] == "timeout":
            raise RedfishError(w["reason"])
        applied_by_reset(a, d)
        self.say("read")
        out: dict[str, Any] = c.discover()
        return out

    def _with_resets(
        self,
        c: BmcClient,
        d: dict[str, Any],
        entry: dict[str, Any],
        rows: list[RestoreRow],
        patch: dict[str, Any],
        needs_reset: list[RestoreRow],
    ) -> list[str]:
        """One reset per stage: the attributes a gate locks are restored (and reset into
        effect) while the gate still allows them, holding the gate at its value in effect;
        the gate follows in the next stage. -> the attributes not restored."""
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
                d = self._reset(c, d, before_wait(d, {}))
                staged = {**d["current"], **d["pending"]}
                send = {n: v for n, v in want.items() if attr_text(staged.get(n)) != attr_text(v)}
            job = d["job"]
            if send:
                self.say("patch")
                job = stage_and_patch(c, self.a, d, send).get("job") or job
                self.out.changed = True
                self.facts["sent"] = True
            if all(attr_text(d["current"].get(n)) == attr_text(values[n]) for n in group):
                continue
            d = self._reset(c, d, {**before_wait(d, send), "job": job})
        self.say("verify")
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
        return failed


def restore(a: BiosArgs, check_mode: bool) -> Outcome:
    """mode restore (tuner rollback). Never raises RedfishError/RecordError."""
    return _Restore(a, check_mode).run()
