"""A simulated BMC whose resources are a capture's (a tuner capture bundle's ``bmc/`` folder,
or any folder in DMTF's mockup layout), with a vendor personality's behaviours on top.

What comes from the capture: every captured resource (served as captured on GET), the
System/Bios/settings/registry URIs, the attribute registry (which attributes exist, their
types, values, bounds and read-only flags: what a PATCH is checked against), the values in
effect (Bios ``Attributes``) and the values pending (the settings object's ``Attributes``
that differ). What the personality adds: how a PATCH is answered (If-Match, apply times,
jobs, dependency rules), what a reset does (pending values applied at POST, settings
messages, Settings.Time and ETag moving), busy answers and faults (docs/sim-bmc.md
"Built from a capture").
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from agent.sim.bmc.personalities import AttrDef, AttrValue, Personality

TYPES = {"Enumeration", "Integer", "String", "Boolean"}


def load_docs(folder: Path) -> dict[str, dict[str, Any]]:
    """``folder/redfish/v1/.../index.json`` -> {"/redfish/v1/...": doc}."""
    docs: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.rglob("index.json")):
        if f.is_symlink():
            continue
        rel = f.parent.relative_to(folder).as_posix()
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"captured resource {f} does not parse: {e}") from None
        if isinstance(doc, dict):
            docs["/" + rel] = doc
    if "/redfish/v1" not in docs:
        raise ValueError(f"{folder} has no redfish/v1/index.json (service root)")
    return docs


def _odata(doc: dict[str, Any] | None, key: str) -> str | None:
    v = (doc or {}).get(key)
    if isinstance(v, dict) and isinstance(v.get("@odata.id"), str):
        return str(v["@odata.id"]).rstrip("/")
    return None


def _find(docs: dict[str, dict[str, Any]], uri: str | None) -> dict[str, Any] | None:
    if not uri:
        return None
    return docs.get(uri.rstrip("/"))


def _attr(entry: dict[str, Any], current: Any) -> AttrDef | None:
    name = entry.get("AttributeName")
    if not isinstance(name, str):
        return None
    kind = str(entry.get("Type") or "String")
    kind = kind if kind in TYPES else "String"  # Password and others: free text
    values = tuple(
        str(v["ValueName"])
        for v in entry.get("Value") or []
        if isinstance(v, dict) and isinstance(v.get("ValueName"), str)
    )
    default = current if current is not None else entry.get("DefaultValue")
    if default is None:
        default = (
            values[0]
            if values
            else (0 if kind == "Integer" else False if kind == "Boolean" else "")
        )
    return AttrDef(
        name=name,
        type=kind,  # type: ignore[arg-type]
        default=default,
        display_name=str(entry.get("DisplayName") or name),
        values=values,
        value_display={
            str(v["ValueName"]): str(v.get("ValueDisplayName") or v["ValueName"])
            for v in entry.get("Value") or []
            if isinstance(v, dict) and isinstance(v.get("ValueName"), str)
        },
        read_only=bool(entry.get("ReadOnly") or entry.get("Immutable")),
        reset_required=bool(entry.get("ResetRequired", True)),
        lower_bound=entry.get("LowerBound") if isinstance(entry.get("LowerBound"), int) else None,
        upper_bound=entry.get("UpperBound") if isinstance(entry.get("UpperBound"), int) else None,
        max_length=entry.get("MaxLength") if isinstance(entry.get("MaxLength"), int) else None,
        help_text=str(entry.get("HelpText") or ""),
    )


def _guess(name: str, value: Any) -> AttrDef:
    """An attribute the Bios shows but the registry does not list (kept, any value of its
    type accepted)."""
    kind = (
        "Boolean" if isinstance(value, bool) else "Integer" if isinstance(value, int) else "String"
    )
    return AttrDef(name=name, type=kind, default=value, display_name=name)  # type: ignore[arg-type]


@dataclasses.dataclass
class Captured:
    personality: Personality
    docs: dict[str, dict[str, Any]]
    current: dict[str, AttrValue]
    pending: dict[str, AttrValue]
    system_uri: str
    bios_uri: str | None
    settings_uri: str | None
    registry_uri: str | None
    registry_file_uri: str | None
    notes: list[str]


def from_capture(base: Personality, folder: Path) -> Captured:
    docs = load_docs(folder)
    root = docs["/redfish/v1"]
    notes: list[str] = []
    systems = _find(docs, _odata(root, "Systems") or "/redfish/v1/Systems") or {}
    system_uri = None
    for m in systems.get("Members") or []:
        uri = m.get("@odata.id") if isinstance(m, dict) else None
        if isinstance(uri, str) and _odata(_find(docs, uri), "Bios"):
            system_uri = uri.rstrip("/")
            break
    if system_uri is None:
        found = [u for u, d in docs.items() if "ComputerSystem." in str(d.get("@odata.type", ""))]
        system_uri = found[0] if found else None
    if system_uri is None:
        raise ValueError(f"{folder}: no ComputerSystem resource")
    system = docs[system_uri]
    bios_uri = _odata(system, "Bios")
    bios = _find(docs, bios_uri)
    settings_uri = None
    settings = None
    if bios is not None:
        settings_uri = _odata(bios.get("@Redfish.Settings"), "SettingsObject")
        for guess in (settings_uri, f"{bios_uri}/Settings", f"{bios_uri}/SD"):
            if guess and _find(docs, guess) is not None:
                settings_uri, settings = guess.rstrip("/"), _find(docs, guess)
                break
    registry = None
    registry_uri = None
    for uri, d in docs.items():
        if "AttributeRegistry." in str(d.get("@odata.type", "")) or (
            isinstance(d.get("RegistryEntries"), dict) and d["RegistryEntries"].get("Attributes")
        ):
            if bios is None or d.get("Id") == bios.get("AttributeRegistry") or registry is None:
                registry, registry_uri = d, uri
    registry_file_uri = None
    for uri, d in docs.items():
        for loc in d.get("Location") or [] if isinstance(d.get("Location"), list) else []:
            if isinstance(loc, dict) and str(loc.get("Uri", "")).rstrip("/") == registry_uri:
                registry_file_uri = uri
    current: dict[str, AttrValue] = dict((bios or {}).get("Attributes") or {})
    attrs: list[AttrDef] = []
    if registry is not None:
        for e in (registry.get("RegistryEntries") or {}).get("Attributes") or []:
            if isinstance(e, dict):
                a = _attr(e, current.get(str(e.get("AttributeName"))))
                if a is not None:
                    attrs.append(a)
    else:
        notes.append(
            "no attribute registry captured: every Bios attribute accepts any value of its type"
        )
    listed = {a.name for a in attrs}
    attrs += [_guess(k, v) for k, v in current.items() if k not in listed]
    staged = (settings or {}).get("Attributes") or {}
    pending = (
        {k: v for k, v in staged.items() if current.get(k) != v} if isinstance(staged, dict) else {}
    )
    names = {a.name for a in attrs}
    deps = tuple(d for d in base.dependencies if d.target in names and d.gate in names)
    p = dataclasses.replace(
        base,
        manufacturer=str(system.get("Manufacturer") or root.get("Vendor") or base.manufacturer),
        model=str(system.get("Model") or base.model),
        product=str(root.get("Product") or base.product),
        system_id=str(system.get("Id") or base.system_id),
        bios_version=str(system.get("BiosVersion") or base.bios_version),
        registry_id=str(
            (bios or {}).get("AttributeRegistry") or (registry or {}).get("Id") or base.registry_id
        ),
        registry_version=str((registry or {}).get("RegistryVersion") or base.registry_version),
        registry_path=registry_uri or base.registry_path,
        settings_path=settings_uri or base.settings_path,
        settings_id=str((settings or {}).get("Id") or base.settings_id),
        settings_link=bool(bios is not None and "@Redfish.Settings" in bios)
        if bios
        else base.settings_link,
        settings_time=bool(((bios or {}).get("@Redfish.Settings") or {}).get("Time"))
        if bios
        else base.settings_time,
        apply_times=tuple(
            str(t)
            for t in ((bios or {}).get("@Redfish.Settings") or {}).get("SupportedApplyTimes") or []
        )
        if bios is not None
        else base.apply_times,
        attributes=tuple(attrs),
        dependencies=deps,
        system_uri=system_uri,
        bios_uri=bios_uri,
        extra_systems=(),
    )
    if bios is None:
        notes.append("no Bios captured: the personality's attributes are not used either")
    if settings is None and bios is not None:
        notes.append(f"no settings object captured: {p.settings_path} starts empty")
    return Captured(
        p,
        docs,
        current,
        pending,
        system_uri,
        bios_uri,
        settings_uri,
        registry_uri,
        registry_file_uri,
        notes,
    )
