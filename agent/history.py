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
import time
from pathlib import Path
from typing import Any

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
    with contextlib.suppress(OSError):
        f.parent.mkdir(parents=True, exist_ok=True)
        with f.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        if f.stat().st_size > 2_000_000:
            lines = f.read_text(encoding="utf-8").splitlines()[-KEEP:]
            tmp = f.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(f)


def recent(state: Path, n: int) -> list[dict[str, Any]]:
    """The last `n` runs, newest first (lines that do not parse are skipped)."""
    f = history_file(state)
    try:
        lines = f.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for line in reversed(lines):
        if len(out) >= n:
            break
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out
