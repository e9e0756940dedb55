"""Node side of the diagnostics (stdlib only): find AMD's tools, run one under a deadline.

A tool runs in its own session (process group); at its deadline the whole group gets
SIGTERM, then SIGKILL after a grace period, so nothing it started outlives the budget. The
output is kept (bounded) whatever happened: the controller parses it, and keeps what it
cannot parse as evidence. Commands are argument lists, never shell strings."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

MAX_OUTPUT = 4 * 1024 * 1024  # bytes of a tool's output read back
GRACE = 3.0  # seconds between SIGTERM and SIGKILL of a tool's group

# Where ROCm installs the tools (ROCm's install layout; RVS ships in /opt/rocm/bin, the
# rccl-tests binaries are built by the site, commonly under /opt/rccl-tests/build).
RVS_CANDIDATES = ("opt/rocm/bin/rvs", "opt/rocm/extras-7/bin/rvs", "usr/bin/rvs")
RCCL_CANDIDATES = (
    "opt/rccl-tests/build/all_reduce_perf",
    "opt/rocm/bin/all_reduce_perf",
    "usr/local/bin/all_reduce_perf",
)


def find_tool(root: str, candidates: tuple[str, ...], override: str | None = None) -> str | None:
    """The tool's path under the node root `root`, or None. `override`: a path the
    inventory gives (host variable), used as is when executable."""
    base = Path(root)
    paths = [override] if override else []
    paths += [str(base / c) for c in candidates]
    for p in paths:
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    if not override and root in ("", "/"):
        found = shutil.which(Path(candidates[0]).name)
        if found:
            return found
    return None


def run_tool(
    argv: list[str], deadline: float, env: dict[str, str] | None = None, cwd: str | None = None
) -> dict[str, object]:
    """Run `argv` for at most `deadline` seconds: {rc, seconds, timed_out, output}."""
    start = time.monotonic()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        p = subprocess.Popen(  # noqa: S603 - an argument list from tuner's own plan
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        return {"rc": None, "seconds": 0.0, "timed_out": False, "output": "", "missing": str(e)}
    timed_out = False
    try:
        out, _ = p.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(p)
        out, _ = p.communicate()
    text = (out or b"")[-MAX_OUTPUT:].decode("utf-8", "replace")
    return {
        "rc": p.returncode,
        "seconds": round(time.monotonic() - start, 3),
        "timed_out": timed_out,
        "output": text,
    }


def _kill_group(p: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            # the leader is gone; its group may not be: SIGKILL what is left
            if sig == signal.SIGTERM:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        except subprocess.TimeoutExpired:
            continue
