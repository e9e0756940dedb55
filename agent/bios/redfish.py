"""A small Redfish client for BIOS work: stdlib only (urllib + ssl).

Shipped to the `tuner_bios` Ansible module as `playbooks/module_utils/tuner_redfish.py` (a
symlink). TLS is verified unless the caller says otherwise; a CA bundle can be given. The
password is held only in memory: it is never part of an error message, and with session auth
it is sent once (the login POST) and a token is used afterwards.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class RedfishError(Exception):
    """A request failed: connection, timeout, TLS, HTTP status or a bad answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # never follow a redirect with credentials attached


def error_text(body: bytes) -> str:
    """The message of a Redfish error body (MessageIds and messages), else ''."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error") or {}
    infos = err.get("@Message.ExtendedInfo") or []
    parts = []
    for i in infos if isinstance(infos, list) else []:
        if isinstance(i, dict):
            mid = str(i.get("MessageId", "")).split(".")[-1]
            parts.append(f"{mid}: {i.get('Message', '')}".strip(": "))
    if not parts and err.get("message"):
        parts.append(str(err["message"]))
    return "; ".join(parts)[:400]


class Client:
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
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise RedfishError(f"not an http(s) URL: {base_url!r}")
        self.base = f"{u.scheme}://{u.netloc}"
        self.username = username
        self._password = password
        self.auth = auth
        self.timeout = timeout
        self._token: str | None = None
        self._session_uri: str | None = None
        handlers: list[Any] = [_NoRedirect()]
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_bundle) if verify else None
            if not verify:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self._opener = urllib.request.build_opener(*handlers)

    # ------------------------------------------------------------------ requests

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, auth: bool = True
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        url = self.base + path if path.startswith("/") else path
        if not url.startswith(self.base + "/"):
            raise RedfishError(f"refusing to follow a link to another host: {path}")
        headers = {"Accept": "application/json", "OData-Version": "4.0"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            if self._token:
                headers["X-Auth-Token"] = self._token
            else:
                cred = f"{self.username}:{self._password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        what = f"{method} {path}"
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            raw = e.read() if e.fp else b""
            detail = error_text(raw)
            raise RedfishError(
                f"{what}: HTTP {e.code} {e.reason}" + (f" ({detail})" if detail else ""), e.code
            ) from None
        except urllib.error.URLError as e:
            raise RedfishError(f"{what}: {_reason(e.reason, self.timeout)}") from None
        except TimeoutError:
            raise RedfishError(f"{what}: no answer within {self.timeout:g} s (timeout)") from None
        except (OSError, ValueError) as e:  # connection reset, bad status line, ...
            raise RedfishError(f"{what}: {_reason(e, self.timeout)}") from None
        doc: dict[str, Any] = {}
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                raise RedfishError(f"{what}: the answer is not JSON") from None
            if isinstance(parsed, dict):
                doc = parsed
        return status, doc, hdrs

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)[1]

    def login(self) -> None:
        """Session auth: one POST with the credentials, then the token."""
        if self.auth != "session" or self._token:
            return
        root = self.request("GET", "/redfish/v1/", auth=False)[1]
        sessions = (root.get("Links") or {}).get("Sessions", {}).get("@odata.id")
        sessions = sessions or "/redfish/v1/SessionService/Sessions"
        _, _, hdrs = self.request(
            "POST", sessions, {"UserName": self.username, "Password": self._password}, auth=False
        )
        token = hdrs.get("x-auth-token")
        if not token:
            raise RedfishError("session login gave no X-Auth-Token")
        self._token = token
        loc = hdrs.get("location", "")
        self._session_uri = urllib.parse.urlsplit(loc).path if loc else None

    def logout(self) -> None:
        if self._token and self._session_uri:
            try:
                self.request("DELETE", self._session_uri)
            except RedfishError:
                pass
        self._token = None


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message}); pass --ca-bundle FILE"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (BMC down?)"
    return str(reason) or reason.__class__.__name__


def odata_id(doc: dict[str, Any], key: str) -> str | None:
    v = doc.get(key)
    if isinstance(v, dict) and isinstance(v.get("@odata.id"), str):
        return str(v["@odata.id"])
    return None


def discover(c: Client) -> dict[str, Any]:
    """Read what planning needs: system, Bios, registry, settings object (GETs only)."""
    root = c.get("/redfish/v1/")
    systems_uri = odata_id(root, "Systems") or "/redfish/v1/Systems"
    members = c.get(systems_uri).get("Members") or []
    if not members or not isinstance(members[0], dict):
        raise RedfishError("the BMC lists no computer system")
    system_uri = str(members[0].get("@odata.id"))
    system = c.get(system_uri)
    bios_uri = odata_id(system, "Bios")
    if not bios_uri:
        raise RedfishError(f"{system_uri} has no Bios resource")
    bios = c.get(bios_uri)
    settings = bios.get("@Redfish.Settings") or {}
    settings_uri = odata_id(settings, "SettingsObject")
    if not settings_uri:
        raise RedfishError(f"{bios_uri} has no @Redfish.Settings SettingsObject")
    registry = find_registry(c, root, str(bios.get("AttributeRegistry") or ""))
    settings_doc = c.get(settings_uri)
    current = bios.get("Attributes") or {}
    staged = settings_doc.get("Attributes") or {}
    # Some BMCs (iLO) show the full attribute set in the settings object: pending = the diff.
    pending = {k: v for k, v in staged.items() if current.get(k) != v or k not in current}
    reset = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get("target")
    return {
        "vendor": str(root.get("Vendor") or system.get("Manufacturer") or ""),
        "system_uri": system_uri,
        "power_state": system.get("PowerState"),
        "reset_uri": reset or f"{system_uri}/Actions/ComputerSystem.Reset",
        "reset_types": (
            ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get(
                "ResetType@Redfish.AllowableValues"
            )
            or []
        ),
        "bios_uri": bios_uri,
        "settings_uri": settings_uri,
        "settings_time": settings.get("Time"),
        "messages": settings.get("Messages") or [],
        "current": current,
        "pending": pending,
        "registry": registry,
    }


def find_registry(c: Client, root: dict[str, Any], registry_id: str) -> dict[str, Any]:
    regs_uri = odata_id(root, "Registries") or "/redfish/v1/Registries"
    members = c.get(regs_uri).get("Members") or []
    uris = [str(m.get("@odata.id")) for m in members if isinstance(m, dict)]
    picked = [u for u in uris if u.rstrip("/").split("/")[-1] == registry_id] or uris
    for uri in picked:
        f = c.get(uri)
        if f.get("Id") not in (registry_id, None) and len(picked) > 1:
            continue
        for loc in f.get("Location") or []:
            target = loc.get("Uri") if isinstance(loc, dict) else None
            if isinstance(target, str):
                reg = c.get(target)
                if reg.get("RegistryEntries"):
                    return reg
    raise RedfishError(f"attribute registry {registry_id!r} not found under {regs_uri}")


def wait_power_on(
    c: Client,
    system_uri: str,
    bios_uri: str,
    time_before: str | None,
    deadline_s: float,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Wait until PowerState is On and the settings were applied (Time moved). -> Bios doc."""
    end = time.monotonic() + deadline_s
    last = "no answer yet"
    delay = min(poll, 0.2)  # back off from 0.2 s to `poll`
    while True:
        try:
            system = c.get(system_uri)
            state = system.get("PowerState")
            if state == "On":
                bios = c.get(bios_uri)
                t = (bios.get("@Redfish.Settings") or {}).get("Time")
                if time_before is None or t != time_before:
                    return bios
                last = "PowerState On but the settings were not applied yet"
            else:
                last = f"PowerState {state}"
        except RedfishError as e:
            if e.status == 401:
                raise
            last = str(e)
        if time.monotonic() >= end:
            raise RedfishError(f"the node was not back within {deadline_s:g} s ({last})")
        time.sleep(delay)
        delay = min(delay * 1.5, poll)
