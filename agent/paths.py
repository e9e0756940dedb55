"""Where tuner's own files are: the shipped data (playbooks, profiles, checks) and state."""

from __future__ import annotations

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
