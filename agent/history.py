"""The run history `tuner status` shows: one JSON line per command that ran in a state
folder (`runs/history.jsonl`): when, what, its exit code, how long, and a summary.

Recorded by the CLI's `main` for every command that works on hosts or the simulated fleet
(not for help, `status`, `profiles` or `sim scenarios`, nor for bad input, exit 2: those
touched nothing), when the state folder exists. Writing the history never fails a command.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from agent.errors import BadInput

KEEP = 500  # lines kept when the file is trimmed
NOT_RECORDED = {"status", "profiles", "sim scenarios", "report"}  # read files, touch no host


def history_file(state: Path) -> Path:
    return state / "runs" / "history.jsonl"


def command_of(argv: list[str]) -> str:
    """The command's words: "apply", "sim up" (options and their values skipped)."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in ("sim", "profiles") else words[0]


def summarize(doc: Any) -> dict[str, Any]:
    """A few numbers from a command's JSON document (docs/json.md)."""
    if not isinstance(doc, dict):
        return {}
    if isinstance(doc.get("summary"), dict):
        s = doc["summary"]
        return {"hosts": s.get("hosts"), "by_status": s.get("by_status", {})}
    if isinstance(doc.get("hosts"), list) and all(
        isinstance(h, dict) and "status" in h for h in doc["hosts"]
    ):  # provision, agent: hosts with a status each, no summary block
        by: dict[str, int] = {}
        for h in doc["hosts"]:
            by[str(h["status"])] = by.get(str(h["status"]), 0) + 1
        return {"hosts": len(doc["hosts"]), "by_status": by}
    if isinstance(doc.get("gate"), dict):
        return {
            "gate": "passed" if doc["gate"].get("passed") else "failed",
            "usable_gpus": doc.get("usable_gpus"),
            "installed_gpus": doc.get("installed_gpus"),
        }
    if isinstance(doc.get("nodes"), list) and "failed" in doc:
        return {"nodes": len(doc["nodes"]), "failed": len(doc["failed"] or {})}
    if isinstance(doc.get("nodes"), list):
        return {"nodes": len(doc["nodes"]), "scenario": doc.get("scenario")}
    if "removed" in doc:
        return {"removed": doc["removed"]}
    if isinstance(doc.get("rebooted"), list):
        return {"rebooted": len(doc["rebooted"])}
    return {}


def record(state: Path, argv: list[str], rc: int, seconds: float, doc: Any) -> None:
    command = command_of(argv)
    skip = not command or command in NOT_RECORDED or command.split()[0] in NOT_RECORDED
    if skip or rc == 2 or "--help" in argv or not state.is_dir():
        return  # a state folder is made by the commands that need one, not for the history
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "args": argv,
        "exit_code": rc,
        "seconds": round(seconds, 2),
        "summary": summarize(doc),
    }
    f = history_file(state)
    with contextlib.suppress(OSError, BadInput):
        f.parent.mkdir(parents=True, exist_ok=True)
        _append(f, json.dumps(entry) + "\n")
        if f.stat().st_size > 2_000_000:
            from agent.loaders import load_history  # not at start-up: every command records
            from agent.paths import write_file

            entries, _ = load_history(f, KEEP)
            write_file(f, "".join(json.dumps(e) + "\n" for e in reversed(entries)))


def _append(f: Path, line: str) -> None:
    """Append to the history only if it is a regular file (or does not exist): a FIFO in its
    place must not block the command that just finished, a link must not be followed."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW
    fd = os.open(f, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def recent(state: Path, n: int) -> list[dict[str, Any]]:
    """The last `n` runs, newest first. Lines that are not entries (bad JSON, wrong types)
    are skipped; a FIFO or folder in the file's place is bad input (agent.loaders)."""
    return recent_and_skipped(state, n)[0]


def recent_and_skipped(state: Path, n: int) -> tuple[list[dict[str, Any]], int]:
    """recent(), and how many lines among those read were skipped (not entries)."""
    from agent.loaders import load_history

    return load_history(history_file(state), n)
