"""Profiles: YAML files validated with pydantic, merged through `include` (child wins).

A profile file has `name`, `description`, `include` and one section per registered layer
that declares one (`Layer.section` and `Layer.schema()`, agent/layers/__init__.py: `os`,
`bios`, `kernel`, ...): this module validates, merges and reports every registered section
the same way and names none of them. Every value is checked here, before any host is
touched: a bad profile ends the command with exit 2 and a message naming the file, the field
and what is allowed.

The section schemas of the first three layers are below (`OsSection`, `BiosSection`,
`KernelSection`); a new layer keeps its schema in its own files.
"""

from __future__ import annotations

import fnmatch
import functools
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
    create_model,
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


class _DocHead(_Strict):
    name: Annotated[str, Field(pattern=_NAME.pattern)]
    description: str = ""
    include: list[str] = []


def sections() -> dict[str, type[BaseModel]]:
    """Every registered layer's profile section -> its schema (agent/layers/__init__.py)."""
    from agent import layers

    return layers.sections()


@functools.cache
def doc_model() -> type[BaseModel]:
    """One profile file as written (before includes are merged): name, description,
    include and every registered section (unknown keys are refused)."""
    fields: dict[str, Any] = {k: (m, m()) for k, m in sections().items()}
    return create_model("ProfileDoc", __base__=_DocHead, **fields)


class Profile(BaseModel):
    """A resolved profile: the merged settings and the file each value came from.

    Each registered section is a field of its own (`p.os`, `p.bios`, ...; `section(name)`),
    kept as the model's extra fields so that this class names none of them."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: str
    files: list[str]
    sources: dict[str, str]  # flattened key (os.thp.enabled) -> file

    def section(self, name: str) -> Any:
        """The section `name` (its schema's model; its defaults when the layer is unknown)."""
        got = (self.__pydantic_extra__ or {}).get(name)
        if got is None:
            schema = sections().get(name)
            if schema is None:
                raise KeyError(name)
            got = schema()
        return got

    def section_names(self) -> list[str]:
        return list(self.__pydantic_extra__ or {})

    def set_sections(self) -> list[str]:
        """The sections that set something (not only defaults)."""
        return [
            n
            for n in self.section_names()
            if self.section(n).model_dump(exclude_none=True, exclude_defaults=True)
        ]

    def dump_sections(self) -> dict[str, Any]:
        return {n: self.section(n).model_dump(exclude_none=True) for n in self.section_names()}

    # Conveniences of the first layers' sections (tests, bench/, the node agent's specs).
    def cmdline(self) -> dict[str, list[str]]:
        """The kernel command line the tuner_cmdline module applies ({add, remove})."""
        c = self.section("kernel").cmdline
        return {"add": list(c.add), "remove": list(c.remove)}

    def has_cmdline(self) -> bool:
        c = self.section("kernel").cmdline
        return bool(c.add or c.remove)

    def os_settings(self) -> list[dict[str, Any]]:
        """The knob specs the tuner_os module applies (ids are stable: thp.enabled, ...)."""
        o = self.section("os")
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
        allow = self.section("os").allow_missing
        return any(fnmatch.fnmatchcase(setting_id, p) for p in allow)


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


def _read_doc(path: Path) -> tuple[Any, dict[str, Any]]:
    return load_model(path, doc_model(), "profile")


def load_profile(ref: str) -> Profile:
    top = find_profile(ref)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[str] = []
    top_doc: Any = None
    known = sections()

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
        body = {k: raw[k] for k in known if k in raw}
        merged = _merge(merged, body)
        flat: dict[str, Any] = {}
        _flatten(body, "", flat)
        for key in flat:
            sources[key] = str(path)
        files.append(str(path))

    visit(top, [])
    assert top_doc is not None
    got: dict[str, BaseModel] = {}
    for key, schema in known.items():
        try:
            got[key] = schema.model_validate(_drop_none(merged.get(key) or {}))
        except ValidationError as e:
            loc, msg = validation_text(e)
            raise BadInput(msg, file=str(top), field=loc) from e
    flat_final: dict[str, Any] = {}
    _flatten({k: m.model_dump(exclude_none=True) for k, m in got.items()}, "", flat_final)
    return Profile(
        name=top_doc.name,
        description=top_doc.description,
        files=files,
        sources={k: sources.get(k, "default") for k in flat_final},
        **got,
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
