"""Host side of `tuner provision`: what a node has, and its runtime for tuner's node-side code.

Shipped to nodes as ``playbooks/module_utils/tuner_provision_node.py`` (a symlink) and run
by the node's own Python (the one that came with the OS): standard library only.

The runtime is a virtual environment (default ``/opt/tuner/venv``, under ``root``) made with
the node's ``python3 -m venv --without-pip`` (no ensurepip needed: Debian ships it apart) and
filled by the pip wheel of the wheelhouse the controller pushed, with ``--no-index``: the
node never asks an index. amdsmi comes from ROCm's own ``/opt/rocm/share/amd_smi`` (copied to
a temporary folder first: pip builds in the source tree, /opt/rocm stays untouched), else
from the wheelhouse's ``amdsmi`` wheel of the node's ROCm version. docs/provision.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

try:  # on a node, as Ansible module_utils
    from ansible.module_utils.tuner_knobs import (  # type: ignore[import-not-found,unused-ignore]
        TMP_MARK,
        Host,
        PathEscape,
        write_atomic,
    )
except ImportError:  # on the controller (tests)
    from agent.knobs import TMP_MARK, Host, PathEscape, write_atomic

VENV = "/opt/tuner/venv"
WHEELHOUSE = "/opt/tuner/wheelhouse"
MARKER = "tuner-runtime.json"  # in the venv: what provision installed (read by facts)
# pip reads no configuration file and no index: PIP_CONFIG_FILE=os.devnull is pip's own way
# to load none (pip docs, "Configuration"); the index URL points at a closed port so that
# even a pip that ignored --no-index could not reach the internet.
PIP_ENV = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/closed",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def under(root: str, path: str) -> str:
    """`path` on the node under `root`, resolved with no escape: a folder or link that leads
    out of the root (a symlinked /opt/tuner) is refused (agent/knobs.py `Host.path`)."""
    try:
        return Host(root).path(path)
    except PathEscape as e:
        raise ProvisionError(
            f"{path} leads out of the host root {root} (a link to outside it?): {e}; "
            "nothing was changed"
        ) from e


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _os_name(root: str) -> str:
    text = _read(under(root, "/etc/os-release")) or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return m.group(1) if m else "unknown"


def _kernel(root: str) -> str:
    if root not in ("", "/"):
        v = _read(under(root, "/proc/sys/kernel/osrelease"))
        if v:
            return v
    return platform.release()


def lib_version(path: str) -> str | None:
    """``amdsmi_get_lib_version`` of libamd_smi.so at ``path`` (ctypes only). amdsmi_init is
    tried first (GPUs only, read only) and shut down after; the version is read either way."""
    if not os.path.isfile(path):
        return None
    try:
        import ctypes

        class _V(ctypes.Structure):
            _pack_ = 1
            _fields_ = [
                ("major", ctypes.c_uint32),
                ("minor", ctypes.c_uint32),
                ("release", ctypes.c_uint32),
                ("pad", ctypes.c_uint32),
                ("build", ctypes.c_char_p),
            ]

        lib = ctypes.CDLL(path)
        lib.amdsmi_init.argtypes = [ctypes.c_uint64]
        inited = lib.amdsmi_init(ctypes.c_uint64(1 << 1)) == 0  # AMDSMI_INIT_AMD_GPUS
        v = _V()
        rc = lib.amdsmi_get_lib_version(ctypes.byref(v))
        if inited:
            lib.amdsmi_shut_down()
        return f"{v.major}.{v.minor}.{v.release}" if rc == 0 else None
    except Exception:
        return None


def share_version(share: str) -> str | None:
    """The version of ROCm's amdsmi package source: pyproject.toml, else amdsmi/_version.py."""
    for f, pat in (
        ("pyproject.toml", r'^version\s*=\s*"([^"]+)"'),
        ("amdsmi/_version.py", r"__version__\s*=\s*[\"']([^\"']+)"),
    ):
        m = re.search(pat, _read(os.path.join(share, f)) or "", re.M)
        if m:
            return m.group(1)
    return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(venv: str) -> dict[str, str]:
    """Distributions in the venv: normalized name -> version (from dist-info folder names)."""
    out: dict[str, str] = {}
    for sp in _site_packages(venv):
        for e in os.listdir(sp):
            m = re.match(r"^(.+?)-([^-]+)\.dist-info$", e)
            if m:
                out[_norm(m.group(1))] = m.group(2)
    return out


