"""Where tuner's own files are: the shipped data (playbooks, profiles, checks) and state."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def share_dir(name: str) -> Path:
    """A data folder shipped with tuner: the source tree's, else the installed wheel's."""
    for base in (_PKG.parent, _PKG / "_share"):
        candidate = base / name
        if candidate.is_dir():
            return candidate
    return _PKG.parent / name


def playbooks_dir() -> Path:
    return share_dir("playbooks")


def profiles_dir() -> Path:
    env = os.environ.get("TUNER_PROFILES_DIR")
    return Path(env) if env else share_dir("profiles")


def state_dir(override: str | Path | None = None) -> Path:
    """tuner's state: --state-dir, else $TUNER_STATE_DIR, else $XDG_STATE_HOME/tuner."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("TUNER_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "tuner"


# Kernel and device file systems: never a place for tuner's state or output.
_PSEUDO = ("/proc", "/sys", "/dev")


def _pseudo(p: Path) -> bool:
    return any(p == Path(x) or Path(x) in p.parents for x in _PSEUDO)


def check_state_dir(override: str | Path | None = None) -> Path:
    """The state folder, made if missing, proven usable before any work: a folder (not a
    file), writable, not under /proc, /sys or /dev, its `runs` and `sim` folders too."""
    from agent.errors import BadInput

    field = "--state-dir" if override else "TUNER_STATE_DIR"
    try:
        d = state_dir(override)
    except (OSError, RuntimeError, ValueError) as e:
        raise BadInput(f"not a usable path: {e}", field=field) from e
    if _pseudo(d):
        raise BadInput(f"{d} is in a kernel file system: not a state folder", field=field)
    if d.exists() and not d.is_dir():
        raise BadInput(f"{d} is a file, not a folder", field=field)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise BadInput(f"cannot create the state folder {d}: {e.strerror}", field=field) from e
    if not os.access(d, os.W_OK | os.X_OK):
        raise BadInput(f"the state folder {d} is not writable", field=field)
    for sub in ("runs", "runs/artifacts", "sim"):
        p = d / sub
        if p.is_symlink() or (p.exists() and not p.is_dir()):
            raise BadInput(f"{p} must be a folder (move it away)", field=field)
        if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
            raise BadInput(f"{p} is not writable", field=field)
    return d


def check_output_path(path: str, field: str = "--output") -> Path:
    """An output file tuner will write at the end: proven writable before the work."""
    from agent.errors import BadInput

    if not path or "\x00" in path:
        raise BadInput("is empty", field=field)
    p = Path(path).expanduser()
    try:
        p = p.parent.resolve() / p.name
    except (OSError, RuntimeError) as e:
        raise BadInput(f"{path}: not a usable path: {e}", field=field) from e
    if _pseudo(p):
        raise BadInput(f"{p} is in a kernel file system", field=field)
    if p.is_dir():
        raise BadInput(f"{p} is a folder: name a file", field=field)
    if p.exists() and not os.access(p, os.W_OK):
        raise BadInput(f"{p} is not writable", field=field)
    base = p.parent  # the folder to write in, or the nearest existing folder above it
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise BadInput(f"{base} is a file, not a folder", field=field)
    if not os.access(base, os.W_OK | os.X_OK):
        raise BadInput(
            f"{base} is not writable (the file is written beside its final place first)",
            field=field,
        )
    return p


def write_file(path: str | Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write an output or state file the one way tuner writes files: an exclusive temp file
    with an unpredictable name beside it (never following a link), fsync, rename
    (`agent.knobs.write_atomic`, which the node side uses too). Makes missing folders."""
    from agent.knobs import write_atomic

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(p), data, mode)


def control_path_dir(state: Path | None = None) -> Path:
    """Where the SSH connection masters tuner's Ansible runs keep (ControlPersist) have their
    sockets: one folder per state folder, so `tuner sim down` can end them. A socket path
    must fit in 107 bytes; Ansible adds 11 (/ and a 10-character hash) and ssh 17 more while
    it makes the socket (".XXXXXXXXXXXXXXXX"): a state path too long for that uses
    ~/.ansible/tuner-cp/HASH instead.
    """
    s = state or state_dir()
    d = s / "cp"
    if len(str(d)) + 11 + 17 <= 100:
        return d
    return Path.home() / ".ansible" / "tuner-cp" / hashlib.sha1(str(s).encode()).hexdigest()[:12]


def pid_alive(pid: int) -> bool:
    """Is process `pid` running (ours or another user's)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
