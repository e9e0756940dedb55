"""State and behaviour of one simulated BMC (no HTTP here): BIOS, power, sessions."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.sim.bmc.config import Faults, NodeConfig
from agent.sim.bmc.messages import error_body, message, vendor_message
from agent.sim.bmc.personalities import AttrDef, AttrValue, Personality, get_personality

log = logging.getLogger("agent.sim.bmc")

RESET_TYPES: tuple[str, ...] = ("On", "ForceOff", "GracefulRestart", "ForceRestart")
SUPPORTED_APPLY_TIMES: tuple[str, ...] = ("OnReset",)
SESSION_TIMEOUT = 1800

T_SERVICE_ROOT = "#ServiceRoot.v1_20_0.ServiceRoot"
T_SYSTEMS = "#ComputerSystemCollection.ComputerSystemCollection"
T_SYSTEM = "#ComputerSystem.v1_27_0.ComputerSystem"
T_BIOS = "#Bios.v1_2_3.Bios"
T_SETTINGS = "#Settings.v1_4_0.Settings"
T_REGISTRIES = "#MessageRegistryFileCollection.MessageRegistryFileCollection"
T_REGISTRY_FILE = "#MessageRegistryFile.v1_1_5.MessageRegistryFile"
T_ATTR_REGISTRY = "#AttributeRegistry.v1_4_0.AttributeRegistry"
T_SESSION_SERVICE = "#SessionService.v1_2_0.SessionService"
T_SESSIONS = "#SessionCollection.SessionCollection"
T_SESSION = "#Session.v1_8_0.Session"

Result = tuple[int, dict[str, Any] | None]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds")


@dataclass
class Session:
    id: str
    user: str
    token: str
    last_used: float


class BmcNode:
    """One simulated BMC: BIOS current/pending values, power state, sessions, faults."""

    def __init__(self, cfg: NodeConfig, password: str) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.personality: Personality = get_personality(cfg.vendor, cfg.bios_build)
        self.faults = Faults.from_mapping(cfg.faults)
        self._password = password
        self._lock = threading.RLock()
        p = self.personality
        self.current: dict[str, AttrValue] = p.defaults()
        for name, value in cfg.initial_attributes.items():
            a = p.attr(name)
            if a is None or _check_value(a, value) is not None:
                raise ValueError(f"node {cfg.name}: bad initial attribute {name}={value!r}")
            self.current[name] = value
        self.pending: dict[str, AttrValue] = {}
        self.captured: dict[str, dict[str, Any]] = {}
        self.captured_notes: list[str] = []
        if cfg.captured is not None:
            from agent.sim.bmc.captured import from_capture

            cap = from_capture(p, cfg.captured)
            self.personality = p = cap.personality
            self.current, self.pending = dict(cap.current), dict(cap.pending)
            self.captured, self.captured_notes = cap.docs, cap.notes
            if cap.registry_file_uri:
                self._registry_file_uri = cap.registry_file_uri
        self.settings_messages: list[dict[str, Any]] = []
        self._settings_time = _now()
        bios_cap = self.captured.get(p.bios_path) or {}
        when = (bios_cap.get("@Redfish.Settings") or {}).get("Time")
        msgs = (bios_cap.get("@Redfish.Settings") or {}).get("Messages")
        if isinstance(msgs, list):  # and the messages of its last apply
            self.settings_messages = [m for m in msgs if isinstance(m, dict)]
        if isinstance(when, str):  # a captured BMC keeps its Settings.Time until a reset
            with contextlib.suppress(ValueError):
                self._settings_time = datetime.fromisoformat(when.replace("Z", "+00:00"))
        self.power_state: str = cfg.power_state
        self._boot_gen = 0
        self._boot_timer: threading.Timer | None = None
        self._stopped = False
        self.sessions: dict[str, Session] = {}
        self._session_counter = 0
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{cfg.name}.bmc.sim"))
        self.boot_count = 0
        self.on_boot: list[Callable[[BmcNode], None]] = []
        # iDRAC BIOS configuration jobs: id -> {"JobState", "Message", "PercentComplete"}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._job_counter = 0

    # ------------------------------------------------------------------ auth
    def check_password(self, user: str, password: str) -> bool:
        ok_user = secrets.compare_digest(user.encode(), self.cfg.username.encode())
        ok_pass = secrets.compare_digest(password.encode(), self._password.encode())
        return ok_user and ok_pass

    def create_session(self, user: str) -> Session:
        with self._lock:
            self._session_counter += 1
            sid = f"{self._session_counter}{secrets.token_hex(4)}"
            s = Session(id=sid, user=user, token=secrets.token_hex(24), last_used=time.monotonic())
            self.sessions[sid] = s
            return s

    def session_for_token(self, token: str) -> Session | None:
        with self._lock:
            now = time.monotonic()
            for sid, s in list(self.sessions.items()):
                if now - s.last_used > SESSION_TIMEOUT:
                    del self.sessions[sid]
            for s in self.sessions.values():
                if secrets.compare_digest(s.token.encode(), token.encode()):
                    s.last_used = now
                    return s
            return None

    def delete_session(self, sid: str) -> bool:
        with self._lock:
            return self.sessions.pop(sid, None) is not None

    # ------------------------------------------------------------------ etags
    def bios_etag(self) -> str:
        with self._lock:
            blob = json.dumps(self.current, sort_keys=True).encode()
            return hashlib.sha1(blob).hexdigest()[:20]

    def settings_etag(self) -> str:
        with self._lock:
            blob = json.dumps(self.pending, sort_keys=True).encode()
            return hashlib.sha1(b"pending" + blob).hexdigest()[:20]

    # ------------------------------------------------------------------ resources
    def captured_doc(self, path: str) -> dict[str, Any] | None:
        """The captured resource at ``path`` (a copy), if this BMC was built from a capture."""
        doc = self.captured.get(path.rstrip("/") or path)
        return json.loads(json.dumps(doc)) if doc is not None else None

    def service_root(self) -> dict[str, Any]:
        cap = self.captured_doc("/redfish/v1")
        if cap is not None:
            cap.setdefault("Systems", {"@odata.id": "/redfish/v1/Systems"})
            cap.setdefault("Registries", {"@odata.id": "/redfish/v1/Registries"})
            cap.setdefault("SessionService", {"@odata.id": "/redfish/v1/SessionService"})
            return cap
        p = self.personality
        return {
            "@odata.id": "/redfish/v1/",
            "@odata.type": T_SERVICE_ROOT,
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.15.0",
            "UUID": self.uuid,
            "Vendor": p.manufacturer,
            "Product": p.product,
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
            "Registries": {"@odata.id": "/redfish/v1/Registries"},
            "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
            "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
        }

    def systems(self) -> dict[str, Any]:
        cap = self.captured_doc("/redfish/v1/Systems")
        if cap is not None:
            return cap
        return {
            "@odata.id": "/redfish/v1/Systems",
            "@odata.type": T_SYSTEMS,
            "Name": "Computer System Collection",
            "Members@odata.count": 1 + len(self.personality.extra_systems),
            "Members": [{"@odata.id": self.personality.system_path}]
            + [{"@odata.id": f"/redfish/v1/Systems/{x}"} for x in self.personality.extra_systems],
        }

    def extra_system(self, sid: str) -> dict[str, Any]:
        """A System of the same BMC without a Bios (a GPU baseboard, a sled's other node)."""
        return {
            "@odata.id": f"/redfish/v1/Systems/{sid}",
            "@odata.type": T_SYSTEM,
            "Id": sid,
            "Name": f"{sid} System",
            "SystemType": "Physical",
            "Manufacturer": self.personality.manufacturer,
            "PowerState": self.power_state,
            "Status": {"State": "Enabled", "Health": "OK"},
        }

    def system(self) -> dict[str, Any]:
        p = self.personality
        with self._lock:
            nps, smt = p.topology(self.current)
            power = self.power_state
        cap = self.captured_doc(p.system_path)
        if cap is not None:  # the captured System; power and the reset action are behaviour
            cap["PowerState"] = power
            cap.setdefault("Bios", {"@odata.id": p.bios_path})
            actions = cap.setdefault("Actions", {})
            actions.setdefault(
                "#ComputerSystem.Reset",
                {
                    "target": f"{p.system_path}/Actions/ComputerSystem.Reset",
                    "ResetType@Redfish.AllowableValues": list(RESET_TYPES),
                },
            )
            return cap
        return {
            "@odata.id": p.system_path,
            "@odata.type": T_SYSTEM,
            "Id": p.system_id,
            "Name": "System",
            "SystemType": "Physical",
            "Manufacturer": p.manufacturer,
            "Model": p.model,
            "SerialNumber": f"SIM{self.uuid[:8].upper()}",
            "UUID": self.uuid,
            "HostName": self.name,
            "BiosVersion": p.bios_version,
            "PowerState": power,
            "Status": {"State": "Enabled", "Health": "OK"},
            "ProcessorSummary": {
                "Count": 2,
                "CoreCount": 128,
                "LogicalProcessorCount": 256 if smt else 128,
                "Model": "AMD EPYC 9575F 64-Core Processor",
                "ThreadingEnabled": smt,
            },
            "Bios": {"@odata.id": p.bios_path},
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": f"{p.system_path}/Actions/ComputerSystem.Reset",
                    "ResetType@Redfish.AllowableValues": list(RESET_TYPES),
                }
            },
        }

    def bios(self) -> dict[str, Any]:
        p = self.personality
        with self._lock:
            doc: dict[str, Any] = {
                "@odata.id": p.bios_path,
                "@odata.type": T_BIOS,
                "Id": "Bios",
                "Name": "BIOS Configuration Current Settings",
                "Description": "BIOS attribute values in effect",
                "AttributeRegistry": p.registry_id,
                "Attributes": dict(self.current),
                "ResetBiosToDefaultsPending": False,
            }
            cap = self.captured_doc(p.bios_path)
            if cap is not None:
                cap["Attributes"] = dict(self.current)
                doc = cap
            if not p.settings_link:
                return doc
            settings: dict[str, Any] = {
                **((cap or {}).get("@Redfish.Settings") or {}),
                "@odata.type": T_SETTINGS,
                "SettingsObject": {"@odata.id": p.settings_path},
                "ETag": self.bios_etag(),
                "Messages": [dict(m) for m in self.settings_messages],
            }
            if p.settings_time:
                settings["Time"] = _iso(self._settings_time)
            if p.apply_times:
                settings["SupportedApplyTimes"] = list(p.apply_times)
            doc["@Redfish.Settings"] = settings
            return doc

    def settings(self) -> dict[str, Any]:
        p = self.personality
        with self._lock:
            attrs = (
                {**self.current, **self.pending} if p.settings_shows_full else dict(self.pending)
            )
            cap = self.captured_doc(p.settings_path)
            doc: dict[str, Any]
            if cap is not None:
                doc = cap
                doc["Attributes"] = attrs
            else:
                doc = {
                    "@odata.id": p.settings_path,
                    "@odata.type": T_BIOS,
                    "Id": p.settings_id,
                    "Name": "BIOS Configuration Pending Settings",
                    "Description": "BIOS attribute values applied at the next system reset",
                    "AttributeRegistry": p.registry_id,
                    "Attributes": attrs,
                }
            if p.clear_pending:
                target = p.settings_path + "/Actions/Oem/DellManager.ClearPending"
                doc["Actions"] = {"Oem": {"#DellManager.ClearPending": {"target": target}}}
            return doc

    @property
    def registry_file_path(self) -> str:
        p = self.personality
        return getattr(self, "_registry_file_uri", None) or (
            f"/redfish/v1/Registries/{p.registry_file_id or p.registry_id}"
        )

    def registries(self) -> dict[str, Any]:
        cap = self.captured_doc("/redfish/v1/Registries")
        if cap is not None:
            return cap
        return {
            "@odata.id": "/redfish/v1/Registries",
            "@odata.type": T_REGISTRIES,
            "Name": "Registry File Collection",
            "Members@odata.count": 1,
            "Members": [{"@odata.id": self.registry_file_path}],
        }

    def registry_file(self) -> dict[str, Any]:
        cap = self.captured_doc(self.registry_file_path)
        if cap is not None:
            return cap
        p = self.personality
        major, minor, _ = p.registry_version.split(".")
        base_name = p.registry_id.split(".")[0]
        return {
            "@odata.id": self.registry_file_path,
            "@odata.type": T_REGISTRY_FILE,
            "Id": p.registry_file_id or p.registry_id,
            "Name": "BIOS Attribute Registry File",
            "Description": "Location of the BIOS attribute registry",
            "Languages": ["en"],
            "Registry": f"{base_name}.{major}.{minor}",
            "Location": [{"Language": "en", "Uri": p.registry_path}],
        }

    def attribute_registry(self) -> dict[str, Any]:
        cap = self.captured_doc(self.personality.registry_path)
        if cap is not None:
            return cap
        p = self.personality
        entries: list[dict[str, Any]] = []
        for order, a in enumerate(p.attributes, start=1):
            entries.append(_registry_entry(a, order, p.menu_name))
        deps: list[dict[str, Any]] = []
        for d in p.dependencies:
            if p.dependency_style == "equ":
                # HPE: one EQU term per value that locks the target, joined with OR
                gate = p.attr(d.gate)
                others = [v for v in (gate.values if gate else ()) if v != d.gate_value]
                terms: list[dict[str, Any]] = []
                for i, v in enumerate(others):
                    term: dict[str, Any] = {
                        "MapFromAttribute": d.gate,
                        "MapFromProperty": "CurrentValue",
                        "MapFromCondition": "EQU",
                        "MapFromValue": v,
                    }
                    if i:
                        term["MapTerms"] = "OR"
                    terms.append(term)
            else:
                terms = [
                    {
                        "MapFromAttribute": d.gate,
                        "MapFromProperty": "CurrentValue",
                        "MapFromCondition": "NEQ",
                        "MapFromValue": d.gate_value,
                    }
                ]
            deps.append(
                {
                    "DependencyFor": d.target,
                    "Type": "Map",
                    "Dependency": {
                        "MapFrom": terms,
                        "MapToAttribute": d.target,
                        "MapToProperty": d.lock,
                        "MapToValue": True,
                    },
                }
            )
        return {
            "@odata.id": p.registry_path,
            "@odata.type": T_ATTR_REGISTRY,
            "Id": p.registry_id,
            "Name": f"{p.manufacturer} BIOS Attribute Registry",
            "Description": "This registry defines the BIOS attributes of the system",
            "Language": "en",
            "OwningEntity": p.owning_entity,
            "RegistryVersion": p.registry_version,
            "SupportedSystems": [
                {
                    "ProductName": p.model,
                    "SystemId": "".join(ch for ch in p.model if ch.isalnum()),
                    "FirmwareVersion": p.bios_version,
                }
            ],
            "RegistryEntries": {
                "Attributes": entries,
                "Dependencies": deps,
                "Menus": [
                    {
                        "MenuName": p.menu_name,
                        "DisplayName": p.menu_display,
                        "DisplayOrder": 1,
                        "MenuPath": f"./{p.menu_name}",
                        "ReadOnly": False,
                        "Hidden": False,
                    }
                ],
            },
        }

    def session_service(self) -> dict[str, Any]:
        return {
            "@odata.id": "/redfish/v1/SessionService",
            "@odata.type": T_SESSION_SERVICE,
            "Id": "SessionService",
            "Name": "Session Service",
            "ServiceEnabled": True,
            "SessionTimeout": SESSION_TIMEOUT,
            "Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"},
        }

    def sessions_collection(self) -> dict[str, Any]:
        with self._lock:
            ids = sorted(self.sessions)
        return {
            "@odata.id": "/redfish/v1/SessionService/Sessions",
            "@odata.type": T_SESSIONS,
            "Name": "Session Collection",
            "Members@odata.count": len(ids),
            "Members": [{"@odata.id": f"/redfish/v1/SessionService/Sessions/{i}"} for i in ids],
        }

    def session_resource(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            s = self.sessions.get(sid)
            if s is None:
                return None
            return {
                "@odata.id": f"/redfish/v1/SessionService/Sessions/{s.id}",
                "@odata.type": T_SESSION,
                "Id": s.id,
                "Name": "User Session",
                "UserName": s.user,
                "Password": None,
            }

    # ------------------------------------------------------------------ BIOS PATCH
    def patch_settings(self, body: Any, if_match: str | None = None) -> Result:
        """Validate a PATCH of the settings object and store its values as pending.

        -> (200, settings) or, when the PATCH created an iDRAC job, (202, {"job": id}).
        """
        p = self.personality
        if self.faults.reject_patch:
            names = []
            if isinstance(body, dict) and isinstance(body.get("Attributes"), dict):
                names = list(body["Attributes"])
            related = [f"/Attributes/{n}" for n in names] or ["/Attributes"]
            return 400, error_body([message("SettingsFailed", [", ".join(names)], related)])
        if not isinstance(body, dict):
            return 400, error_body([message("MalformedJSON")])
        with self._lock:
            if p.busy_during_post and self._boot_timer is not None:
                return 400, error_body([vendor_message(p.busy_message)])
            if p.etag_required and not if_match:
                return 428, error_body([message("PreconditionRequired", [p.settings_path])])
            if p.jobs and any(j["JobState"] == "Scheduled" for j in self.jobs.values()):
                return 400, error_body([vendor_message("IDRAC.2.9.SYS011")])
            if if_match and if_match.strip() != "*":
                tags = {t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")}
                if self.settings_etag() not in tags:
                    return 412, error_body([message("PreconditionFailed")])
            errors: list[dict[str, Any]] = []
            for key in body:
                if key == "@Redfish.SettingsApplyTime" and p.apply_time_unknown:
                    errors.append(message("PropertyUnknown", [key], [f"/{key}"]))
                    continue
                if key in ("Attributes", "@Redfish.SettingsApplyTime"):
                    continue
                if key in (
                    "Id",
                    "Name",
                    "Description",
                    "AttributeRegistry",
                    "@odata.id",
                    "@odata.type",
                ):
                    errors.append(message("PropertyNotWritable", [key], [f"/{key}"]))
                else:
                    errors.append(message("PropertyUnknown", [key], [f"/{key}"]))
            apply_time = body.get("@Redfish.SettingsApplyTime")
            if apply_time is not None and not p.apply_time_unknown:
                value = apply_time.get("ApplyTime") if isinstance(apply_time, dict) else apply_time
                if value not in (p.apply_times or SUPPORTED_APPLY_TIMES):
                    errors.append(
                        message(
                            "PropertyValueNotInList",
                            [str(value), "ApplyTime"],
                            ["/@Redfish.SettingsApplyTime/ApplyTime"],
                        )
                    )
            if "Attributes" not in body:
                errors.append(message("PropertyMissing", ["Attributes"], ["/Attributes"]))
                return 400, error_body(errors)
            changes = body["Attributes"]
            if not isinstance(changes, dict):
                errors.append(
                    message(
                        "PropertyValueTypeError",
                        [json.dumps(changes), "Attributes"],
                        ["/Attributes"],
                    )
                )
                return 400, error_body(errors)
            for name, value in changes.items():
                a = p.attr(name)
                if a is None:
                    errors.append(message("PropertyUnknown", [name], [f"/Attributes/{name}"]))
                    continue
                if a.read_only:
                    errors.append(message("PropertyNotWritable", [name], [f"/Attributes/{name}"]))
                    continue
                problem = _check_value(a, value)
                if problem is not None:
                    errors.append(problem)
            if not errors and p.dependency_mode == "reject":
                merged = {**self.current, **self.pending, **changes}
                for name in changes:
                    for d in p.dependencies_for(name):
                        if merged.get(d.gate) != d.gate_value:
                            errors.append(
                                message(
                                    "PropertyValueConflict",
                                    [name, d.gate],
                                    [f"/Attributes/{name}", f"/Attributes/{d.gate}"],
                                )
                            )
            if errors:
                return 400, error_body(errors)
            self.pending.update(changes)
            if p.settings_shows_full:
                # the settings object is a full copy (iLO): a value equal to the one in
                # effect is no difference, so nothing waits for the reset
                for name in [n for n in changes if self.current.get(n) == changes[n]]:
                    del self.pending[name]
            if p.jobs and apply_time is not None and changes:
                self._job_counter += 1
                jid = f"JID_{int(time.time()) % 1000000:06d}{self._job_counter:06d}"
                self.jobs[jid] = {
                    "JobState": "Scheduled",
                    "Message": "Task successfully scheduled.",
                    "PercentComplete": 0,
                    "StartTime": _iso(_now()),
                }
                return 202, {"job": jid}
            return 200, self.settings()

    def job_path(self, jid: str) -> str:
        return f"/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/{jid}"

    def job_collection(self) -> dict[str, Any]:
        """iDRAC's job queue (Managers/iDRAC.Embedded.1/Jobs)."""
        with self._lock:
            ids = sorted(self.jobs)
        return {
            "@odata.id": "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs",
            "@odata.type": "#DellJobCollection.DellJobCollection",
            "Name": "JobQueue",
            "Members@odata.count": len(ids),
            "Members": [{"@odata.id": self.job_path(j)} for j in ids],
        }

    def job(self, jid: str) -> dict[str, Any] | None:
        """An iDRAC job (DellJob), as iDRAC shows it under Managers/iDRAC.Embedded.1/Jobs."""
        with self._lock:
            j = self.jobs.get(jid)
            if j is None:
                return None
            return {
                "@odata.id": self.job_path(jid),
                "@odata.type": "#DellJob.v1_6_0.DellJob",
                "Id": jid,
                "Name": "Configure: BIOS.Setup.1-1",
                "JobType": "BIOSConfiguration",
                "TargetSettingsURI": None,
                **j,
            }

    def delete_job(self, jid: str) -> Result:
        """DELETE of an iDRAC job: a Scheduled BIOS job goes, and with it the pending values
        it would apply (Dell's idrac_bios clear_pending deletes the job to clear them); a
        Running one cannot be deleted; a finished one just leaves the queue."""
        with self._lock:
            j = self.jobs.get(jid)
            if j is None:
                return 404, error_body([message("ResourceMissingAtURI", [self.job_path(jid)])])
            if j["JobState"] == "Running":
                return 400, error_body([message("ResourceInUse")])
            del self.jobs[jid]
            if j["JobState"] == "Scheduled":
                self.pending.clear()
            return 200, {"@Message.ExtendedInfo": [message("Success")]}

    def clear_pending_values(self) -> Result:
        """POST .../Bios/Settings/Actions/Oem/DellManager.ClearPending (iDRAC)."""
        with self._lock:
            if any(j["JobState"] == "Scheduled" for j in self.jobs.values()):
                return 400, error_body([message("ResourceInUse")])
            if not self.pending:
                return 400, error_body([message("NoOperation")])
            self.pending.clear()
            return 200, {"@Message.ExtendedInfo": [message("Success")]}

    # ------------------------------------------------------------------ reset / boot
    def reset(self, body: Any) -> Result:
        """Handle ``ComputerSystem.Reset``; returns (204, None) when accepted."""
        action = "ComputerSystem.Reset"
        if not isinstance(body, dict):
            return 400, error_body([message("MalformedJSON")])
        unknown = [k for k in body if k != "ResetType"]
        if unknown:
            return 400, error_body([message("ActionParameterUnknown", [action, unknown[0]])])
        if "ResetType" not in body:
            return 400, error_body([message("ActionParameterMissing", [action, "ResetType"])])
        rtype = body["ResetType"]
        if rtype not in RESET_TYPES:
            return 400, error_body(
                [message("ActionParameterValueNotInList", [str(rtype), "ResetType", action])]
            )
        with self._lock:
            booting = self._boot_timer is not None
            if rtype == "ForceOff":
                self._cancel_boot_locked()
                self.power_state = "Off"
            elif rtype == "On":
                if self.power_state == "Off" and not booting:
                    self._schedule_boot_locked()
            else:  # GracefulRestart / ForceRestart: from Off this powers the system on
                if not booting:
                    self.power_state = "Off"
                    self._schedule_boot_locked()
        log.info("%s: reset %s accepted", self.name, rtype)
        return 204, None

    def _cancel_boot_locked(self) -> None:
        self._boot_gen += 1
        if self._boot_timer is not None:
            self._boot_timer.cancel()
            self._boot_timer = None

    def _schedule_boot_locked(self) -> None:
        self._boot_gen += 1
        gen = self._boot_gen
        timer = threading.Timer(self.cfg.reset_delay, self._complete_boot, args=(gen,))
        timer.daemon = True
        self._boot_timer = timer
        timer.start()

    def _complete_boot(self, gen: int) -> None:
        with self._lock:
            if gen != self._boot_gen or self._stopped:
                return
            self._apply_pending_locked()
            attrs = dict(self.current)
        self._apply_topology(attrs)
        with self._lock:
            if gen != self._boot_gen or self._stopped:
                return
            self._boot_timer = None
            self.power_state = "On"
            self.boot_count += 1
        if any(j["JobState"] == "Running" for j in self.jobs.values()):
            # iDRAC shows the new values before its job says Completed
            t = threading.Timer(max(0.3, self.cfg.reset_delay * 0.5), self._finish_jobs)
            t.daemon = True
            t.start()
        for hook in list(self.on_boot):
            try:
                hook(self)
            except Exception:  # pragma: no cover - hooks are test helpers
                log.exception("%s: boot hook failed", self.name)
        log.info("%s: boot complete, PowerState On", self.name)

    def _finish_jobs(self) -> None:
        with self._lock:
            if self._stopped:
                return
            for j in self.jobs.values():
                if j["JobState"] == "Running":
                    j.update(
                        JobState="Completed",
                        Message="Job completed successfully.",
                        PercentComplete=100,
                        EndTime=_iso(_now()),
                    )

    def _bump_time_locked(self) -> None:
        new = _now()
        if new <= self._settings_time:
            new = self._settings_time + timedelta(milliseconds=1)
        self._settings_time = new

    def _apply_pending_locked(self) -> None:
        """POST-time application of pending values (vendor BIOS behaviour)."""
        for j in self.jobs.values():
            if j["JobState"] == "Scheduled":
                j.update(JobState="Running", Message="Job in progress.", PercentComplete=50)
        if not self.pending:
            return
        p = self.personality
        pending = dict(self.pending)
        self.pending.clear()
        self._bump_time_locked()
        if self.faults.fail_at_reset:
            names = list(pending)
            self.settings_messages = [
                message("SettingsFailed", [", ".join(names)], [f"/Attributes/{n}" for n in names])
            ]
            log.warning("%s: fail_at_reset: pending values not applied: %s", self.name, names)
            return
        failed: dict[str, str] = {}
        if p.dependency_mode == "at_reset":
            while True:
                effective = {
                    **self.current,
                    **{k: v for k, v in pending.items() if k not in failed},
                }
                new_failures = {
                    name: d.gate
                    for name in pending
                    if name not in failed
                    for d in p.dependencies_for(name)
                    if effective.get(d.gate) != d.gate_value
                }
                if not new_failures:
                    break
                failed.update(new_failures)
        for name, value in pending.items():
            if name not in failed:
                self.current[name] = value
        msgs: list[dict[str, Any]] = []
        for name, gate in failed.items():
            msgs.append(message("SettingsFailed", [name], [f"/Attributes/{name}"]))
            msgs.append(
                message(
                    "PropertyValueConflict",
                    [name, gate],
                    [f"/Attributes/{name}", f"/Attributes/{gate}"],
                )
            )
        if p.success_message:
            # iLO: one Base.1.0.Success for the transfer, then one message per failure
            msgs.insert(0, {"MessageId": "Base.1.0.Success"})
        self.settings_messages = msgs
        if failed:
            log.warning("%s: settings failed at reset: %s", self.name, sorted(failed))

    def _apply_topology(self, attrs: Mapping[str, AttrValue]) -> None:
        root = self.cfg.node_root
        if root is None:
            return
        nps, smt = self.personality.topology(attrs)
        try:
            mod = importlib.import_module("agent.sim.nodetree")
            fn = mod.apply_bios_topology
        except (ImportError, AttributeError):
            log.warning(
                "%s: agent.sim.nodetree.apply_bios_topology not available; node tree not updated",
                self.name,
            )
            return
        try:
            fn(Path(root), nps, smt)
        except Exception:
            log.exception(
                "%s: apply_bios_topology(%s, nps=%s, smt=%s) failed", self.name, root, nps, smt
            )

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._cancel_boot_locked()

    # ------------------------------------------------------------------ helpers for tests
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "power_state": self.power_state,
                "current": dict(self.current),
                "pending": dict(self.pending),
                "messages": [dict(m) for m in self.settings_messages],
                "time": _iso(self._settings_time),
                "boot_count": self.boot_count,
                "topology": self.personality.topology(self.current),
            }


def _check_value(a: AttrDef, value: Any) -> dict[str, Any] | None:
    """None when ``value`` is acceptable for ``a``, else the Redfish message."""
    rel = [f"/Attributes/{a.name}"]
    shown = json.dumps(value)
    if a.type == "Enumeration":
        if not isinstance(value, str):
            return message("PropertyValueTypeError", [shown, a.name], rel)
        if value not in a.values:
            return message("PropertyValueNotInList", [value, a.name], rel)
    elif a.type == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return message("PropertyValueTypeError", [shown, a.name], rel)
        if (a.lower_bound is not None and value < a.lower_bound) or (
            a.upper_bound is not None and value > a.upper_bound
        ):
            return message("PropertyValueOutOfRange", [shown, a.name], rel)
    elif a.type == "Boolean":
        if not isinstance(value, bool):
            return message("PropertyValueTypeError", [shown, a.name], rel)
    else:
        if not isinstance(value, str):
            return message("PropertyValueTypeError", [shown, a.name], rel)
        if a.max_length is not None and len(value) > a.max_length:
            return message("PropertyValueOutOfRange", [shown, a.name], rel)
    return None


def _registry_entry(a: AttrDef, order: int, menu: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "AttributeName": a.name,
        "DisplayName": a.display_name,
        "HelpText": a.help_text or a.display_name,
        "DisplayOrder": order,
        "MenuPath": f"./{menu}",
        "Type": a.type,
        "DefaultValue": a.default,
        "CurrentValue": None,
        "ReadOnly": a.read_only,
        "ResetRequired": a.reset_required,
        "Hidden": False,
        "Immutable": a.read_only,
    }
    if a.type == "Enumeration":
        entry["Value"] = [
            {"ValueName": v, "ValueDisplayName": a.value_display.get(v, v)} for v in a.values
        ]
    if a.type == "Integer":
        if a.lower_bound is not None:
            entry["LowerBound"] = a.lower_bound
        if a.upper_bound is not None:
            entry["UpperBound"] = a.upper_bound
        entry["ScalarIncrement"] = 1
    if a.type == "String" and a.max_length is not None:
        entry["MaxLength"] = a.max_length
        entry["MinLength"] = 0
    return entry