def _site_packages(venv: str) -> list[str]:
    lib = os.path.join(venv, "lib")
    try:
        return [
            os.path.join(lib, d, "site-packages")
            for d in sorted(os.listdir(lib))
            if d.startswith("python") and os.path.isdir(os.path.join(lib, d, "site-packages"))
        ]
    except OSError:
        return []


def _venv_python_version(venv: str) -> str | None:
    m = re.search(
        r"^version(?:_info)?\s*=\s*(\S+)", _read(os.path.join(venv, "pyvenv.cfg")) or "", re.M
    )
    return m.group(1) if m else None


def _privilege(became: bool) -> str:
    if os.geteuid() == 0:
        return "sudo" if became else "root"
    return "none"


def facts(root: str, venv: str = VENV, became: bool = False) -> dict[str, Any]:
    """What the node has: OS, kernel, ROCm, driver, amdsmi library and package, Python, the
    runtime, privilege. Read only."""
    for p in ("/opt/tuner", WHEELHOUSE, WHEELHOUSE + ".tar"):
        under(root, p)  # refused when it leads out of the root (provision writes there)
    rocm = under(root, "/opt/rocm")
    share = os.path.join(rocm, "share/amd_smi")
    v = under(root, venv)
    marker = _read(os.path.join(v, MARKER))
    try:
        runtime = json.loads(marker) if marker else None
    except ValueError:
        runtime = None
    pkgs = installed(v) if os.path.isdir(v) else {}
    libc = platform.libc_ver()
    return {
        "os": _os_name(root),
        "kernel": _kernel(root),
        "rocm_version": _read(os.path.join(rocm, ".info/version")),
        "amdgpu_loaded": os.path.isdir(under(root, "/sys/module/amdgpu")),
        "amdgpu_version": _read(under(root, "/sys/module/amdgpu/version")),
        "amdsmi_library": lib_version(os.path.join(rocm, "lib/libamd_smi.so")),
        "amdsmi_share": share_version(share) if os.path.isdir(share) else None,
        "amdsmi_package": pkgs.get("amdsmi"),
        "tuner_version": pkgs.get("tuner"),
        "python": platform.python_version(),
        "python_path": sys.executable,
        "machine": platform.machine(),
        "libc": f"{libc[0]} {libc[1]}".strip() or "unknown",
        "venv": venv,
        "venv_python": _venv_python_version(v) if os.path.isdir(v) else None,
        "packages": pkgs,
        "runtime": runtime,
        "privilege": _privilege(became),
    }


def _ver3(v: str | None) -> str | None:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v or "")
    return ".".join(m.groups()) if m else None


class ProvisionError(Exception):
    pass


def wheel_versions(wheelhouse: str) -> dict[str, list[str]]:
    """normalized name -> versions of the wheels in the wheelhouse."""
    out: dict[str, list[str]] = {}
    try:
        names = os.listdir(wheelhouse)
    except OSError:
        return out
    for e in names:
        if e.endswith(".whl"):
            parts = e[:-4].split("-")
            if len(parts) >= 5:
                out.setdefault(_norm(parts[0]), []).append(parts[1])
    return out


def amdsmi_source(f: dict[str, Any], wheels: dict[str, list[str]]) -> tuple[str, str]:
    """('share', version) or ('wheel', version): where this node's amdsmi comes from; a
    package of another version than the node's library (share) or ROCm (wheel) is refused
    naming both."""
    lib = f.get("amdsmi_library")
    if f.get("amdsmi_share"):
        pkg = str(f["amdsmi_share"])
        if lib and _ver3(pkg) != _ver3(lib):
            raise ProvisionError(
                f"amdsmi version mismatch: libamd_smi.so reports {lib} but ROCm's amdsmi "
                f"package in /opt/rocm/share/amd_smi is {pkg} (a ROCm upgrade half-way?); "
                "reinstall ROCm's amd-smi-lib so both are the same version"
            )
        return "share", pkg
    rocm = _ver3(f.get("rocm_version"))
    if not rocm:
        raise ProvisionError(
            "ROCm not found: no /opt/rocm/.info/version and no /opt/rocm/share/amd_smi; "
            "install ROCm (amd-smi-lib) first"
        )
    have = [v for v in wheels.get("amdsmi", []) if _ver3(v) == rocm]
    if not have:
        got = ", ".join(sorted(wheels.get("amdsmi", []))) or "none"
        raise ProvisionError(
            f"no /opt/rocm/share/amd_smi on this node and no amdsmi {rocm} wheel (the node's "
            f"ROCm version) in the wheelhouse (it has: {got})"
        )
    return "wheel", have[0]


