"""What a simulated node has of ROCm beside libamd_smi.so: its version file, the amdgpu
driver's version, and the amdsmi Python package ROCm ships under /opt/rocm/share/amd_smi.

Sources (docs/sim-node-runtime.md): ROCm's amdsmi CMake installs its Python package as a
source tree (``pyproject.toml`` from ``py-interface/pyproject.toml.in`` whose version is
``@amd_smi_libraries_VERSION_STRING@``, the library's own version, beside the ``amdsmi/``
folder) under ``share/amd_smi``; ROCm's install guide has users ``pip install`` that folder.
The package files here are the real amdsmi package installed in the controller's virtual
environment (the one the simulated library is generated against, agent/sim/gpu/gen_stubs.py),
copied as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROCM_VERSION = "7.0.2"  # the default ROCm of a simulated node (= the simulated library's)
SHARE_RELPATH = "opt/rocm/share/amd_smi"
VERSION_RELPATH = "opt/rocm/.info/version"
DRIVER_RELPATH = "sys/module/amdgpu/version"

PYPROJECT = """\
# Written by tuner's simulator after ROCm's py-interface/pyproject.toml.in (ROCm/amdsmi):
# version = the library's version string, one package folder, setuptools build.
[build-system]
requires = ["setuptools>=59.0"]
build-backend = "setuptools.build_meta"

[project]
name = "amdsmi"
version = "{version}"
description = "AMDSMI Python LIB - AMD GPU Monitoring Library"
requires-python = ">=3.6"

[tool.setuptools]
packages = ["amdsmi"]
"""


def package_source() -> tuple[Path, str]:
    """The controller's amdsmi package folder and its version (from its _version.py)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("amdsmi")
    if spec is None or not spec.origin:
        raise RuntimeError("the amdsmi package is not installed in the controller's Python")
    folder = Path(spec.origin).parent
    m = re.search(r"__version__\s*=\s*[\"']([^\"']+)", (folder / "_version.py").read_text())
    return folder, (m.group(1) if m else "0.0.0")


def install_rocm(
    root: Path,
    rocm_version: str,
    driver_version: str,
    share: bool = True,
    package_version: str | None = None,
) -> None:
    """Write the node's ROCm version file, amdgpu version, and (``share``) the amdsmi
    package source under share/amd_smi. ``package_version`` (default: the copied package's
    own) is what pyproject.toml and _version.py say; a different value than the library's
    makes the "ROCm upgraded half-way" node."""
    src, own = package_source()
    ver = package_version or own
    f = root / VERSION_RELPATH
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(rocm_version + "\n")
    d = root / DRIVER_RELPATH
    d.parent.mkdir(parents=True, exist_ok=True)
    d.write_text(driver_version + "\n")
    if not share:
        return
    dest = root / SHARE_RELPATH
    if dest.exists():
        shutil.rmtree(dest)
    pkg = dest / "amdsmi"
    pkg.mkdir(parents=True)
    for p in sorted(src.glob("*.py")):
        if p.name == "setup.py":  # a build leftover of the PyPI wheel, not ROCm's layout
            continue
        shutil.copyfile(p, pkg / p.name)
    (pkg / "_version.py").write_text(f'__version__ = "{ver}"\n')
    (dest / "pyproject.toml").write_text(PYPROJECT.format(version=ver))
