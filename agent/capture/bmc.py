"""Read a node's BMC for a capture bundle: GETs only, through tuner's Redfish client.

Shipped to the ``tuner_capture_bmc`` module as ``playbooks/module_utils/tuner_capture_bmc.py``
(it runs on the control node, like ``tuner_bios``). What it reads, in the DMTF mockup layout
(``bmc/redfish/v1/.../index.json``, what DMTF's Redfish-Mockup-Server serves): the service
root, the Systems collection, the System, its Bios, the settings object, the Registries
collection, the attribute registry's file and the whole registry body, the Managers
collection and each manager (BMC firmware). A GET that fails is recorded with its reason;
the capture goes on. The client never puts a credential in a document; the BMC URL is kept
without user information.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

try:
    from ansible.module_utils.tuner_redfish import (  # type: ignore[import-not-found]
        BmcClient,
        RedfishError,
        odata_id,
    )
except ImportError:
    from agent.bios.redfish import BmcClient, RedfishError, odata_id

SAFE_URI = re.compile(r"/redfish/v1(/[A-Za-z0-9_.@:%+-]+)*/?")


def bundle_path(uri: str) -> str | None:
    """``/redfish/v1/Systems/1`` -> ``bmc/redfish/v1/Systems/1/index.json`` (None: unsafe)."""
    path = urllib.parse.urlsplit(uri).path.rstrip("/")
    if not SAFE_URI.fullmatch(path + "/") or any(p in (".", "..") for p in path.split("/")):
        return None
    return f"bmc{path}/index.json"


def redact_url(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    if u.port:
        host = f"{host}:{u.port}"
    return urllib.parse.urlunsplit((u.scheme, host, u.path, "", ""))


def read_bmc(c: BmcClient) -> dict[str, Any]:
    """-> {"docs": {bundle path: JSON}, "not_read": {bundle path or uri: why}, "system": uri}."""
    docs: dict[str, Any] = {}
    not_read: dict[str, str] = {}

    def keep(uri: str | None, doc: Any) -> None:
        if not uri:
            return
        p = bundle_path(uri)
        if p is None:
            not_read[f"bmc:{uri}"] = "not a /redfish/v1 path: not stored"
        elif isinstance(doc, dict):
            docs[p] = doc

    def get(uri: str | None) -> dict[str, Any] | None:
        if not uri:
            return None
        try:
            doc = c.get(uri)
        except RedfishError as e:
            not_read[bundle_path(uri) or f"bmc:{uri}"] = str(e)
            return None
        keep(uri, doc)
        return doc

    try:
        c.connect()
    except RedfishError as e:
        not_read["bmc/redfish/v1/index.json"] = str(e)
        return {"docs": docs, "not_read": not_read, "system": None}
    keep("/redfish/v1", c.root_doc)
    systems = get(odata_id(c.root_doc, "Systems") or "/redfish/v1/Systems")
    for m in (systems or {}).get("Members") or []:  # every System (a GPU baseboard's too)
        if isinstance(m, dict):
            get(m.get("@odata.id"))
    managers = get(odata_id(c.root_doc, "Managers"))
    for m in (managers or {}).get("Members") or []:
        if isinstance(m, dict):
            get(m.get("@odata.id"))
    registries = get(odata_id(c.root_doc, "Registries") or "/redfish/v1/Registries")
    try:
        system = c.select_system()
    except RedfishError as e:
        not_read["bmc:system"] = str(e)
        return {"docs": docs, "not_read": not_read, "system": None}
    keep(system, c.system_doc)
    try:
        bios = c.get_bios()
        keep(c.bios_uri, bios)
    except RedfishError as e:
        not_read[bundle_path(c.bios_uri or system + "/Bios") or "bmc:bios"] = str(e)
        bios = None
    if c.settings_uri:
        get(c.settings_uri)
    if bios is not None:
        try:
            reg = c.registry(bios)
        except RedfishError as e:
            not_read["bmc:registry"] = str(e)
        else:
            if c.registry_uri and bundle_path(c.registry_uri):
                keep(c.registry_uri, reg)
            else:  # an archive or a publication: kept by its Id next to the registries
                rid = re.sub(r"[^A-Za-z0-9_.-]", "_", str(reg.get("Id") or "registry"))
                docs[f"bmc/redfish/v1/Registries/{rid}/registry/index.json"] = reg
            # the registry's file entry, so that a mockup server finds it as the BMC did
            stem = str(bios.get("AttributeRegistry") or "").split(".")[0].lower()
            for m in (registries or {}).get("Members") or []:
                uri = m.get("@odata.id") if isinstance(m, dict) else None
                tail = uri.rstrip("/").split("/")[-1].lower() if isinstance(uri, str) else ""
                if tail and ((stem and stem in tail) or "bios" in tail):
                    get(uri)
    return {"docs": docs, "not_read": not_read, "system": system}