def _req_name(r: str) -> str:
    return _norm(re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0])


def _newest(versions: list[str]) -> str:
    return max(versions, key=lambda v: [int(x) for x in re.findall(r"\d+", v)])


def pinned(requirements: list[str], wheels: dict[str, list[str]]) -> list[str]:
    """Each requirement pinned to the newest wheel of it in the wheelhouse (so an update
    really updates, and a second run finds nothing to do)."""
    return [
        f"{_req_name(r)}=={_newest(wheels[_req_name(r)])}" if _req_name(r) in wheels else r
        for r in requirements
    ]


def plan(
    root: str,
    venv: str,
    wheelhouse: str,
    requirements: list[str],
    f: dict[str, Any],
    tuner: dict[str, str] | None = None,
) -> tuple[list[str], tuple[str, str]]:
    """What apply would do: the steps (empty: nothing), and the amdsmi source."""
    v = under(root, venv)
    wheels = wheel_versions(under(root, wheelhouse))
    src = amdsmi_source(f, wheels)
    steps = []
    if not os.path.isfile(os.path.join(v, "bin/python")):
        steps.append(f"create {venv} with {sys.executable} -m venv")
    pkgs = f.get("packages") or {}
    for r in requirements:
        name = _req_name(r)
        if name not in pkgs:
            steps.append(f"install {r}")
        elif name in wheels and pkgs[name] != _newest(wheels[name]):
            steps.append(f"update {name} {pkgs[name]} -> {_newest(wheels[name])}")
    if f.get("amdsmi_package") != src[1]:
        was = f.get("amdsmi_package")
        steps.append(
            f"install amdsmi {src[1]} from "
            + ("/opt/rocm/share/amd_smi" if src[0] == "share" else "the wheelhouse")
            + (f" (was {was})" if was else "")
        )
    if tuner is not None:
        runtime = f.get("runtime") or {}
        if pkgs.get("tuner") is None or runtime.get("tuner_wheel") != tuner["sha256"]:
            was = pkgs.get("tuner")
            steps.append(
                f"install tuner {tuner['version']} ({venv}/bin/tuner; wheel sha256 "
                f"{tuner['sha256'][:12]})" + (f" (was {was})" if was else "")
            )
    return steps, src


def _pip(venv_py: str, wheelhouse: str, args: list[str]) -> None:
    pipwheel = sorted(
        e for e in os.listdir(wheelhouse) if e.startswith("pip-") and e.endswith(".whl")
    )
    if not pipwheel:
        raise ProvisionError("the wheelhouse has no pip wheel")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    env.update(PIP_ENV)
    cmd = [
        venv_py,
        os.path.join(wheelhouse, pipwheel[-1], "pip"),  # pip runs from its wheel
        "install",
        "--no-index",
        "--find-links",
        wheelhouse,
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "-q",
        *args,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        tail = " ".join((r.stderr or r.stdout).split())[-600:]
        raise ProvisionError(f"pip install {' '.join(args)} failed (rc {r.returncode}): {tail}")


WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+!-]+\.whl$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_expect(expect: Any) -> dict[str, Any]:
    """The controller's hashes ({tar: sha256, wheels: {name: sha256}}), validated."""
    wheels = expect.get("wheels") if isinstance(expect, dict) else None
    if (
        not isinstance(expect, dict)
        or not SHA256.fullmatch(str(expect.get("tar")))
        or not isinstance(wheels, dict)
        or not all(
            WHEEL_NAME.fullmatch(str(k)) and SHA256.fullmatch(str(v)) for k, v in wheels.items()
        )
    ):
        raise ProvisionError("the controller's wheel hashes are missing or malformed")
    return expect


