"""tuner's Redfish client for BIOS work, built on OpenStack sushy.

Shipped to the `tuner_bios` Ansible module as `playbooks/module_utils/tuner_redfish.py` (a
symlink); the module runs on the control node with the interpreter tuner runs in
(`ansible_playbook_python`), where sushy is installed as a dependency of tuner.

What sushy does for us: the HTTP session (requests), Basic or session auth with a new login
when a session answers 401 (`sushy.auth`), and the registry `Location` forms of a
`MessageRegistryFile` (`Uri`; `ArchiveUri` + `ArchiveFile`, a zip; `PublicationUri`, fetched
from the publisher). What this thin layer adds (see docs/bios.md "The Redfish client"):

* retries with exponential backoff and an overall bound, for connection errors, 5xx/503
  answers to GETs and vendor "busy" answers to anything (iDRAC `SYS518`, iLO
  `InvalidOperationForSystemState`, Base `ServiceTemporarilyUnavailable`);
* the system selector (`bmc_system`, else the one System that has a Bios, else an error
  naming the choices);
* registry discovery through the Registries collection whatever the files are called, and
  Dell's `Bios/BiosRegistry`; a registry that does not parse is bad input;
* PATCH with `If-Match` = the settings resource's own ETag (one retry with a fresh ETag on
  412/428), `@Redfish.SettingsApplyTime` only when `SupportedApplyTimes` advertises it (and
  one retry without it on a 400 naming it), 202 task monitors followed, a job/task that waits
  for the reset reported (Dell's BIOS configuration job), a committed job not fought;
* a reboot wait that watches power state, the settings object emptying, `Settings.Time` and
  `ETag`, settings messages (by severity) and the job, with a deadline, every state reported.

The password is held only in memory and never appears in a message.

API (used by `playbooks/library/tuner_bios.py`)::

    c = BmcClient(url, user, password, auth="basic"|"session", verify=True, ca_bundle=None,
                  timeout=30, system=None, retry_for=60)
    c.connect()                  # service root + login; RedfishError on failure
    c.select_system() -> str     # the system URI (BadInput when bmc_system names none)
    c.get_bios() -> dict         # the Bios resource (Attributes, @Redfish.Settings, ...)
    c.registry() -> dict         # the attribute registry (BadInput when it does not parse)
    c.pending() -> dict          # attributes waiting for the next reset (diff for iLO)
    c.discover() -> dict         # all of the above, for planning (GETs only)
    c.patch_settings(values) -> dict   # {"status", "apply_time", "etag_retry", "job", ...}
    c.reset(reset_type) -> str   # the reset type sent
    c.wait_applied(before, deadline_s, poll, report=print) -> dict  # {"bios", "states", ...}
    c.close()                    # log out (session auth)
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_exc
from sushy.resources import base as sushy_base
from sushy.resources.registry import message_registry_file as sushy_mrf

logging.getLogger("sushy").setLevel(logging.CRITICAL)  # its warnings would reach stderr

# Vendor answers that mean "busy, try again" (as sushy's connector knows them, plus DMTF's).
BUSY_MARKERS = ("SYS518", "InvalidOperationForSystemState", "ServiceTemporarilyUnavailable")
# A job/task in one of these states waits for the system reset (Dell: "Scheduled").
WAITING_STATES = ("New", "Pending", "Scheduled", "Starting", "Suspended", "Service")
DONE_STATES = ("Completed",)
FAILED_STATES = ("Exception", "Killed", "Cancelled", "Failed", "CompletedWithErrors")
COMMITTED_MARKERS = ("already committed", "SYS011", "pending configuration")


class RedfishError(Exception):
    """A request failed: connection, timeout, TLS, HTTP status or a bad answer."""

    def __init__(self, message: str, status: int | None = None, *, bad_input: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.bad_input = bad_input


class BadInput(RedfishError):
    """The inventory or the BMC's own description makes the work impossible (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, bad_input=True)


