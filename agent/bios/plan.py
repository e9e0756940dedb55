"""BIOS planning: vendor-neutral settings + a host's attribute registry -> the host's plan.

A pure function of its inputs (no I/O), and stdlib only: the same file runs in tuner and,
as `playbooks/module_utils/tuner_bios_plan.py` (a symlink), inside the `tuner_bios` Ansible
module that talks to the BMC.

Inputs are what Redfish shows:

* `settings`: the profile's `bios` section (`nps`, `smt`, ..., `vendor_attributes`);
* `registry`: the attribute registry (`RegistryEntries.Attributes` and `.Dependencies`);
* `current`: `Bios.Attributes` (the values in effect);
* `pending`: the values waiting in the settings object for the next reset.

The vendor is recognised from the registry's attribute names (never trusted from the
inventory); Supermicro names carry a build-specific hex suffix and are matched by prefix or
by DisplayName. Every value is checked against the registry before anything may be sent, and
the registry's dependencies (a power profile that must be Custom first, determinism control
manual before the determinism value, ...) add the gate attributes the change needs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# A write: (attribute base name, value to write, other current values that mean the same).
Write = tuple[str, str, tuple[str, ...]]


def _w(attr: str, value: str, *accept: str) -> Write:
    return (attr, value, accept)


def _onoff(attr: str, on: str = "Enabled", off: str = "Disabled", *on_alias: str) -> dict:
    return {True: [_w(attr, on, *on_alias)], False: [_w(attr, off)]}


# family -> neutral setting -> neutral value -> attribute writes
FAMILIES: dict[str, dict[str, dict[Any, list[Write]]]] = {
    "dell": {
        "power_profile": {
            "maximum_performance": [_w("SysProfile", "Custom"), _w("ProcPwrPerf", "MaxPerf")],
            "custom": [_w("SysProfile", "Custom")],
            "balanced": [_w("SysProfile", "Custom"), _w("ProcPwrPerf", "SysDbpm")],
        },
        "nps": {n: [_w("NumaNodesPerSocket", str(n))] for n in (1, 2, 4)},
        "smt": _onoff("LogicalProc"),
        "core_performance_boost": _onoff("ProcTurboMode"),
        "apbdis": {1: [_w("ApbDis", "Enabled")], 0: [_w("ApbDis", "Disabled")]},
        "df_cstates": _onoff("DfCState"),
        "determinism": {
            "power": [_w("DeterminismSlider", "PowerDeterminism")],
            "performance": [_w("DeterminismSlider", "PerfDeterminism")],
        },
        "global_cstates": _onoff("ProcCStates"),
    },
    "hpe": {
        "power_profile": {
            "maximum_performance": [
                _w("WorkloadProfile", "Custom"),
                _w("PowerRegulator", "StaticHighPerf"),
            ],
            "custom": [_w("WorkloadProfile", "Custom")],
            "balanced": [
                _w("WorkloadProfile", "Custom"),
                _w("PowerRegulator", "DynamicPowerSavings"),
            ],
        },
        "nps": {
            1: [_w("NumaMemoryDomainsPerSocket", "OneMemoryDomainPerSocket")],
            2: [_w("NumaMemoryDomainsPerSocket", "TwoMemoryDomainsPerSocket")],
            4: [_w("NumaMemoryDomainsPerSocket", "FourMemoryDomainsPerSocket")],
        },
        "smt": _onoff("ProcSMT"),
        "core_performance_boost": _onoff("ProcAMDBoost"),
        "apbdis": {
            1: [_w("ApplicationPowerBoost", "Disabled"), _w("InfinityFabricPstate", "P0")],
            0: [_w("ApplicationPowerBoost", "Enabled")],
        },
        "df_cstates": _onoff("DataFabricCStateEnable", "ForceEnabled", "Disabled", "Auto"),
        "determinism": {
            "power": [
                _w("DeterminismControl", "DeterminismCtrlManual"),
                _w("PerformanceDeterminism", "PowerDeterministic"),
            ],
            "performance": [
                _w("DeterminismControl", "DeterminismCtrlManual"),
                _w("PerformanceDeterminism", "PerformanceDeterministic"),
            ],
        },
        "global_cstates": {
            True: [_w("MinProcIdlePower", "C6")],
            False: [_w("MinProcIdlePower", "NoCStates")],
        },
    },
    "supermicro": {
        "power_profile": {
            "maximum_performance": [_w("PowerProfileSelection", "High Performance Mode")],
            "balanced": [_w("PowerProfileSelection", "Efficiency Mode")],
        },
        "nps": {n: [_w("NUMANodesPerSocket", f"NPS{n}")] for n in (1, 2, 4)},
        "smt": _onoff("SMTControl", "Enabled", "Disabled", "Auto"),
        "core_performance_boost": _onoff("CorePerformanceBoost", "Auto", "Disabled"),
        "apbdis": {1: [_w("APBDIS", "1"), _w("FixedSOCPstate", "P0")], 0: [_w("APBDIS", "0")]},
        "df_cstates": _onoff("DFCstates", "Enabled", "Disabled", "Auto"),
        "determinism": {
            "power": [_w("DeterminismControl", "Manual"), _w("DeterminismEnable", "Power")],
            "performance": [
                _w("DeterminismControl", "Manual"),
                _w("DeterminismEnable", "Performance"),
            ],
        },
        "global_cstates": _onoff("GlobalC_stateControl", "Enabled", "Disabled", "Auto"),
    },
    "amd": {
        "nps": {n: [_w("CbsDfCmnDramNps", f"NPS{n}")] for n in (1, 2, 4)},
        "smt": _onoff("CbsCpuSmtCtrl", "Enabled", "Disabled", "Auto"),
        "core_performance_boost": _onoff("CbsCmnCpuCpb", "Auto", "Disabled"),
        "apbdis": {
            1: [_w("CbsCmnApbdis", "1"), _w("CbsCmnFixedSocPstate", "P0")],
            0: [_w("CbsCmnApbdis", "0")],
        },
        "df_cstates": _onoff("CbsCmnGnbSmuDfCstates", "Enabled", "Disabled", "Auto"),
        "determinism": {
            "power": [
                _w("CbsCmnDeterminismCtl", "Manual"),
                _w("CbsCmnDeterminismEnable", "Power"),
            ],
            "performance": [
                _w("CbsCmnDeterminismCtl", "Manual"),
                _w("CbsCmnDeterminismEnable", "Performance"),
            ],
        },
        "global_cstates": _onoff("CbsCmnCpuGlobalCstateCtrl", "Enabled", "Disabled", "Auto"),
    },
}

# Registry DisplayNames for names that carry a build suffix (Supermicro), lower case.
DISPLAY_NAMES = {
    "NUMANodesPerSocket": "numa nodes per socket",
    "APBDIS": "apbdis",
    "FixedSOCPstate": "fixed soc p-state",
    "DFCstates": "df c-states",
    "SMTControl": "smt control",
    "CorePerformanceBoost": "core performance boost",
    "DeterminismControl": "determinism control",
    "DeterminismEnable": "determinism enable",
    "GlobalC_stateControl": "global c-state control",
    "PowerProfileSelection": "power profile selection",
    # AMD CBS tokens: AMI-based BIOSes (Gigabyte, ASRock Rack, Lenovo) publish them under coded
    # names (`Rome0059`) whose meaning is only in DisplayName / HelpText.
    "CbsDfCmnDramNps": "numa nodes per socket",
    "CbsCmnApbdis": "apbdis",
    "CbsCmnFixedSocPstate": "fixed soc p-state",
    "CbsCmnGnbSmuDfCstates": "df c-states",
    "CbsCpuSmtCtrl": "smt control",
    "CbsCmnCpuCpb": "core performance boost",
    "CbsCmnDeterminismCtl": "determinism control",
    "CbsCmnDeterminismEnable": "determinism enable",
    "CbsCmnCpuGlobalCstateCtrl": "global c-state control",
}

# What the OS will show for the NPS / SMT values in effect (values outside the writes).
NPS_EXTRA = {"0": 0, "NPS0": 0, "Auto": 1, "OneMemoryDomainPerSocket": 1}
SETTINGS_ORDER = (
    "power_profile",
    "nps",
    "smt",
    "core_performance_boost",
    "apbdis",
    "df_cstates",
    "determinism",
    "global_cstates",
)
GLOBAL_CSTATES_WARNING = (
    "global_cstates is disabled: AMD advises keeping Global C-state control enabled"
)


INTENTS_FILE = "intents.json"  # beside this file: agent/bios/intents.json


def load_intents(path: str | None = None) -> dict[str, Any]:
    """The display names and alternatives of agent/bios/intents.json (docs/bios.md). Inside
    the Ansible module the file is not beside this code: the controller sends its content
    in the settings (``_intents``); without either, the built-in table alone is used."""
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), INTENTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _display(intents: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for base, entry in (intents.get("display_names") or {}).items():
        names = entry.get("names") if isinstance(entry, dict) else None
        if isinstance(base, str) and isinstance(names, list):
            out[base] = [str(n).lower() for n in names if isinstance(n, str)]
    return out


def alternatives(intents: dict[str, Any], family: str, key: str, value: Any) -> list[list[Write]]:
    """The other ways this family's BIOSes express `key`=`value`, from intents.json."""
    spec = ((intents.get("alternatives") or {}).get(family) or {}).get(key) or {}
    out: list[list[Write]] = []
    for alt in spec.get(neutral_text(value)) or []:
        writes = alt.get("writes") if isinstance(alt, dict) else None
        if isinstance(writes, list) and writes:
            out.append([_w(str(w[0]), str(w[1])) for w in writes if len(w) == 2])
    return out