def check_wheels(d: str, shown: str, wheels: dict[str, str]) -> None:
    """Every wheel in `d` is one the controller sent, byte for byte (the sha256 recorded
    when it was downloaded); none missing. Refused naming the file, before any install."""
    try:
        have = sorted(e for e in os.listdir(d) if e.endswith(".whl"))
    except OSError as e:
        raise ProvisionError(f"cannot read the wheelhouse {shown}: {e.strerror}") from e
    for name in have:
        if name not in wheels:
            raise ProvisionError(
                f"{shown}/{name} is not a wheel tuner sent (not in the wheelhouse's record): "
                "refused, nothing installed"
            )
        got = sha256_file(os.path.join(d, name))
        if got != wheels[name]:
            raise ProvisionError(
                f"{shown}/{name} changed since it was downloaded (sha256 {got[:16]}..., "
                f"recorded {wheels[name][:16]}...): refused, nothing installed"
            )
    missing = sorted(set(wheels) - set(have))
    if missing:
        raise ProvisionError(f"{shown} lacks {', '.join(missing[:3])}: refused, nothing installed")


TUNER_WHEEL = re.compile(r"^tuner-([^-]+)-py3-none-any\.whl$")


def check_tuner(tuner: Any, expect: dict[str, Any] | None) -> dict[str, str] | None:
    """The controller's word on tuner's own wheel ({wheel, sha256, version}), validated: a
    tuner wheel name, and the very wheel (same sha256) the wheelhouse's hashes list."""
    if tuner is None:
        return None
    wheel = str(tuner.get("wheel")) if isinstance(tuner, dict) else ""
    m = TUNER_WHEEL.fullmatch(wheel)
    sha = str(tuner.get("sha256")) if isinstance(tuner, dict) else ""
    if not m or not SHA256.fullmatch(sha) or m.group(1) != str(tuner.get("version")):
        raise ProvisionError("the controller's tuner wheel option is missing or malformed")
    if expect is None or expect["wheels"].get(wheel) != sha:
        raise ProvisionError(f"{wheel} is not among the wheelhouse's hashes: refused")
    return {"wheel": wheel, "sha256": sha, "version": m.group(1)}


def clean_partial(root: str, wheelhouse: str) -> list[str]:
    """Remove the half-made folders a killed or failed run left beside the wheelhouse."""
    d = under(root, wheelhouse).rstrip("/")
    parent, base = os.path.split(d)
    gone = []
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    for e in names:
        if e.startswith(f".{base}.") and e.endswith(TMP_MARK):
            p = os.path.join(parent, e)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(e)
    return gone


def unpack_wheelhouse(
    root: str, wheelhouse: str, check: bool, expect: dict[str, Any] | None = None
) -> list[str]:
    """The pushed ``WHEELHOUSE.tar`` (one file: one transfer) unpacked into ``wheelhouse``
    when it differs from what was unpacked last (its sha256 is kept beside the wheels); the
    folder is replaced whole (no stale wheels), only plain ``*.whl`` members are taken.

    `expect` (the controller's hashes): a tar that is not the one sent (truncated, changed)
    is refused and removed; every wheel is checked before the folder is put in place. The
    folder is built beside its place (an exclusive temp folder) and renamed at the end: a
    full disk or a bad tar leaves nothing half-made."""
    import tarfile

    d = under(root, wheelhouse).rstrip("/")
    tar = d + ".tar"
    if not os.path.isfile(tar):
        return []
    digest = sha256_file(tar)
    if expect is not None and digest != expect["tar"]:
        if check:  # --check sends nothing: an older push here is what a run replaces
            return [f"push and unpack the wheelhouse into {wheelhouse}"]
        os.unlink(tar)
        raise ProvisionError(
            f"the pushed {wheelhouse}.tar is not the one tuner sent (sha256 {digest[:16]}..., "
            f"sent {expect['tar'][:16]}...): truncated or changed on the way; it was "
            "removed, nothing was installed"
        )
    if _read(os.path.join(d, ".tar-sha256")) == digest:
        return []
    step = f"unpack the wheelhouse into {wheelhouse}"
    if check:
        return [step]
    parent, base = os.path.split(d)
    new = tempfile.mkdtemp(prefix=f".{base}.", suffix=TMP_MARK, dir=parent)
    old = None
    try:
        os.chmod(new, 0o755)
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                if not m.isfile() or not WHEEL_NAME.fullmatch(m.name):
                    continue  # no folders, links or paths: nothing lands outside the folder
                src = t.extractfile(m)
                if src is None:
                    continue
                fd = os.open(
                    os.path.join(new, m.name),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                    0o644,
                )
                with src, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out)
        if expect is not None:
            check_wheels(new, wheelhouse, expect["wheels"])
        write_atomic(os.path.join(new, ".tar-sha256"), digest + "\n")
        if os.path.isdir(d):
            old = tempfile.mkdtemp(prefix=f".{base}.", suffix=TMP_MARK, dir=parent)
            os.rename(d, os.path.join(old, base))
        os.rename(new, d)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old is not None and not os.path.exists(d):  # put the previous one back
            with contextlib.suppress(OSError):
                os.rename(os.path.join(old, base), d)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return [step]


