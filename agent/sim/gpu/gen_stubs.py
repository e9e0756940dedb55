"""Generate the C side of the simulated ``libamd_smi.so`` from the installed amdsmi wrapper.

The real ``amdsmi`` package is pure Python: ``amdsmi/amdsmi_wrapper.py`` declares every C
symbol it binds (``argtypes``/``restype``) and every struct as a packed ctypes class. This
module imports that wrapper over a recording fake library (no C library, no GPU needed) and
writes two files:

* ``amdsmi_sim_gen.h`` -- ``#pragma pack(1)`` struct typedefs generated from the ctypes
  classes (with ``_Static_assert`` checks of every size and field offset), the prototype of
  every bound function, the integer constants of the wrapper (``AMDSMI_*``) and name tables
  (status codes, valid firmware ids, CPER notify types, bound symbols) for the state parser.
* ``amdsmi_sim_stubs.c`` -- one weak definition per bound symbol returning
  ``AMDSMI_STATUS_NOT_SUPPORTED`` (or a status injected through the state file). The
  hand-written ``libamd_smi.c`` overrides the functions it implements with strong symbols.

A new amdsmi release is therefore one regeneration away: the build runs this generator
every time its inputs change.

Usage: ``python -m agent.sim.gpu.gen_stubs OUT_DIR``.
"""

from __future__ import annotations

import ast
import ctypes
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HEADER_NAME = "amdsmi_sim_gen.h"
STUBS_NAME = "amdsmi_sim_stubs.c"
LIB_KEY = "libamd_smi.so"


class WrapperError(RuntimeError):
    """The installed amdsmi wrapper could not be found or understood."""


@dataclass
class BoundFunction:
    """One C symbol the wrapper binds, with its ctypes prototype."""

    name: str
    restype: Any
    argtypes: list[Any]


@dataclass
class WrapperInfo:
    """Everything the generator reads off the installed wrapper."""

    module: ModuleType
    path: Path
    version: str
    functions: list[BoundFunction] = field(default_factory=list)
    valid_fw_names: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


class _FakeFunction:
    """Stands in for a ctypes function pointer: accepts restype/argtypes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restype: Any = ctypes.c_int
        self.argtypes: list[Any] | None = None


class _RecordingLibrary:
    """A fake ``ctypes.CDLL`` whose attributes record the symbols the wrapper binds."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self._functions: dict[str, _FakeFunction] = {}

    def __getattr__(self, name: str) -> _FakeFunction:
        if name.startswith("__"):
            raise AttributeError(name)
        funcs = self.__dict__["_functions"]
        if name not in funcs:
            funcs[name] = _FakeFunction(name)
        return funcs[name]


@contextmanager
def _fake_cdll() -> Iterator[None]:
    saved = ctypes.CDLL
    ctypes.CDLL = _RecordingLibrary  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        ctypes.CDLL = saved  # type: ignore[misc]


