"""Profiles: YAML files validated with pydantic, merged through `include` (child wins).

A profile file has `name`, `description`, `include`, and `os`, `bios`, `kernel` and `nic`
sections.
Every value is checked here, before any host is touched: a bad profile ends the command
with exit 2 and a message naming the file, the field and what is allowed.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from agent import knobs
from agent.errors import BadInput, validation_text
from agent.paths import profiles_dir
from agent.yamlfile import load_model

Governor = Literal["performance", "powersave", "ondemand", "conservative", "schedutil", "userspace"]
ThpEnabled = Literal["always", "madvise", "never"]
ThpDefrag = Literal["always", "defer", "defer+madvise", "madvise", "never"]

# Ranges the kernel accepts for the sysctls tuner knows; others need a plain safe value.
KNOWN_SYSCTLS: dict[str, tuple[int, int]] = {
    "kernel.numa_balancing": (0, 3),
    "kernel.nmi_watchdog": (0, 1),
    "kernel.randomize_va_space": (0, 2),
    "vm.swappiness": (0, 200),
    "vm.zone_reclaim_mode": (0, 7),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VENDOR_ATTR = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_KPARAM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-\[\]]*(=[A-Za-z0-9_.,:=+\-/@%~^]*)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thp(_Strict):
    enabled: ThpEnabled | None = None
    defrag: ThpDefrag | None = None


class Cpu(_Strict):
    governor: Governor | None = None


class CpuIdle(_Strict):
    disable: list[Annotated[str, Field(pattern=knobs.SAFE_STATE.pattern)]] | None = Field(
        default=None, description="idle states to disable, named as the kernel names them (C2)"
    )


class OsSection(_Strict):
    thp: Thp = Thp()
    sysctl: dict[str, Any] = {}
    cpu: Cpu = Cpu()
    cpuidle: CpuIdle = CpuIdle()
    persist: StrictBool = True
    allow_missing: list[str] = Field(
        default=[], description="setting ids (globs) that may be missing on a host"
    )

    @field_validator("sysctl")
    @classmethod
    def _sysctl(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name, value in v.items():
            if not knobs.SYSCTL_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a sysctl name: use a plain dotted name such as "
                    "kernel.numa_balancing"
                )
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError(f"{name}: a sysctl value is an integer or a string, got {value!r}")
            if isinstance(value, str) and (len(value) > 256 or not knobs.SAFE_VALUE.match(value)):
                raise ValueError(
                    f"{name}: value {value!r} is not allowed (plain words only: letters, "
                    "digits, space and _ . : , + - [ ])"
                )
            if name in KNOWN_SYSCTLS:
                lo, hi = KNOWN_SYSCTLS[name]
                if not isinstance(value, int) or not lo <= value <= hi:
                    raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
        return v


class BiosSection(_Strict):
    """Vendor-neutral BIOS settings (applied through Redfish; see docs/profiles.md)."""

    nps: Literal[1, 2, 4] | None = None
    smt: StrictBool | None = None
    core_performance_boost: StrictBool | None = None
    apbdis: Literal[0, 1] | None = None
    df_cstates: StrictBool | None = None
    determinism: Literal["power", "performance"] | None = None
    global_cstates: StrictBool | None = None
    power_profile: Literal["maximum_performance", "custom", "balanced"] | None = None
    vendor_attributes: dict[
        Annotated[str, Field(pattern=_VENDOR_ATTR.pattern)],
        StrictInt | StrictBool | Annotated[str, Field(pattern=knobs.SAFE_VALUE.pattern)],
    ] = {}


KernelParam = Annotated[
    str,
    Field(
        pattern=_KPARAM.pattern,
        max_length=256,
        description="a kernel parameter: name or name=value (no quotes, blanks or $`;&|<>)",
    ),
]


class Cmdline(_Strict):
    """Kernel command-line parameters, written through the bootloader configuration.

    Compared as whole tokens: `pci=realloc=off` and `pci=bfsort` are two parameters (Linux
    reads every `pci=` option). `remove: [name]` drops every `name`/`name=...` the host has,
    except the ones `add` lists; `remove: [name=value]` drops that token only."""

    add: list[KernelParam] = Field(default=[], max_length=64)
    remove: list[KernelParam] = Field(default=[], max_length=64)

    @model_validator(mode="after")
    def _both(self) -> Cmdline:
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(
                f"{', '.join(both)}: a parameter cannot be both added and removed "
                "(drop it from one of the lists)"
            )
        for name, items in (("add", self.add), ("remove", self.remove)):
            dup = sorted({t for t in items if items.count(t) > 1})
            if dup:
                raise ValueError(f"{name}: {', '.join(dup)} listed twice")
        return self


class KernelSection(_Strict):
    cmdline: Cmdline = Cmdline()


NicModel = Literal["pollara-400", "thor2", "connectx-7"]
RingSize = Literal["max"] | Annotated[int, Field(strict=True, ge=1, le=1 << 20)]


class NicRings(_Strict):
    rx: RingSize | None = None
    tx: RingSize | None = None


class NicPcie(_Strict):
    max_read_request: Literal[128, 256, 512, 1024, 2048, 4096] | None = Field(
        default=None, description="PCIe Max_Read_Request_Size in bytes"
    )
    relaxed_ordering: StrictBool | None = None


class NicRoce(_Strict):
    dscp: Annotated[int, Field(strict=True, ge=0, le=63)] | None = Field(
        default=None, description="DSCP of RoCE traffic (RDMA CM default ToS = dscp << 2)"
    )


class NicSection(_Strict):
    """The scale-out NICs of one model (docs/profiles.md "nic"); applied per port."""

    model: NicModel | None = None
    interfaces: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,15}$")]] = Field(
        default=[], max_length=64, description="only these ports (default: every port)"
    )
    mtu: Annotated[int, Field(strict=True, ge=68, le=65535)] | None = None
    rings: NicRings = NicRings()
    irq_affinity: Literal["numa"] | None = None
    pcie: NicPcie = NicPcie()
    roce: NicRoce = NicRoce()

    @model_validator(mode="after")
    def _model(self) -> NicSection:
        sets = self.model_dump(exclude_none=True, exclude={"model", "interfaces"})
        if any(v not in ({}, []) for v in sets.values()) and self.model is None:
            raise ValueError(
                "model is required when the nic section sets anything "
                "(pollara-400, thor2 or connectx-7)"
            )
        return self


class ProfileDoc(_Strict):
    """One profile file as written (before includes are merged)."""

    name: Annotated[str, Field(pattern=_NAME.pattern)]
    description: str = ""
    include: list[str] = []
    os: OsSection = OsSection()
    bios: BiosSection = BiosSection()
    kernel: KernelSection = KernelSection()
    nic: NicSection = NicSection()


class Profile(BaseModel):
    """A resolved profile: the merged settings and the file each value came from."""

    name: str
    description: str
    files: list[str]
    os: OsSection
    bios: BiosSection
    kernel: KernelSection = KernelSection()
    nic: NicSection = NicSection()
    sources: dict[str, str]  # flattened key (os.thp.enabled) -> file

    def nic_settings(self) -> dict[str, Any]:
        """The settings the tuner_nic module applies ({} when the section sets nothing)."""
        n = self.nic
        if n.model is None:
            return {}
        out: dict[str, Any] = {"model": n.model, "interfaces": list(n.interfaces)}
        rings = n.rings.model_dump(exclude_none=True)
        values = {
            "mtu": n.mtu,
            "rings": rings or None,
            "irq_affinity": n.irq_affinity,
            "max_read_request": n.pcie.max_read_request,
            "relaxed_ordering": n.pcie.relaxed_ordering,
            "roce_tos": None if n.roce.dscp is None else n.roce.dscp << 2,
        }
        out.update({k: v for k, v in values.items() if v is not None})
        return out

    def has_nic(self) -> bool:
        return len(self.nic_settings()) > 2

    def cmdline(self) -> dict[str, list[str]]:
        """The kernel command line the tuner_cmdline module applies ({add, remove})."""
        c = self.kernel.cmdline
        return {"add": list(c.add), "remove": list(c.remove)}

    def has_cmdline(self) -> bool:
        return bool(self.kernel.cmdline.add or self.kernel.cmdline.remove)

    def os_settings(self) -> list[dict[str, Any]]:
        """The knob specs the tuner_os module applies (ids are stable: thp.enabled, ...)."""
        o = self.os
        specs: list[dict[str, Any]] = []
        for key in ("enabled", "defrag"):
            value = getattr(o.thp, key)
            if value is not None:
                specs.append(
                    {
                        "id": f"thp.{key}",
                        "kind": "selection",
                        "path": f"{knobs.THP_DIR}/{key}",
                        "value": value,
                    }
                )
        for name, value in o.sysctl.items():
            if value is not None:
                specs.append(
                    {"id": f"sysctl.{name}", "kind": "sysctl", "name": name, "value": str(value)}
                )
        if o.cpu.governor:
            specs.append({"id": "cpu.governor", "kind": "governor", "value": o.cpu.governor})
        for state in o.cpuidle.disable or []:
            specs.append(
                {"id": f"cpuidle.{state}", "kind": "cpuidle", "state": state, "value": "disabled"}
            )
        return specs

    def missing_ok(self, setting_id: str) -> bool:
        return any(fnmatch.fnmatchcase(setting_id, p) for p in self.os.allow_missing)


def _flatten(d: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(d, dict) and d:
        for k, v in d.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = d


def _merge(base: dict[str, Any], child: dict[Any, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v  # scalars and lists: the child replaces; null removes (see _drop_none)
    return out


def find_profile(ref: str) -> Path:
    """A profile name from profiles/, or a path to a YAML file."""
    p = Path(ref)
    if p.suffix in (".yml", ".yaml") or "/" in ref:
        if not p.is_file():
            raise BadInput(f"profile file {ref} not found")
        return p.resolve()
    if not _NAME.match(ref):
        raise BadInput(f"{ref!r} is not a profile name")
    for ext in (".yml", ".yaml"):
        cand = profiles_dir() / f"{ref}{ext}"
        if cand.is_file():
            return cand.resolve()
    known = ", ".join(list_profiles()) or "none"
    raise BadInput(f"unknown profile {ref!r} (known: {known}; or pass a path to a YAML file)")


def list_profiles() -> list[str]:
    d = profiles_dir()
    return sorted(p.stem for p in d.glob("*.y*ml")) if d.is_dir() else []


def _read_doc(path: Path) -> tuple[ProfileDoc, dict[str, Any]]:
    return load_model(path, ProfileDoc, "profile")


def load_profile(ref: str) -> Profile:
    top = find_profile(ref)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[str] = []
    top_doc: ProfileDoc | None = None

    def visit(path: Path, stack: list[Path]) -> None:
        nonlocal merged, top_doc
        if path in stack:
            chain = " -> ".join(p.name for p in [*stack, path])
            raise BadInput(f"include cycle: {chain}", file=str(stack[-1]), field="include")
        doc, raw = _read_doc(path)
        if top_doc is None:
            top_doc = doc
        for inc in doc.include:
            visit(_find_include(inc, path), [*stack, path])
        body = {k: raw[k] for k in ("os", "bios", "kernel", "nic") if k in raw}
        merged = _merge(merged, body)
        flat: dict[str, Any] = {}
        _flatten(body, "", flat)
        for key in flat:
            sources[key] = str(path)
        files.append(str(path))

    visit(top, [])
    assert top_doc is not None
    try:
        os_sec = OsSection.model_validate(_drop_none(merged.get("os") or {}))
        bios_sec = BiosSection.model_validate(_drop_none(merged.get("bios") or {}))
        kernel_sec = KernelSection.model_validate(_drop_none(merged.get("kernel") or {}))
        nic_sec = NicSection.model_validate(_drop_none(merged.get("nic") or {}))
    except ValidationError as e:
        loc, msg = validation_text(e)
        raise BadInput(msg, file=str(top), field=loc) from e
    flat_final: dict[str, Any] = {}
    dump = {
        "os": os_sec.model_dump(exclude_none=True),
        "bios": bios_sec.model_dump(exclude_none=True),
        "kernel": kernel_sec.model_dump(exclude_none=True),
    }
    if nic_sec.model is not None:  # a profile without a nic section shows none
        dump["nic"] = nic_sec.model_dump(exclude_none=True, exclude_defaults=True)
    _flatten(dump, "", flat_final)
    return Profile(
        name=top_doc.name,
        description=top_doc.description,
        files=files,
        os=os_sec,
        bios=bios_sec,
        kernel=kernel_sec,
        nic=nic_sec,
        sources={k: sources.get(k, "default") for k in flat_final},
    )


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """`key: null` in a child profile removes an inherited setting."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if v is None:
            continue
        out[k] = _drop_none(v) if isinstance(v, dict) else v
    return out


def _find_include(ref: str, including: Path) -> Path:
    p = Path(ref)
    if p.suffix in (".yml", ".yaml") or "/" in ref:
        cand = p if p.is_absolute() else including.parent / p
        if cand.is_file():
            return cand.resolve()
        raise BadInput(f"included profile {ref} not found", file=str(including), field="include")
    for d in (including.parent, profiles_dir()):
        for ext in (".yml", ".yaml"):
            cand = d / f"{ref}{ext}"
            if cand.is_file():
                return cand.resolve()
    raise BadInput(f"included profile {ref!r} not found", file=str(including), field="include")