def apply(
    root: str,
    venv: str,
    wheelhouse: str,
    requirements: list[str],
    check: bool,
    became: bool = False,
    expect: dict[str, Any] | None = None,
    tuner: dict[str, Any] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Make the runtime; return the steps done (or, ``check``, to do) and the facts after.

    `expect`: the controller's hashes of the pushed tar and of every wheel; each wheel is
    checked against them before anything is installed. A venv this run created is removed
    when the run fails (no half-made runtime); an existing one loses its marker until the
    run completes (facts then show it as not provisioned)."""
    own = check_tuner(tuner, expect)
    f = facts(root, venv, became)
    if not check:
        clean_partial(root, wheelhouse)
    unpacked = unpack_wheelhouse(root, wheelhouse, check, expect)
    steps, (kind, version) = plan(root, venv, wheelhouse, requirements, f, own)
    v = under(root, venv)
    wh = under(root, wheelhouse)
    if expect is not None and os.path.isdir(wh) and not check:
        check_wheels(wh, wheelhouse, expect["wheels"])
    if check or not steps:
        return unpacked + steps, f
    py = os.path.join(v, "bin/python")
    created = False
    if not os.path.isfile(py):
        os.makedirs(os.path.dirname(v), exist_ok=True)
        created = not os.path.exists(v)
        r = subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", v], capture_output=True, text=True
        )
        if r.returncode != 0:
            if created:
                shutil.rmtree(v, ignore_errors=True)
            raise ProvisionError(f"{sys.executable} -m venv failed: {r.stderr.strip()[-400:]}")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(v, MARKER))  # incomplete until the marker is back
        _pip(py, wh, ["setuptools", *pinned(requirements, wheel_versions(wh))])
        if kind == "share":
            with tempfile.TemporaryDirectory(prefix="tuner-amdsmi-") as tmp:
                src = os.path.join(tmp, "amd_smi")
                shutil.copytree(
                    under(root, "/opt/rocm/share/amd_smi"),
                    src,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
                )
                _pip(py, wh, ["--no-deps", "--no-build-isolation", "--force-reinstall", src])
        else:
            _pip(py, wh, ["--no-deps", "--force-reinstall", f"amdsmi=={version}"])
        if own is not None:  # tuner alone: its dependencies are the requirements above
            _pip(py, wh, ["--no-deps", "--force-reinstall", os.path.join(wh, own["wheel"])])
        after = facts(root, venv, became)
        if after.get("amdsmi_package") != version:
            raise ProvisionError(
                f"amdsmi {version} was installed but the venv holds {after.get('amdsmi_package')}"
            )
        if own is not None and (
            after.get("tuner_version") != own["version"]
            or not os.path.isfile(os.path.join(v, "bin/tuner"))
        ):
            raise ProvisionError(
                f"the tuner package {own['version']} was installed but the venv holds "
                f"{after.get('tuner_version')} (bin/tuner present: "
                f"{os.path.isfile(os.path.join(v, 'bin/tuner'))})"
            )
        marker = {
            "amdsmi": version,
            "amdsmi_from": kind,
            "amdsmi_library": f.get("amdsmi_library"),
            "rocm_version": f.get("rocm_version"),
            "python": f.get("python"),
            "tuner": own["version"] if own else None,
            "tuner_wheel": own["sha256"] if own else None,
        }
        write_atomic(os.path.join(v, MARKER), json.dumps(marker, indent=1))
    except BaseException as e:
        if created:  # a venv this run made: no half-made runtime stays behind
            shutil.rmtree(v, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, ProvisionError):
            raise ProvisionError(f"cannot make the runtime in {venv}: {e}") from e
        raise
    after["runtime"] = marker
    return unpacked + steps, after
