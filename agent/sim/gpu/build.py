"""Build the simulated ``libamd_smi.so`` with the system C compiler.

``build_library(out_dir)`` generates the header and NOT_SUPPORTED stubs from the installed
amdsmi wrapper (:mod:`agent.sim.gpu.gen_stubs`), then compiles them together with the
hand-written ``libamd_smi.c``::

    cc -shared -fPIC -O2 -o OUT_DIR/libamd_smi.so libamd_smi.c amdsmi_sim_stubs.c -ldl

The result is cached: when a hash of the sources, the wrapper and the amdsmi version matches
the stamp left by the previous build, nothing is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from agent.sim.gpu import gen_stubs

LIB_NAME = "libamd_smi.so"
STAMP_NAME = "libamd_smi.so.stamp"
SOURCE_DIR = Path(__file__).resolve().parent
C_SOURCES = ("libamd_smi.c",)
HASHED_SOURCES = ("libamd_smi.c", "gen_stubs.py", "build.py")
CFLAGS = ("-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter")


class BuildError(RuntimeError):
    """The simulated library could not be built (no C compiler, or compilation failed)."""


def find_compiler(cc: str | None = None) -> str:
    """Path of the C compiler: ``cc`` if given, else ``$CC``, else cc, gcc or clang on PATH."""
    candidates = [cc] if cc else [c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c]
    for cand in candidates:
        found = shutil.which(cand)
        if found:
            return found
    tried = ", ".join(candidates)
    raise BuildError(
        f"no C compiler found (tried {tried}); install one (e.g. `apt-get install gcc`) "
        "or pass cc= / set $CC"
    )


def source_hash(cc: str, wrapper: Path, version: str) -> str:
    """Hash of everything the built library depends on."""
    h = hashlib.sha256()
    for name in sorted(HASHED_SOURCES):
        h.update(name.encode())
        h.update((SOURCE_DIR / name).read_bytes())
    for extra in sorted(SOURCE_DIR.glob("*.h")):
        h.update(extra.name.encode())
        h.update(extra.read_bytes())
    h.update(wrapper.read_bytes())
    h.update(f"amdsmi={version}\ncc={cc}\nflags={' '.join(CFLAGS)}".encode())
    return h.hexdigest()


def build_library(out_dir: Path, cc: str | None = None, hidden: tuple[str, ...] = ()) -> Path:
    """Build (or reuse) ``out_dir/libamd_smi.so`` and return its path.

    ``hidden``: C symbols the library does not export, as in a libamd_smi.so older than the
    installed amdsmi package (a ROCm upgrade half-way): ``import amdsmi`` then fails with
    AttributeError naming the first missing one, as it does with ROCm's own library.

    Raises :class:`BuildError` when no C compiler is found or compilation fails.
    """
    out_dir = Path(out_dir)
    compiler = find_compiler(cc)
    wrapper = gen_stubs.amdsmi_package_dir() / "amdsmi_wrapper.py"
    version = gen_stubs.amdsmi_version()
    digest = source_hash(compiler, wrapper, version) + (
        "-hidden:" + ",".join(sorted(hidden)) if hidden else ""
    )
    lib = out_dir / LIB_NAME
    stamp = out_dir / STAMP_NAME
    if lib.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return lib

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuner-sim-gpu-", dir=out_dir) as tmp:
        gen_dir = Path(tmp)
        try:
            header, stubs = gen_stubs.write_generated(gen_dir, gen_stubs.load_wrapper(wrapper))
        except gen_stubs.WrapperError as exc:
            raise BuildError(f"cannot generate stubs: {exc}") from exc
        tmp_lib = gen_dir / LIB_NAME
        extra = []
        if hidden:  # a version script that keeps these symbols local (not exported)
            script = gen_dir / "hidden.map"
            script.write_text("{ local: " + "; ".join(hidden) + "; };\n")
            extra = [f"-Wl,--version-script={script}"]
        cmd = [
            compiler,
            *CFLAGS,
            *extra,
            f"-I{gen_dir}",
            f"-I{SOURCE_DIR}",
            "-o",
            str(tmp_lib),
            *(str(SOURCE_DIR / s) for s in C_SOURCES),
            str(stubs),
            "-ldl",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(
                f"compiling {LIB_NAME} failed (exit {proc.returncode}):\n"
                f"{' '.join(cmd)}\n{proc.stderr.strip()}"
            )
        os.replace(tmp_lib, lib)  # atomic: a concurrent loader sees old or new, never half
    stamp.write_text(digest + "\n")
    return lib