def amdsmi_package_dir() -> Path:
    """Directory of the installed ``amdsmi`` package, found without importing it."""
    existing = sys.modules.get("amdsmi")
    spec = existing.__spec__ if existing is not None else importlib.util.find_spec("amdsmi")
    if spec is None or not spec.submodule_search_locations:
        raise WrapperError("the amdsmi Python package is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def amdsmi_version() -> str:
    """Version of the installed amdsmi distribution ("unknown" if it has no metadata)."""
    from importlib import metadata

    try:
        return metadata.version("amdsmi")
    except metadata.PackageNotFoundError:
        return "unknown"


def _valid_fw_names(interface_path: Path) -> list[str]:
    """Names in ``AmdSmiFwBlock`` of amdsmi_interface.py: the fw ids Python accepts."""
    if not interface_path.is_file():
        return []
    tree = ast.parse(interface_path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "AmdSmiFwBlock":
            names = []
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Attribute):
                    names.append(stmt.value.attr)
            return names
    return []


def load_wrapper(path: Path | None = None) -> WrapperInfo:
    """Import ``amdsmi_wrapper.py`` over a recording fake library and read its bindings."""
    pkg = amdsmi_package_dir() if path is None else path.parent
    wrapper_path = pkg / "amdsmi_wrapper.py" if path is None else path
    if not wrapper_path.is_file():
        raise WrapperError(f"amdsmi wrapper not found at {wrapper_path}")
    spec = importlib.util.spec_from_file_location("_tuner_amdsmi_wrapper_probe", wrapper_path)
    if spec is None or spec.loader is None:
        raise WrapperError(f"cannot load {wrapper_path}")
    module = importlib.util.module_from_spec(spec)
    with _fake_cdll():
        spec.loader.exec_module(module)
    lib = module._libraries.get(LIB_KEY)
    if not isinstance(lib, _RecordingLibrary):
        raise WrapperError("the wrapper did not load its library through ctypes.CDLL")
    functions = []
    for name, fake in sorted(lib._functions.items()):
        functions.append(BoundFunction(name, fake.restype, list(fake.argtypes or [])))
    info = WrapperInfo(module=module, path=wrapper_path, version=amdsmi_version())
    info.functions = functions
    info.valid_fw_names = _valid_fw_names(wrapper_path.parent / "amdsmi_interface.py")
    return info


# --------------------------------------------------------------------------- C types

_SIMPLE: dict[Any, str] = {
    ctypes.c_bool: "_Bool",
    ctypes.c_char: "char",
    ctypes.c_byte: "int8_t",
    ctypes.c_ubyte: "uint8_t",
    ctypes.c_short: "int16_t",
    ctypes.c_ushort: "uint16_t",
    ctypes.c_int: "int32_t",
    ctypes.c_uint: "uint32_t",
    ctypes.c_long: "int64_t",
    ctypes.c_ulong: "uint64_t",
    ctypes.c_longlong: "int64_t",
    ctypes.c_ulonglong: "uint64_t",
    ctypes.c_float: "float",
    ctypes.c_double: "double",
    ctypes.c_void_p: "void *",
    ctypes.c_char_p: "char *",
}

_C_KEYWORDS = {
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
}


_FUNCPTR_BASE: type = ctypes.CFUNCTYPE(None).__bases__[0]  # ctypes._CFuncPtr


def _is_record(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, ctypes.Structure | ctypes.Union)


def _is_array(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, ctypes.Array)


def _is_pointer(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, ctypes._Pointer)


def _is_funcptr(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, _FUNCPTR_BASE)


def c_field_name(name: str) -> str:
    return name + "_" if name in _C_KEYWORDS else name


class _TypeNamer:
    """Gives every ctypes record class one unique C typedef name, in dependency order."""

    def __init__(self) -> None:
        self.names: dict[type, str] = {}
        self.order: list[type] = []
        self._used: set[str] = set()
        self._active: set[type] = set()

    def visit(self, t: Any) -> None:
        while _is_array(t) or _is_pointer(t):
            t = t._type_
        if not _is_record(t) or t in self.order or t in self._active:
            return
        self._name(t)
        self._active.add(t)
        for f in getattr(t, "_fields_", []):
            self.visit(f[1])
        self._active.discard(t)
        self.order.append(t)

    def _name(self, t: type) -> str:
        if t not in self.names:
            base = t.__name__
            name, n = base, 1
            while name in self._used:
                n += 1
                name = f"{base}_{n}"
            self._used.add(name)
            self.names[t] = name
        return self.names[t]

    def decl(self, t: Any, ident: str) -> str:
        """C declaration of ``ident`` with ctypes type ``t`` (arrays/pointers included)."""
        dims = ""
        while _is_array(t):
            dims += f"[{t._length_}]"
            t = t._type_
        return f"{self.base(t)} {ident}{dims}".replace("* ", "*")

    def base(self, t: Any) -> str:
        if t is None:
            return "void"
        if t in _SIMPLE:
            return _SIMPLE[t]
        if _is_record(t):
            return self._name(t)
        if _is_funcptr(t):
            return "void *"
        if _is_pointer(t):
            inner = t._type_
            if _is_array(inner) or _is_funcptr(inner):
                return "void *"
            return self.base(inner) + " *"
        if _is_array(t):
            return self.base(t._type_) + " *"
        raise WrapperError(f"no C equivalent for ctypes type {t!r}")


def _struct_def(namer: _TypeNamer, t: Any) -> str:
    kind = "union" if issubclass(t, ctypes.Union) else "struct"
    name = namer.names[t]
    lines = [f"typedef {kind} {name} {{"]
    for f in t._fields_:
        fname, ftype = f[0], f[1]
        if len(f) == 3:
            lines.append(f"    {namer.base(ftype)} {c_field_name(fname)} : {f[2]};")
        else:
            lines.append(f"    {namer.decl(ftype, c_field_name(fname))};")
    lines.append(f"}} {name};")
    lines.append(f'_Static_assert(sizeof({name}) == {ctypes.sizeof(t)}, "size of {name}");')
    for f in t._fields_:
        if len(f) == 3:
            continue
        off = getattr(t, f[0]).offset
        cname = c_field_name(f[0])
        lines.append(
            f'_Static_assert(offsetof({name}, {cname}) == {off}, "offset of {name}.{cname}");'
        )
    return "\n".join(lines)


def _c_int_literal(v: int) -> str:
    if v < 0:
        return f"({v}LL)"
    return f"{v}ULL" if v > 0x7FFFFFFF else str(v)


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prefixed(module: ModuleType, prefix: str) -> list[tuple[str, int]]:
    """Integer constants of the wrapper named PREFIX*, sorted by value then name."""
    rows = [
        (name, val)
        for name, val in vars(module).items()
        if name.startswith(prefix) and type(val) is int
    ]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def generate_header(info: WrapperInfo) -> str:
    mod = info.module
    namer = _TypeNamer()
    for fn in info.functions:
        for a in [fn.restype, *fn.argtypes]:
            namer.visit(a)
    out: list[str] = [
        f"/* GENERATED by agent/sim/gpu/gen_stubs.py from {info.path.name} "
        f"(amdsmi {info.version}). Do not edit. */",
        "#ifndef AMDSMI_SIM_GEN_H",
        "#define AMDSMI_SIM_GEN_H",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"#define SIM_AMDSMI_VERSION {_c_string(info.version)}",
        "",
        "/* Integer constants of the wrapper (enum values). */",
    ]
    for name in sorted(vars(mod)):
        val = vars(mod)[name]
        if name.startswith("AMDSMI_") and type(val) is int and name.isupper():
            out.append(f"#define {name} {_c_int_literal(val)}")
    out += ["", "#pragma pack(push, 1)"]
    for t in namer.order:
        out += [_struct_def(namer, t), ""]
    out += ["#pragma pack(pop)", "", "/* Prototypes of every bound symbol, from argtypes. */"]
    for fn in info.functions:
        args = ", ".join(namer.decl(a, f"a{i}") for i, a in enumerate(fn.argtypes)) or "void"
        out.append(f"{namer.base(fn.restype)} {fn.name}({args});")

    def table(cname: str, rows: list[tuple[str, int]]) -> None:
        out.append(f"static const sim_name_value_t {cname}[] = {{")
        out.extend(f"    {{{_c_string(n)}, {_c_int_literal(v)}}}," for n, v in rows)
        out.append("    {NULL, 0}")
        out.append("};")

    out += [
        "",
        "typedef struct { const char *name; uint64_t value; } sim_name_value_t;",
    ]
    table("sim_status_names", _prefixed(mod, "AMDSMI_STATUS_"))
    fw_rows = [(n, int(getattr(mod, n))) for n in info.valid_fw_names if hasattr(mod, n)]
    table("sim_fw_names", fw_rows)
    table("sim_cper_notify_names", _prefixed(mod, "AMDSMI_CPER_NOTIFY_TYPE_"))
    table(
        "sim_gpu_block_names",
        [
            (n, v)
            for n, v in _prefixed(mod, "AMDSMI_GPU_BLOCK_")
            if v and v & (v - 1) == 0 and v < (1 << 32)
        ],
    )
    table("sim_ras_state_names", _prefixed(mod, "AMDSMI_RAS_ERR_STATE_"))
    table(
        "sim_temp_type_names",
        [(n, v) for n, v in _prefixed(mod, "AMDSMI_TEMPERATURE_TYPE_") if v < 8],
    )
    table(
        "sim_temp_metric_names",
        [
            (n, v)
            for n, v in _prefixed(mod, "AMDSMI_TEMP_")
            if not n.startswith("AMDSMI_TEMPERATURE") and v <= 14
        ],
    )
    table("sim_form_factor_names", _prefixed(mod, "AMDSMI_CARD_FORM_FACTOR_"))
    table("sim_cper_sev_names", _prefixed(mod, "AMDSMI_CPER_SEV_"))
    table("sim_clk_type_names", _prefixed(mod, "AMDSMI_CLK_TYPE_"))
    table("sim_perf_level_names", _prefixed(mod, "AMDSMI_DEV_PERF_LEVEL_"))
    names = sorted(fn.name for fn in info.functions)
    out.append(f"#define SIM_NUM_SYMBOLS {len(names)}")
    out.append("static const char *const sim_symbol_names[SIM_NUM_SYMBOLS] = {")
    out.extend(f"    {_c_string(n)}," for n in names)
    out.append("};")
    out += ["", "#endif /* AMDSMI_SIM_GEN_H */", ""]
    return "\n".join(out)


def generate_stubs(info: WrapperInfo) -> str:
    """Weak NOT_SUPPORTED definitions for every bound symbol."""
    namer = _TypeNamer()
    out = [
        f"/* GENERATED by agent/sim/gpu/gen_stubs.py from {info.path.name} "
        f"(amdsmi {info.version}). Do not edit. */",
        f'#include "{HEADER_NAME}"',
        "",
        "/* Defined in libamd_smi.c: status injected for NAME (and the GPU behind HANDLE,",
        "   when it is one), else AMDSMI_STATUS_NOT_SUPPORTED. */",
        "uint32_t sim_stub_status(const char *name, const void *handle);",
        "",
    ]
    for fn in info.functions:
        namer.visit(fn.restype)
        for a in fn.argtypes:
            namer.visit(a)
        args = ", ".join(namer.decl(a, f"a{i}") for i, a in enumerate(fn.argtypes)) or "void"
        ret = namer.base(fn.restype)
        handle = "a0" if fn.argtypes and fn.argtypes[0] is ctypes.c_void_p else "NULL"
        unused = "".join(f" (void)a{i};" for i in range(len(fn.argtypes)))
        out.append(f"__attribute__((weak)) {ret} {fn.name}({args}) {{{unused}")
        if ret == "void":
            out.append("}")
        else:
            out.append(f"    return sim_stub_status({_c_string(fn.name)}, {handle});")
            out.append("}")
    out.append("")
    return "\n".join(out)


def write_generated(out_dir: Path, info: WrapperInfo | None = None) -> list[Path]:
    """Write the generated header and stubs into ``out_dir``; return their paths."""
    info = info or load_wrapper()
    out_dir.mkdir(parents=True, exist_ok=True)
    header = out_dir / HEADER_NAME
    stubs = out_dir / STUBS_NAME
    header.write_text(generate_header(info), encoding="utf-8")
    stubs.write_text(generate_stubs(info), encoding="utf-8")
    return [header, stubs]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m agent.sim.gpu.gen_stubs OUT_DIR", file=sys.stderr)
        return 2
    for p in write_generated(Path(args[0])):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