def error_text(body: Any) -> str:
    """The messages of a Redfish error body (MessageId: Message; ...), else ''."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    if not isinstance(body, dict):
        return ""
    err: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
    infos = err.get("@Message.ExtendedInfo") or []
    parts = []
    for i in infos if isinstance(infos, list) else []:
        if isinstance(i, dict):
            mid = str(i.get("MessageId", "")).split(".")[-1]
            parts.append(f"{mid}: {i.get('Message', '')}".strip(": "))
    if not parts and err.get("message"):
        parts.append(str(err["message"]))
    return "; ".join(parts)[:400]


def odata_id(doc: dict[str, Any], key: str) -> str | None:
    v = doc.get(key)
    if isinstance(v, dict) and isinstance(v.get("@odata.id"), str):
        return str(v["@odata.id"])
    return None


# --------------------------------------------------------------------------- messages


FAILURE_IDS = ("SettingsFailed", "PropertyValueConflict", "PropertyValueNotInList")


def classify_message(m: dict[str, Any]) -> dict[str, Any]:
    """A settings message as {id, severity, kind (ok|warning|failure), text, related}.

    Severity is `MessageSeverity` (Message v1_1+), else the older `Severity`; a message
    without either takes its kind from the MessageId (`Success` ok, `SettingsFailed` and
    conflicts failure, anything else warning). `Critical` is a failure, `OK` is success.
    """
    mid = str(m.get("MessageId", ""))
    short = mid.split(".")[-1]
    sev = str(m.get("MessageSeverity") or m.get("Severity") or "")
    if sev == "Critical" or short in FAILURE_IDS:
        kind = "failure"
    elif sev == "OK" or (not sev and short == "Success"):
        kind = "ok"
    else:
        kind = "warning"
    related = [str(r).split("/")[-1] for r in m.get("RelatedProperties") or []]
    text = str(m.get("Message") or "")
    shown = f"{short}{'(' + ','.join(related) + ')' if related else ''}: {text}".strip(": ")
    return {"id": mid, "severity": sev or None, "kind": kind, "text": shown, "related": related}


def classify_messages(msgs: Any) -> list[dict[str, Any]]:
    return [classify_message(m) for m in msgs or [] if isinstance(m, dict)]


# --------------------------------------------------------------------------- the client


class _RawResource(sushy_base.ResourceBase):  # type: ignore[misc]
    """Any resource, kept as its JSON (sushy's readers fetch it: plain, zip or public)."""


class _Public:
    """sushy's connector for PublicationUri downloads, with a timeout."""

    def __init__(self, timeout: float, verify: bool | str) -> None:
        self.timeout = timeout
        self.verify = verify

    def get(self, path: str, **_: Any) -> requests.Response:
        return requests.get(path, timeout=self.timeout, verify=self.verify)


class BmcClient:
    """One BMC, one system on it. See the module docstring for the API."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        auth: str = "basic",
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        system: str | None = None,
        retry_for: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise BadInput(f"not an http(s) URL: {base_url!r}")
        self.base = f"{u.scheme}://{u.netloc}"
        self.timeout = timeout
        self.system_wanted = system or None
        # retries stop after this many seconds (default: 3 request timeouts, 3..120 s)
        self.retry_for = retry_for if retry_for is not None else min(max(3 * timeout, 3.0), 120.0)
        self._sleep = sleep
        self._verify: bool | str = (ca_bundle or True) if verify else False
        self._auth = (
            sushy_auth.SessionAuth(username, password)
            if auth == "session"
            else sushy_auth.BasicAuth(username, password)
        )
        self._conn = sushy_connector.Connector(
            self.base,
            verify=self._verify,
            # sushy retries a 5xx GET (and busy answers) once; our loop (backoff, a bound)
            # wraps every request. (0 would make sushy try lost connections 3 times.)
            server_side_retries=1,
            server_side_retries_delay=0.05,
            default_request_timeout=timeout,
        )
        self._root: Any = None
        self.root_doc: dict[str, Any] = {}
        self.system_uri: str | None = None
        self.system_doc: dict[str, Any] = {}
        self.bios_uri: str | None = None
        self.settings_uri: str | None = None
        self._registry: dict[str, Any] | None = None
        self.registry_uri: str | None = None
        self.settings_missing: str | None = None  # why there is no settings object to stage in
        self.retries: list[str] = []  # what was retried, for the report

    # ------------------------------------------------------------------ requests

    def connect(self) -> None:
        """GET the service root and log in (session auth: one POST, then a token). Idempotent."""
        if self._root is not None:
            return
        self._retrying("GET /redfish/v1/", lambda: self._open_root())
        self.root_doc = dict(getattr(self._root, "json", None) or {})

    login = connect  # the name of tuner's earlier client

    def _open_root(self) -> None:
        self._root = sushy.Sushy(self.base, auth=self._auth, connector=self._conn)

    def close(self) -> None:
        """Log out (session auth; Basic: nothing to do)."""
        try:
            self._auth.close()
        except Exception:  # noqa: BLE001 - logging out is best effort
            pass

    def logout(self) -> None:  # the name of tuner's earlier client
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One request with retries -> (status, JSON body or {}, lower-case headers)."""
        self.connect()
        url = path if path.startswith("/") else path
        if not path.startswith("/"):
            if not path.startswith(self.base + "/"):
                raise RedfishError(f"refusing to follow a link to another host: {path}")
            url = path[len(self.base) :]

        def once() -> requests.Response:
            return self._conn._op(  # noqa: SLF001 - the one generic entry point sushy has
                method, url, data=body, headers=headers, timeout=self.timeout
            )

        resp = self._retrying(f"{method} {url}", once, idempotent=method in ("GET", "HEAD"))
        doc: dict[str, Any] = {}
        if resp.content:
            try:
                parsed = resp.json()
            except ValueError:
                raise RedfishError(f"{method} {url}: the answer is not JSON") from None
            if isinstance(parsed, dict):
                doc = parsed
        return resp.status_code, doc, {k.lower(): v for k, v in resp.headers.items()}

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)[1]

    def _retrying(self, what: str, fn: Callable[[], Any], idempotent: bool = True) -> Any:
        """Call fn; retry with backoff while the retry budget (`retry_for` s) lasts.

        Retried: busy answers (503, iDRAC SYS518, iLO InvalidOperationForSystemState) to
        any method; 5xx answers to GETs; a refused connection twice (a BMC restarting), a
        timeout once (each try costs a whole timeout), a GET whose kept-alive connection the
        BMC closed without answering once. Never: 4xx, TLS errors.
        """
        end = time.monotonic() + self.retry_for
        delay = 0.2
        conn_tries = 0
        while True:
            try:
                return fn()
            except sushy_exc.HTTPError as e:
                detail = _http_detail(e)
                busy = any(m in detail for m in BUSY_MARKERS) or e.status_code == 503
                retry = busy or (idempotent and e.status_code >= 500)
                if e.status_code in (401, 403):
                    detail = (detail + "; " if detail else "") + (
                        "the BMC refused tuner's credentials: check bmc_username and the password"
                        if e.status_code == 401
                        else "the BMC account lacks the privilege for this"
                    )
                err = RedfishError(
                    f"{what}: HTTP {e.status_code}" + (f" ({detail})" if detail else ""),
                    e.status_code,
                )
                err.body = getattr(e, "body", None) or {}  # type: ignore[attr-defined]
            except sushy_exc.ConnectionError as e:
                reason = _conn_reason(e, self.timeout)
                conn_tries += 1
                # a kept-alive connection the BMC closed between two requests (iLO and
                # OpenBMC do after an idle while): an idempotent request is sent once more
                limit = (
                    2
                    if "refused" in reason
                    else (1 if "timeout" in reason or "closed the connection" in reason else 0)
                )
                retry = conn_tries <= limit and (idempotent or "refused" in reason)
                err = RedfishError(f"{what}: {reason}")
            except sushy_exc.SushyError as e:
                raise RedfishError(f"{what}: {e}") from None
            except ValueError:
                raise RedfishError(f"{what}: the answer is not JSON") from None
            if not retry or time.monotonic() + delay > end:
                raise err
            self.retries.append(f"{err} (retried)")
            self._sleep(delay)
            delay = min(delay * 2, 10.0)

    # ------------------------------------------------------------------ discovery

    def select_system(self) -> str:
        """The system to work on: `bmc_system`, else the one System that has a Bios."""
        if self.system_uri:
            return self.system_uri
        systems = odata_id(self.root_doc, "Systems") or "/redfish/v1/Systems"
        members = [
            str(m["@odata.id"])
            for m in self.get(systems).get("Members") or []
            if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)
        ]
        if not members:
            raise RedfishError("the BMC lists no computer system")
        ids = [m.rstrip("/").split("/")[-1] for m in members]
        if self.system_wanted:
            want = self.system_wanted.rstrip("/")
            hits = [m for m, i in zip(members, ids, strict=True) if want in (i, m.rstrip("/"))]
            if not hits:
                raise BadInput(
                    f"bmc_system {self.system_wanted!r} is not a system of this BMC "
                    f"(it has: {', '.join(ids)})"
                )
            self.system_uri = hits[0]
            self.system_doc = self.get(hits[0])
            return hits[0]
        with_bios = []
        docs = {}
        for m in members:
            docs[m] = doc = self.get(m)
            if odata_id(doc, "Bios"):
                with_bios.append(m)
        if len(with_bios) != 1:
            why = "none has a Bios resource" if not with_bios else "several have a Bios"
            choices = [m.rstrip("/").split("/")[-1] for m in (with_bios or members)]
            raise BadInput(
                f"this BMC has {len(members)} systems and {why}: set bmc_system to one of "
                + ", ".join(choices)
            )
        self.system_uri = with_bios[0]
        self.system_doc = docs[with_bios[0]]
        return self.system_uri

    def get_bios(self) -> dict[str, Any]:
        """The Bios resource of the selected system (values in effect, @Redfish.Settings)."""
        system_uri = self.select_system()
        if not self.bios_uri:
            self.bios_uri = odata_id(self.system_doc, "Bios")
            if not self.bios_uri:
                raise RedfishError(f"{system_uri} has no Bios resource")
        bios = self.get(self.bios_uri)
        self.settings_uri = self.settings_uri or settings_uri_of(bios)
        if not self.settings_uri:
            # AMI MegaRAC (Gigabyte, ASRock Rack, Lenovo): no @Redfish.Settings in Bios, but
            # the settings object is there under one of the usual names.
            for guess in (
                self.bios_uri.rstrip("/") + "/Settings",
                self.bios_uri.rstrip("/") + "/SD",
            ):
                try:
                    self.get(guess)
                except RedfishError as e:
                    if e.status not in (404, 405, 501):
                        raise
                    continue
                self.settings_uri = guess
                break
            else:
                # reading (plan, verify) goes on; staging values cannot (patch_settings says)
                self.settings_missing = (
                    f"{self.bios_uri} has no @Redfish.Settings SettingsObject, and neither "
                    "Bios/Settings nor Bios/SD can be read"
                )
        return bios

    def get_settings(self) -> tuple[dict[str, Any], str | None]:
        """The settings object and its own ETag (header, else @odata.etag)."""
        if not self.settings_uri:
            self.get_bios()
        if not self.settings_uri:
            raise RedfishError(self.settings_missing or "no settings object", 404)
        _, doc, hdrs = self.request("GET", self.settings_uri)
        etag = hdrs.get("etag") or doc.get("@odata.etag")
        return doc, (str(etag) if etag else None)

    def pending(self, bios: dict[str, Any] | None = None) -> dict[str, Any]:
        """Values waiting for the next reset. iLO shows every attribute there: the diff."""
        bios = bios if bios is not None else self.get_bios()
        doc, _ = self.get_settings()
        current = bios.get("Attributes") or {}
        staged = doc.get("Attributes") or {}
        if not isinstance(staged, dict):
            return {}
        return {k: v for k, v in staged.items() if k not in current or current.get(k) != v}

    def registry(self, bios: dict[str, Any] | None = None) -> dict[str, Any]:
        """The attribute registry named by Bios.AttributeRegistry, found wherever it lives."""
        if self._registry is not None:
            return self._registry
        bios = bios if bios is not None else self.get_bios()
        rid = str(bios.get("AttributeRegistry") or "")
        regs = odata_id(self.root_doc, "Registries") or "/redfish/v1/Registries"
        tried: list[str] = []
        bodies: list[tuple[str, dict[str, Any]]] = []
        try:
            members = [
                str(m["@odata.id"])
                for m in self.get(regs).get("Members") or []
                if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)
            ]
        except RedfishError as e:
            if e.status not in (404, 405, 501):
                raise
            members = []

        def rank(uri: str) -> int:
            tail = uri.rstrip("/").split("/")[-1].lower()
            if rid and tail == rid.lower():
                return 0
            if rid and tail.split(".")[0] == rid.lower().split(".")[0]:
                return 1
            if "bios" in tail or "attribute" in tail:
                return 2
            return 3

        # Files named like the registry first; message registries (rank 3) last, only if needed.
        for uri in sorted(members, key=rank):
            if rank(uri) == 3 and bodies:
                break
            for loc_uri, body in self._registry_bodies(uri, tried):
                if "AttributeRegistry" not in str(body.get("@odata.type", "")):
                    if not isinstance(body.get("RegistryEntries"), dict) or not (
                        body.get("RegistryEntries") or {}
                    ).get("Attributes"):
                        continue
                bodies.append((loc_uri, body))
                if rid and body.get("Id") == rid:
                    return self._keep(loc_uri, body)
        # Dell: the registry body also lives next to the Bios resource.
        if self.bios_uri:
            dell = self.bios_uri.rstrip("/") + "/BiosRegistry"
            if dell not in tried:
                tried.append(dell)
                try:
                    body = self.get(dell)
                except RedfishError as e:
                    if e.status not in (404, 405, 501):
                        raise
                    body = {}
                if body:
                    if not rid or body.get("Id") == rid or not bodies:
                        return self._keep(dell, body)
        if len(bodies) == 1:
            return self._keep(*bodies[0])
        names = ", ".join(str(b.get("Id")) for _, b in bodies) or "none"
        raise RedfishError(
            f"attribute registry {rid!r} not found under {regs} "
            f"(attribute registries there: {names}; tried {len(tried)} locations)"
        )

    def _registry_bodies(self, file_uri: str, tried: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Each Location of a registry file, read with sushy (Uri, ArchiveUri, PublicationUri)."""
        try:
            f = sushy_mrf.MessageRegistryFile(self._conn, file_uri)
        except sushy_exc.SushyError as e:
            status = getattr(e, "status_code", None)
            if status in (404, 405, 501) or isinstance(e, sushy_exc.MissingAttributeError):
                return []
            raise RedfishError(f"GET {file_uri}: {e}", status) from None
        out = []
        for loc in f.location or []:
            if loc.uri:
                where, reader = loc.uri, None
                conn = self._conn
            elif loc.archive_uri:
                where, reader = loc.archive_uri, sushy_base.JsonArchiveReader(loc.archive_file)
                conn = self._conn
            elif loc.publication_uri:
                where, reader = loc.publication_uri, sushy_base.JsonPublicFileReader()
                conn = _Public(self.timeout, self._verify)
            else:
                continue
            tried.append(where)

            def fetch(w: str = where, r: Any = reader, c: Any = conn) -> Any:
                return _RawResource(c, w, reader=r)

            try:
                res = self._retrying(f"GET {where}", fetch)
            except RedfishError as e:
                if str(e).endswith("the answer is not JSON"):
                    raise BadInput(f"the attribute registry at {where} does not parse") from None
                if e.status in (404, 405, 501) or e.status is None and loc.publication_uri:
                    continue
                raise
            except Exception as e:  # noqa: BLE001 - whatever the reader met: the body is unusable
                raise BadInput(f"the attribute registry at {where} does not parse: {e}") from None
            body = res.json
            if isinstance(body, dict):
                out.append((where, body))
        return out

    def _keep(self, uri: str, body: dict[str, Any]) -> dict[str, Any]:
        check_registry(body, uri)
        self.registry_uri = uri
        self._registry = body
        return body

    def committed_job(self) -> dict[str, Any] | None:
        """A BIOS configuration job waiting for the reset in iDRAC's job queue, or None.

        Only asked of an iDRAC (`Managers/iDRAC.Embedded.1/Jobs`); elsewhere None.
        """
        vendor = str(self.root_doc.get("Vendor") or self.system_doc.get("Manufacturer") or "")
        if "dell" not in vendor.lower():
            return None
        queue = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs"
        try:
            members = self.get(queue).get("Members") or []
        except RedfishError as e:
            if e.status in (401, None) or (e.status or 0) >= 500:
                raise
            return None  # no job queue here
        for m in members:
            uri = m.get("@odata.id") if isinstance(m, dict) else None
            if not isinstance(uri, str):
                continue
            job = self.get(uri)
            kind = f"{job.get('JobType', '')} {job.get('Name', '')}".lower()
            if _task_state(job) in WAITING_STATES and "bios" in kind:
                return {"uri": uri, "state": _task_state(job), "messages": []}
        return None

    def delete_job(self, uri: str) -> None:
        """DELETE a BMC job. On an iDRAC a Scheduled BIOS configuration job goes, and with it
        the pending values it would apply (docs/bios.md "Undo before the reboot")."""
        self.request("DELETE", uri)

    def clear_pending(self, target: str) -> None:
        """POST the settings object's clear-pending action (iDRAC: Oem DellManager.ClearPending)."""
        self.request("POST", target, {})

    def discover(self) -> dict[str, Any]:
        """Everything planning needs, GETs only."""
        self.select_system()
        bios = self.get_bios()
        registry = self.registry(bios)
        try:
            settings_doc, settings_etag = self.get_settings()
        except RedfishError as e:
            if e.status is None or (e.status < 500 and e.status not in (403, 404, 405)):
                raise  # the BMC is gone, or refuses tuner: not a missing settings object
            # plan and verify only read: without the settings object the values in effect
            # still decide; what waits for a reset is unknown (and apply cannot stage)
            self.settings_missing = self.settings_missing or f"the settings object: {e}"
            settings_doc, settings_etag = {}, None
        current = bios.get("Attributes") or {}
        staged = settings_doc.get("Attributes") or {}
        pending = {k: v for k, v in staged.items() if k not in current or current.get(k) != v}
        s = bios.get("@Redfish.Settings") or {}
        system = self.system_doc
        actions = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        apply_times = list(
            s.get("SupportedApplyTimes")
            or (settings_doc.get("@Redfish.Settings") or {}).get("SupportedApplyTimes")
            or []
        )
        return {
            "vendor": str(self.root_doc.get("Vendor") or system.get("Manufacturer") or ""),
            "system_uri": self.system_uri,
            "system_id": str(system.get("Id") or ""),
            "serial": system.get("SerialNumber"),
            "power_state": system.get("PowerState"),
            "reset_uri": actions.get("target") or f"{self.system_uri}/Actions/ComputerSystem.Reset",
            "reset_types": actions.get("ResetType@Redfish.AllowableValues") or [],
            "bios_uri": self.bios_uri,
            "settings_uri": self.settings_uri,
            "settings_etag": settings_etag,
            "settings_time": s.get("Time"),
            "bios_settings_etag": s.get("ETag"),
            "supported_apply_times": apply_times,
            "messages": s.get("Messages") or [],
            "current": current,
            "pending": pending,
            "registry": registry,
            "registry_uri": self.registry_uri,
            "job": self.committed_job(),
            "clear_pending": clear_pending_target(settings_doc),
            "settings_unreadable": self.settings_missing,
        }

    # ------------------------------------------------------------------ writes

    def patch_settings(
        self, values: dict[str, Any], apply_times: list[str] | None = None
    ) -> dict[str, Any]:
        """PATCH the settings object. -> {status, apply_time, etag_retry, job, messages}.

        `apply_times`: what the service advertises; `OnReset` is sent only when listed.
        """
        if not self.settings_uri:
            self.get_bios()
        if not self.settings_uri or self.settings_missing:
            raise RedfishError(
                "cannot stage BIOS values: " + (self.settings_missing or "no settings object")
            )
        _, etag = self.get_settings()
        body: dict[str, Any] = {"Attributes": dict(values)}
        use_apply = "OnReset" in (apply_times or [])
        if use_apply:
            body["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
        out: dict[str, Any] = {
            "status": None,
            "apply_time": None,
            "etag_retry": False,
            "apply_time_retry": False,
            "job": None,
            "messages": [],
        }
        for _attempt in range(3):
            headers = {"If-Match": etag} if etag else None
            try:
                status, doc, hdrs = self.request("PATCH", self.settings_uri, body, headers)
            except RedfishError as e:
                text = str(e)
                if e.status in (412, 428) and not out["etag_retry"]:
                    out["etag_retry"] = True
                    _, etag = self.get_settings()
                    if e.status == 428 and not etag:
                        raise RedfishError(
                            f"{text}: the BMC requires If-Match but shows no ETag "
                            "on the settings object",
                            e.status,
                        ) from None
                    continue
                if (
                    e.status == 400
                    and use_apply
                    and not out["apply_time_retry"]
                    and "SettingsApplyTime" in text + json.dumps(getattr(e, "body", {}))
                ):
                    out["apply_time_retry"] = True
                    body.pop("@Redfish.SettingsApplyTime", None)
                    use_apply = False
                    continue
                if any(m.lower() in text.lower() for m in COMMITTED_MARKERS):
                    raise RedfishError(
                        "a BIOS configuration job is already committed on this BMC; tuner "
                        "leaves it alone: reboot the system to apply it (or delete the job) "
                        f"and run tuner again ({text})",
                        e.status,
                    ) from None
                raise
            out["status"] = status
            out["apply_time"] = "OnReset" if use_apply else None
            out["messages"] = classify_messages(
                (doc.get("error") or {}).get("@Message.ExtendedInfo")
                or doc.get("@Message.ExtendedInfo")
            )
            loc = hdrs.get("location")
            if status == 202 and loc:
                out["job"] = self.follow_task(urllib.parse.urlsplit(loc).path)
            return out
        raise RedfishError(f"PATCH {self.settings_uri}: gave up after retries")

    def follow_task(self, monitor: str, deadline_s: float | None = None) -> dict[str, Any]:
        """Follow a 202 task monitor until it is done or waits for the reset.

        -> {"uri", "state", "messages"}. A job that waits for the reset (Dell "Scheduled")
        is returned as it is; a failed one raises.
        """
        end = time.monotonic() + (deadline_s if deadline_s is not None else self.timeout * 4)
        delay = 0.2
        while True:
            status, doc, hdrs = self.request("GET", monitor)
            state = _task_state(doc)
            msgs = classify_messages(doc.get("Messages"))
            if state in FAILED_STATES:
                text = "; ".join(m["text"] for m in msgs) or doc.get("Message") or ""
                raise RedfishError(f"task {monitor} {state}" + (f": {text}" if text else ""))
            if status != 202 and (state is None or state in DONE_STATES):
                return {"uri": monitor, "state": state or "Completed", "messages": msgs}
            if state in WAITING_STATES:
                return {"uri": monitor, "state": state, "messages": msgs}
            if time.monotonic() >= end:
                return {"uri": monitor, "state": state or "Running", "messages": msgs}
            retry_after = hdrs.get("retry-after")
            wait = delay
            if retry_after and retry_after.isdigit():
                wait = min(float(retry_after), 5.0)
            self._sleep(wait)
            delay = min(delay * 1.5, 2.0)

    def reset(self, reset_type: str, allowed: list[str] | None = None, power: Any = None) -> str:
        """POST ComputerSystem.Reset; picks a type the system allows. -> the type sent."""
        self.select_system()
        actions = (self.system_doc.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        target = actions.get("target") or f"{self.system_uri}/Actions/ComputerSystem.Reset"
        allowed = allowed or actions.get("ResetType@Redfish.AllowableValues") or []
        if allowed and reset_type not in allowed:
            reset_type = "ForceRestart" if "ForceRestart" in allowed else reset_type
        if power is not None and power != "On":
            reset_type = "On"
        self.request("POST", target, {"ResetType": reset_type})
        return reset_type

    # ------------------------------------------------------------------ the wait

    def wait_applied(
        self,
        before: dict[str, Any],
        deadline_s: float,
        poll: float = 2.0,
        report: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Wait after a reset until the BIOS took the pending values, or the deadline.

        `before`: {"settings_time", "bios_settings_etag", "messages", "job", "pending"} as
        seen before the PATCH/reset. Done when PowerState is On, the job (if any) is
        Completed, and the pending values are gone from the settings object or
        Settings.Time/ETag moved. -> {"bios", "states", "outcome" (applied|timeout|failed),
        "messages" (new ones, classified), "stale" (messages older than our PATCH)}.
        """
        assert self.system_uri and self.bios_uri
        end = time.monotonic() + deadline_s
        states: list[str] = []
        last_key: tuple[Any, ...] | None = None  # the last state reported
        job = before.get("job") or None
        delay = min(poll, 0.2)
        bios: dict[str, Any] = {}
        old_msgs = [json.dumps(m, sort_keys=True) for m in before.get("messages") or []]
        seen_off = False

        def note(text: str) -> None:
            states.append(text)
            if report:
                report(text)

        note("reset accepted")
        while True:
            try:
                power = self.get(self.system_uri).get("PowerState")
                seen_off = seen_off or power != "On"
                job_state = None
                if job and job.get("uri"):
                    job_doc = self.get(job["uri"])
                    job_state = _task_state(job_doc)
                    if job_state in FAILED_STATES:
                        msgs = classify_messages(job_doc.get("Messages"))
                        note(f"job {job['uri'].split('/')[-1]} {job_state}")
                        return {
                            "bios": bios,
                            "states": states,
                            "outcome": "failed",
                            "messages": msgs,
                            "stale": [],
                            "reason": f"job {job_state}: " + "; ".join(m["text"] for m in msgs),
                        }
                pending_left: dict[str, Any] | None = None
                moved = False
                if power == "On":
                    bios = self.get(self.bios_uri)
                    s = bios.get("@Redfish.Settings") or {}
                    moved = (
                        s.get("Time") is not None and s.get("Time") != before.get("settings_time")
                    ) or (
                        s.get("ETag") is not None
                        and before.get("bios_settings_etag") is not None
                        and s.get("ETag") != before.get("bios_settings_etag")
                    )
                    pending_left = self.pending(bios)
                    ours = {k for k in before.get("pending") or {}}
                    pending_left = {k: v for k, v in pending_left.items() if k in ours}
                key: tuple[Any, ...] = (power, job_state, moved, bool(pending_left))
                if key != last_key:
                    last_key = key
                    parts = [f"PowerState {power}"]
                    if job:
                        parts.append(f"job {job_state}")
                    if power == "On":
                        parts.append("settings applied (Time/ETag moved)" if moved else "")
                        parts.append(
                            f"still pending: {', '.join(sorted(pending_left))}"
                            if pending_left
                            else "settings object empty"
                        )
                    note(", ".join(p for p in parts if p))
                job_done = not job or job_state in DONE_STATES or job_state is None
                if power == "On" and job_done and (moved or (not pending_left and seen_off)):
                    msgs = classify_messages((bios.get("@Redfish.Settings") or {}).get("Messages"))
                    raw = (bios.get("@Redfish.Settings") or {}).get("Messages") or []
                    fresh: list[dict[str, Any]] = []
                    stale: list[dict[str, Any]] = []
                    for m, c in zip([m for m in raw if isinstance(m, dict)], msgs, strict=True):
                        same = json.dumps(m, sort_keys=True) in old_msgs
                        (stale if same and not moved else fresh).append(c)
                    failed = [m for m in fresh if m["kind"] == "failure"]
                    return {
                        "bios": bios,
                        "states": states,
                        "outcome": "failed" if failed else "applied",
                        "messages": fresh,
                        "stale": stale,
                        "reason": "; ".join(m["text"] for m in failed),
                    }
            except RedfishError as e:
                if e.status == 401 or e.bad_input:
                    raise
                key = ("error", str(e)[:40])
                if key != last_key:
                    last_key = key
                    note(f"no answer: {e}")
            if time.monotonic() >= end:
                note(f"deadline {deadline_s:g} s passed")
                return {
                    "bios": bios,
                    "states": states,
                    "outcome": "timeout",
                    "messages": [],
                    "stale": [],
                    "reason": f"the node was not back within {deadline_s:g} s ({states[-2]})",
                }
            self._sleep(delay)
            delay = min(delay * 1.5, poll)


def clear_pending_target(settings_doc: dict[str, Any]) -> str | None:
    """The settings object's action that drops every pending value, if it offers one: iDRAC's
    `Actions.Oem["#DellManager.ClearPending"]` (DMTF's Bios and Settings schemas have none)."""
    actions = settings_doc.get("Actions") or {}
    for group in (actions, actions.get("Oem") or {}):
        if not isinstance(group, dict):
            continue
        for name, act in group.items():
            if name.endswith(".ClearPending") and isinstance(act, dict) and act.get("target"):
                return str(act["target"])
    return None


def settings_uri_of(bios: dict[str, Any]) -> str | None:
    """The settings object named by @Redfish.Settings.SettingsObject (None: not given)."""
    s = bios.get("@Redfish.Settings")
    uri = odata_id(s, "SettingsObject") if isinstance(s, dict) else None
    return uri


def check_registry(body: Any, where: str) -> None:
    """BadInput unless `body` is an attribute registry tuner can read."""
    if not isinstance(body, dict):
        raise BadInput(f"the attribute registry at {where} does not parse: not a JSON object")
    entries = body.get("RegistryEntries")
    attrs = entries.get("Attributes") if isinstance(entries, dict) else None
    if not isinstance(attrs, list) or not attrs:
        raise BadInput(
            f"the attribute registry at {where} does not parse: "
            "RegistryEntries.Attributes is missing or empty"
        )
    bad = [
        i
        for i, a in enumerate(attrs)
        if not isinstance(a, dict) or not isinstance(a.get("AttributeName"), str)
    ]
    if bad:
        raise BadInput(
            f"the attribute registry at {where} does not parse: "
            f"RegistryEntries.Attributes[{bad[0]}] has no AttributeName"
        )
    deps = entries.get("Dependencies") if isinstance(entries, dict) else None
    if deps is not None and not isinstance(deps, list):
        raise BadInput(
            f"the attribute registry at {where} does not parse: "
            "RegistryEntries.Dependencies is not a list"
        )


def _task_state(doc: dict[str, Any]) -> str | None:
    for key in ("TaskState", "JobState"):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    return None


def _http_detail(e: Any) -> str:
    body = getattr(e, "body", None)
    text = error_text({"error": body}) if isinstance(body, dict) else ""
    return text or str(getattr(e, "detail", "") or "")


def _conn_reason(e: Exception, timeout: float) -> str:
    text = str(e)
    low = text.lower()
    if "certificate verify failed" in low or "sslcertverification" in low:
        return "TLS certificate not trusted; pass --ca-bundle FILE"
    if "timed out" in low or "timeout" in low:
        return f"no answer within {timeout:g} s (timeout)"
    if "refused" in low:
        return "connection refused (BMC down?)"
    if any(m in low for m in ("remotedisconnected", "connection aborted", "reset by peer")):
        return f"the BMC closed the connection without an answer ({text[:200]})"
    return text[:300]


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# --------------------------------------------------------------------------- earlier API
# tuner's first client (urllib) had these names; kept so that code written against it
# (the rollback mode of the module) runs unchanged on this client.
Client = BmcClient


def discover(c: BmcClient) -> dict[str, Any]:
    """c.discover() (the old module-level form)."""
    return c.discover()


def wait_power_on(
    c: BmcClient,
    system_uri: str,
    bios_uri: str,
    time_before: str | None,
    deadline_s: float,
    poll: float = 0.5,
) -> dict[str, Any]:
    """The old wait (-> the Bios resource; RedfishError at the deadline), on wait_applied."""
    w = c.wait_applied({"settings_time": time_before, "pending": {}}, deadline_s, poll)
    if w["outcome"] == "timeout":
        raise RedfishError(w["reason"])
    return dict(w["bios"])