def neutral_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attr_text(value: Any) -> str | None:
    """Attribute values as text for comparison and reports (booleans as true/false)."""
    if value is None:
        return None
    return neutral_text(value)


class Registry:
    """An attribute registry's entries, indexed."""

    def __init__(
        self, registry: dict[str, Any], display: dict[str, list[str]] | None = None
    ) -> None:
        self.display = display or {}  # attribute base -> other DisplayNames (intents.json)
        entries = registry.get("RegistryEntries") or {}
        self.attrs: dict[str, dict[str, Any]] = {}
        for a in entries.get("Attributes") or []:
            if isinstance(a, dict) and isinstance(a.get("AttributeName"), str):
                self.attrs[a["AttributeName"]] = a
        self.id = str(registry.get("Id") or "")
        # Map dependencies: (target, property, value, [terms]) — DSP0270 "Dependencies"
        self.maps: list[tuple[str, str, Any, list[dict[str, Any]]]] = []
        for d in entries.get("Dependencies") or []:
            if not isinstance(d, dict) or d.get("Type") != "Map":
                continue
            dep = d.get("Dependency") or {}
            target = dep.get("MapToAttribute") or d.get("DependencyFor")
            terms = [t for t in dep.get("MapFrom") or [] if isinstance(t, dict)]
            if isinstance(target, str) and terms:
                self.maps.append(
                    (target, str(dep.get("MapToProperty") or ""), dep.get("MapToValue"), terms)
                )

    @property
    def gates(self) -> dict[str, list[tuple[str, str]]]:
        """target -> [(gate, the value that unlocks it)], for the lock dependencies whose
        unlocking value is a safe choice (see unlock_value); the form the earlier planner had."""
        out: dict[str, list[tuple[str, str]]] = {}
        for target, prop, v, terms in self.maps:
            if prop not in LOCKS or v is not True:
                continue
            value = unlock_value(self, terms, {})
            if value is not None:
                gate = str(terms[0].get("MapFromAttribute"))
                out.setdefault(target, []).append((gate, attr_text(value) or ""))
        return out

    def locks(self, target: str, values: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
        """The dependencies that lock `target` (ReadOnly, GrayOut or Hidden) under `values`."""
        return [
            (prop, terms)
            for t, prop, v, terms in self.maps
            if t == target and prop in LOCKS and v is True and holds(terms, values)
        ]

    def forced(self, target: str, values: dict[str, Any]) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Values the registry maps onto `target` (MapToProperty CurrentValue) under `values`."""
        return [
            (v, terms)
            for t, prop, v, terms in self.maps
            if t == target and prop == "CurrentValue" and holds(terms, values)
        ]

    def resolve(self, base: str, display: bool = True) -> str | None:
        """The host's name for an attribute.

        In order: the exact name; the name in another case (firmware releases that
        respell `ApbDis` as `APBDis`); NAME_XXXX (Supermicro's build suffix); a short variant
        of the name (AMI's `CbsCmnGnbSmuDfCstatesRs`); then, with `display`, the registry's
        DisplayName, else its HelpText (AMI coded names such as `Rome0059`). Only a unique
        match counts; case is ignored from the second step on.
        """
        if base in self.attrs:
            return base
        hits = [n for n in self.attrs if n.lower() == base.lower()]
        if len(hits) == 1:
            return hits[0]
        pat = re.compile(re.escape(base) + r"_[0-9A-Fa-f]{4}$", re.I)
        hits = [n for n in self.attrs if pat.match(n)]
        if len(hits) == 1:
            return hits[0]
        var = re.compile(re.escape(base) + r"[A-Za-z0-9]{1,3}$", re.I)
        hits = [n for n in self.attrs if var.match(n)]
        if len(hits) == 1:
            return hits[0]
        shown_all = [DISPLAY_NAMES[base]] if base in DISPLAY_NAMES else []
        shown_all += [n for n in self.display.get(base, []) if n not in shown_all]
        for shown in shown_all if display else []:
            for key in ("DisplayName", "HelpText"):
                hits = [n for n, a in self.attrs.items() if _norm_text(a.get(key)) == shown]
                if key == "HelpText" and not hits:
                    hits = [
                        n
                        for n, a in self.attrs.items()
                        if re.search(rf"\b{re.escape(shown)}\b", _norm_text(a.get(key)))
                    ]
                if len(hits) == 1:
                    return hits[0]
        return None

    def check_value(self, name: str, value: Any) -> tuple[Any, str]:
        """(value as the BMC wants it, error or ""): the registry's type and allowed values."""
        a = self.attrs[name]
        typ = a.get("Type")
        if a.get("ReadOnly") is True:
            return value, f"{name} is read-only on this host"
        if typ == "Enumeration":
            allowed = [str(v.get("ValueName")) for v in a.get("Value") or []]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return value, f"{name} takes one of {', '.join(allowed)}, got {value!r}"
            text = str(value)
            if text not in allowed:
                # the same value under the vendor's spelling: ValueDisplayName, or
                # Enable/Disable for Enabled/Disabled (AMI)
                same = [
                    str(v.get("ValueName"))
                    for v in a.get("Value") or []
                    if _norm_value(text)
                    in (_norm_value(v.get("ValueName")), _norm_value(v.get("ValueDisplayName")))
                ]
                if len(same) == 1:
                    return same[0], ""
                return value, f"{name}={text} is not allowed here (allowed: {', '.join(allowed)})"
            return text, ""
        if typ == "Integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return value, f"{name} takes an integer, got {value!r}"
            lo, hi = a.get("LowerBound"), a.get("UpperBound")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                return value, f"{name}={value} is outside {lo}..{hi}"
            return value, ""
        if typ == "Boolean":
            if not isinstance(value, bool):
                return value, f"{name} takes true or false, got {value!r}"
            return value, ""
        if typ == "String":
            if not isinstance(value, str):
                return value, f"{name} takes a string, got {value!r}"
            mx = a.get("MaxLength")
            if mx is not None and len(value) > mx:
                return value, f"{name} is longer than {mx} characters"
            return value, ""
        return value, f"{name} has a type tuner does not write ({typ})"


def detect_family(reg: Registry) -> str | None:
    """The vendor family whose attribute names this registry has most of (None: unknown).

    Names first; a registry of coded names (AMI) is recognised by DisplayName/HelpText.
    """
    suffixed = any(re.search(r"_[0-9A-Fa-f]{4}$", n) for n in reg.attrs)
    for display in (False, True):
        best, score = None, 0
        for fam, spec in FAMILIES.items():
            if display and fam == "supermicro" and not suffixed:
                continue  # same display names as AMD's CBS; Supermicro's names carry _XXXX
            bases = {w[0] for vals in spec.values() for writes in vals.values() for w in writes}
            n = sum(1 for b in bases if reg.resolve(b, display=display))
            if n > score:
                best, score = fam, n
        if score >= 2:
            return best
    return None


LOCKS = ("ReadOnly", "GrayOut", "Hidden")
CONDITIONS = ("EQU", "NEQ", "GTR", "GEQ", "LSS", "LEQ")


def _norm_text(v: Any) -> str:
    return re.sub(r"\s+", " ", str(v or "")).strip().lower()


def _norm_value(v: Any) -> str:
    t = re.sub(r"[^a-z0-9]", "", str(v or "").lower())
    return {"enabled": "enable", "disabled": "disable"}.get(t, t)


def term_holds(term: dict[str, Any], values: dict[str, Any]) -> bool:
    """One MapFrom term (CurrentValue EQU/NEQ/GTR/GEQ/LSS/LEQ MapFromValue) under `values`."""
    if term.get("MapFromProperty", "CurrentValue") != "CurrentValue":
        return False  # conditions on other properties (ReadOnly of another attribute): unknown
    cur = values.get(str(term.get("MapFromAttribute")))
    want = term.get("MapFromValue")
    cond = term.get("MapFromCondition", "EQU")
    if cond in ("EQU", "NEQ"):
        same = attr_text(cur) == attr_text(want)
        return same if cond == "EQU" else not same
    try:
        a, b = float(cur), float(want)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return {"GTR": a > b, "GEQ": a >= b, "LSS": a < b, "LEQ": a <= b}.get(str(cond), False)


def holds(terms: list[dict[str, Any]], values: dict[str, Any]) -> bool:
    """MapFrom terms combined in array order with each later term's MapTerms (AND / OR)."""
    result = term_holds(terms[0], values)
    for t in terms[1:]:
        if t.get("MapTerms") == "OR":
            result = result or term_holds(t, values)
        else:
            result = result and term_holds(t, values)
    return result


def describe(terms: list[dict[str, Any]]) -> str:
    parts = []
    for i, t in enumerate(terms):
        op = {"EQU": "=", "NEQ": "!=", "GTR": ">", "GEQ": ">=", "LSS": "<", "LEQ": "<="}.get(
            str(t.get("MapFromCondition")), "?"
        )
        text = f"{t.get('MapFromAttribute')}{op}{attr_text(t.get('MapFromValue'))}"
        parts.append(text if i == 0 else f"{t.get('MapTerms', 'AND').lower()} {text}")
    return " ".join(parts)


def unlock_value(reg: Registry, terms: list[dict[str, Any]], values: dict[str, Any]) -> Any:
    """A value of the one gate attribute that makes `terms` false, or None.

    Only safe choices: the NEQ value the registry names, a value called Custom / Manual
    (a workload or system profile), or the only value left.
    """
    gates = {t.get("MapFromAttribute") for t in terms}
    if len(gates) != 1:
        return None
    gate = str(gates.pop())
    a = reg.attrs.get(gate)
    if a is None or a.get("Type") != "Enumeration":
        return None
    options = [v.get("ValueName") for v in a.get("Value") or []]
    free = [o for o in options if not holds(terms, {**values, gate: o})]
    named = [t.get("MapFromValue") for t in terms if t.get("MapFromCondition") == "NEQ"]
    for o in free:
        if o in named:
            return o
    custom = [o for o in free if re.search(r"custom|manual", str(o), re.I)]
    if len(custom) == 1:
        return custom[0]
    if len(free) == 1:
        return free[0]
    return None


def _same(current: Any, values: tuple[str, ...]) -> bool:
    return current is not None and attr_text(current) in values


def plan(
    settings: dict[str, Any],
    registry: dict[str, Any],
    current: dict[str, Any],
    pending: dict[str, Any] | None = None,
    *,
    verify: bool = False,
    intents: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The host's plan. Rows are one per attribute; `patch` is what a PATCH must carry.

    Row status: `ok` (in effect), `change` (to send), `pending` (already waiting for the next
    reset), `error` (this host cannot take it; nothing may be sent to its BMC), and, with
    `verify`, `drift` instead of change/pending.
    """
    pending = dict(pending or {})
    if intents is None:
        sent = settings.get("_intents")
        intents = sent if isinstance(sent, dict) else load_intents()
    reg = Registry(registry, _display(intents))
    family = detect_family(reg)
    errors: list[str] = []
    forbidden: list[str] = []  # errors where the registry forbids the value (bad input)
    warnings: list[str] = []
    rows: list[dict[str, Any]] = []
    # attribute -> (value to send, accepted values, row)
    wanted: dict[str, tuple[Any, tuple[str, ...], dict[str, Any]]] = {}

    def want(setting: str, base: str, value: Any, accept: tuple[str, ...], raw: bool) -> None:
        name = reg.resolve(base) if not raw else (base if base in reg.attrs else reg.resolve(base))
        row: dict[str, Any] = {
            "setting": setting,
            "attribute": name or base,
            "wanted": attr_text(value),
            "current": None,
            "pending": None,
            "status": "error",
            "message": "",
        }
        rows.append(row)
        if name is None:
            row["message"] = f"this host's BIOS has no attribute {base}" + (
                f" ({family} registry {reg.id})" if family else f" (registry {reg.id})"
            )
            errors.append(f"{setting}: {row['message']}")
            return
        row["current"] = attr_text(current.get(name))
        row["pending"] = attr_text(pending.get(name)) if name in pending else None
        send, err = reg.check_value(name, value)
        accepted = (attr_text(send) or "", *accept)
        if err and not (verify or _same(current.get(name), accepted)):
            row["message"] = err
            errors.append(f"{setting}: {err}")
            forbidden.append(f"{setting}: {err}")
            return
        if name in wanted and attr_text(wanted[name][0]) != attr_text(send):
            other = wanted[name][2]["setting"]
            row["message"] = (
                f"{name} is wanted as {wanted[name][0]} by {other} and {send} by {setting}"
            )
            errors.append(f"{setting}: {row['message']}")
            return
        row["wanted"] = attr_text(send)
        row["status"] = "ok"
        if name not in wanted:
            wanted[name] = (send, accepted, row)
        else:
            row["status"] = "same"  # a duplicate write of the same value: shown once

    for key in SETTINGS_ORDER:
        value = settings.get(key)
        if value is None:
            continue
        if key == "global_cstates" and value is False:
            warnings.append(GLOBAL_CSTATES_WARNING)
        spec = FAMILIES.get(family or "", {}).get(key)
        if family is None:
            msg = f"{key}: the BIOS attribute registry {reg.id!r} is not one tuner recognises"
            rows.append(_error_row(key, "", neutral_text(value), msg))
            errors.append(msg)
            continue
        if spec is None or value not in spec:
            msg = f"{key}={neutral_text(value)}: a {family} BIOS has no such setting"
            rows.append(_error_row(key, "", neutral_text(value), msg))
            errors.append(msg)
            continue
        # the built-in writes, else the first alternative (intents.json) this host has whole
        options = [spec[value], *alternatives(intents, family, key, value)]
        writes = next((o for o in options if all(reg.resolve(w[0]) for w in o)), options[0])
        for base, v, accept in writes:
            want(key, base, v, accept, raw=False)
    for name, value in sorted((settings.get("vendor_attributes") or {}).items()):
        want(f"vendor_attributes.{name}", name, value, (), raw=True)
    rows = [r for r in rows if r["status"] != "same"]

    # Status of each wanted attribute against current and pending values.
    for name, (_send, accepted, row) in wanted.items():
        cur_ok = _same(current.get(name), accepted)
        pend = pending.get(name) if name in pending else None
        if name in pending and not _same(pend, accepted):
            row["status"] = "drift" if verify else "change"
        elif cur_ok:
            row["status"] = "ok"
        elif name in pending:
            row["status"] = "drift" if verify else "pending"
            if verify:
                row["message"] = "the wanted value is pending: it takes effect at the next reset"
        else:
            row["status"] = "drift" if verify else "change"

    # Dependencies: a value the registry locks (ReadOnly / GrayOut / Hidden under some
    # other value) is never sent. The setting that unlocks it is added (a profile set to
    # Custom, determinism control to manual, ...) when the registry names a safe one; else
    # the host is refused with the reason. A value the registry maps onto an attribute
    # (MapToProperty CurrentValue) must not contradict the one wanted.
    if not verify:
        todo = [n for n, (_, _, r) in wanted.items() if r["status"] in ("change", "pending")]
        seen: set[str] = set()
        rounds = 0
        while todo and rounds < 100:
            rounds += 1
            target = todo.pop(0)
            if target in seen:
                continue
            seen.add(target)
            effective = {**current, **pending, **{n: w[0] for n, w in wanted.items()}}
            for prop, terms in reg.locks(target, effective):
                gate = str(terms[0].get("MapFromAttribute"))
                value = unlock_value(reg, terms, effective)
                why = f"{target} is {prop} while {describe(terms)}"
                if value is None or gate in wanted:
                    if gate in wanted:
                        msg = f"{why}, and the profile sets {gate}={attr_text(wanted[gate][0])}"
                    else:
                        msg = f"{why}: tuner will not send it (no safe value of {gate} unlocks it)"
                    wanted[target][2]["status"] = "error"
                    wanted[target][2]["message"] = msg
                    errors.append(msg)
                    forbidden.append(msg)
                    continue
                if gate not in reg.attrs:
                    msg = f"{target} depends on {gate}, which this host's registry does not list"
                    errors.append(msg)
                    continue
                send, err = reg.check_value(gate, value)
                row = {
                    "setting": f"required by {target}",
                    "attribute": gate,
                    "wanted": attr_text(send),
                    "current": attr_text(current.get(gate)),
                    "pending": attr_text(pending.get(gate)) if gate in pending else None,
                    "status": "error" if err else "change",
                    "message": err or f"unlocks {target} ({prop} while {describe(terms)})",
                }
                if not err and (
                    _same(pending.get(gate), (attr_text(send) or "",)) if gate in pending else False
                ):
                    row["status"] = "pending"
                if err:
                    errors.append(f"{gate}: {err}")
                rows.append(row)
                wanted[gate] = (send, (attr_text(send) or "",), row)
                todo.append(gate)
                seen.discard(target)
                todo.append(target)  # re-check: another dependency may still lock it
        effective = {**current, **pending, **{n: w[0] for n, w in wanted.items()}}
        for name, (send, _acc, row) in wanted.items():
            for value, terms in reg.forced(name, effective):
                if attr_text(value) != attr_text(send):
                    msg = (
                        f"the registry sets {name}={attr_text(value)} while {describe(terms)}, "
                        f"not {attr_text(send)}"
                    )
                    row["status"] = "error"
                    row["message"] = msg
                    errors.append(msg)
                    forbidden.append(msg)

    patch = {n: s for n, (s, _a, r) in wanted.items() if r["status"] == "change"}
    foreign = {
        n: v
        for n, v in pending.items()
        if n not in wanted and attr_text(v) != attr_text(current.get(n))
    }
    if foreign and not verify:
        warnings.append(
            "values this profile does not set are pending and will apply at the next reset: "
            + ", ".join(sorted(foreign))
        )
    reboot = any(
        r["status"] in ("change", "pending")
        and reg.attrs.get(r["attribute"], {}).get("ResetRequired", True) is not False
        for r in rows
    )
    return {
        "vendor": family or "unknown",
        "registry": reg.id,
        "rows": rows,
        "patch": {} if errors else patch,
        "errors": errors,
        "forbidden": forbidden,
        "warnings": warnings,
        "reboot_needed": reboot and not errors,
        "topology": topology(registry, current, family),
    }


def _error_row(setting: str, attribute: str, wanted: str, message: str) -> dict[str, Any]:
    return {
        "setting": setting,
        "attribute": attribute,
        "wanted": wanted,
        "current": None,
        "pending": None,
        "status": "error",
        "message": message,
    }


def topology(
    registry: dict[str, Any], current: dict[str, Any], family: str | None = None
) -> dict[str, Any]:
    """The NPS and SMT in effect, in neutral terms (None when unknown): what the OS must show."""
    reg = Registry(registry)
    family = family or detect_family(reg)
    spec = FAMILIES.get(family or "")
    out: dict[str, Any] = {"nps": None, "smt": None}
    if not spec:
        return out
    for key in ("nps", "smt"):
        for neutral, writes in spec[key].items():
            base, value, accept = writes[0]
            name = reg.resolve(base)
            if name is None:
                break
            cur = attr_text(current.get(name))
            if cur in (value, *accept):
                out[key] = neutral
                break
            if key == "nps" and cur in NPS_EXTRA:
                out[key] = NPS_EXTRA[cur]
    return out
