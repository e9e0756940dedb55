"""The gate inside Slurm (`tuner check --local --slurm`): Slurm's HealthCheckProgram (or a
Prolog) runs it on each node.

1. The level-1 check (`tuner check --local --json`, agent/gpu_local.py) runs in a child
   process of its own session under a watchdog: past `timeout` seconds the whole process
   group is killed and the node counts as failed (fail closed). Slurm kills a
   HealthCheckProgram after 60 s (slurm.conf(5)), so the default leaves room for scontrol.
2. The node's state and drain reason are read from the controller (`scontrol show node -o`,
   `sinfo -N -o %E`).
3. A node that failed is drained with a reason that starts with ``tuner:``; a node that
   passed is resumed only when its drain reason starts with ``tuner:``. A drain an
   administrator set (any other reason) is never touched, whatever the verdict.

scontrol is called with argument lists (no shell); the reason is printable ASCII, cut to
`MAX_REASON` characters. The node name is `--node`, else Slurm's SLURMD_NODENAME, else the
short host name; it must look like a Slurm node name."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Literal

from pydantic import BaseModel

from agent.errors import BadInput, TunerError

PREFIX = "tuner:"
MAX_REASON = 200
DEFAULT_TIMEOUT = 40.0  # Slurm kills a HealthCheckProgram at 60 s
SCONTROL_TIMEOUT = 5.0
# slurmd starts a HealthCheckProgram with almost no environment (the lab saw only
# SLURMD_NODENAME and PWD: no PATH): Slurm's tools are looked up here then.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

Action = Literal["drained", "reason updated", "resumed", "none", "left to the administrator"]


class NodeState(BaseModel):
    state: str  # scontrol's State=, e.g. IDLE+DRAIN
    drain: bool
    reason: str | None  # None: no reason set

    @property
    def tuner_drain(self) -> bool:
        return self.drain and (self.reason or "").startswith(PREFIX)


class HealthResult(BaseModel):
    node: str
    passed: bool
    why: str
    seconds: float
    before: NodeState
    action: Action
    reason: str | None = None  # the drain reason tuner set
    check: dict[str, Any] | None = None  # the check's own JSON (absent when it hung/crashed)


def node_name(explicit: str | None) -> str:
    name = explicit or os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    if not NAME.match(name):
        raise BadInput(
            f"{name!r} is not a Slurm node name (letters, digits, '.', '_', '-')", field="--node"
        )
    return name


def reason_text(why: str) -> str:
    """`tuner: why` as one line of printable ASCII, at most MAX_REASON characters."""
    clean = re.sub(r"[^\x20-\x7e]+", " ", why)
    clean = re.sub(r"\s+", " ", clean).strip()
    text = f"{PREFIX} {clean}" if clean else f"{PREFIX} gate failed"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _slurm(args: list[str], env: dict[str, str] | None) -> str:
    env = env if env is not None else dict(os.environ)
    tool = shutil.which(args[0], path=env.get("PATH") or DEFAULT_PATH)
    if tool is None:
        raise TunerError(f"{args[0]} not found: is Slurm installed on this node?")
    try:
        p = subprocess.run(
            [tool, *args[1:]],
            capture_output=True,
            text=True,
            env=env,
            timeout=SCONTROL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as e:
        raise TunerError(f"{args[0]} not found: is Slurm installed on this node?") from e
    except subprocess.TimeoutExpired as e:
        raise TunerError(f"{args[0]} did not answer within {SCONTROL_TIMEOUT:.0f} s") from e
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise TunerError(f"{' '.join(args[:3])}: {msg[-1] if msg else f'exit {p.returncode}'}")
    return p.stdout


def parse_state(scontrol_line: str, sinfo_reason: str) -> NodeState:
    """`scontrol show node -o NAME`'s State= and `sinfo -h -N -o %E`'s reason ("none")."""
    m = re.search(r"(?:^|\s)State=(\S+)", scontrol_line)
    if not m:
        raise TunerError("scontrol show node: no State= in its answer")
    state = m.group(1)
    flags = {f.rstrip("*~#!%$@^-") for f in state.upper().split("+")}
    lines = [ln for ln in sinfo_reason.splitlines() if ln.strip()]
    reason = lines[0].strip() if lines else None
    if reason in (None, "none", "(null)"):
        reason = None
    drain = bool(flags & {"DRAIN", "DRAINED", "DRAINING"})
    return NodeState(state=state, drain=drain, reason=reason)


def read_state(name: str, env: dict[str, str] | None = None) -> NodeState:
    line = _slurm(["scontrol", "show", "node", "-o", name], env)
    why = _slurm(["sinfo", "-h", "-N", "-n", name, "-o", "%E"], env)
    return parse_state(line, why)


def drain(name: str, reason: str, env: dict[str, str] | None = None) -> None:
    _slurm(["scontrol", "update", f"NodeName={name}", "State=DRAIN", f"Reason={reason}"], env)


def resume(name: str, env: dict[str, str] | None = None) -> None:
    _slurm(["scontrol", "update", f"NodeName={name}", "State=RESUME"], env)


def run_check(argv: list[str], timeout: float) -> tuple[bool, str, dict[str, Any] | None]:
    """Run `tuner check --local --json ...` in its own session; kill its group past
    `timeout`. -> (passed, why, its JSON). Anything but a clean verdict fails."""
    # -P: the check imports tuner from this Python's own packages only, never from an
    # `agent` folder in the working directory slurmd happens to start it in
    cmd = [sys.executable, "-P", "-m", "agent.cli", "check", "--local", "--json", *argv]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )

    def kill_group() -> None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # the child has a session of its own, so slurmd's kill of this program's process group
    # would miss it: a TERM or INT to this program kills the child's group first
    def on_signal(signum: int, frame: Any) -> None:
        kill_group()
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group()
        p.communicate()
        return False, f"the check did not finish within {timeout:g} s (killed)", None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    try:
        doc = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        doc = None
    if p.returncode in (0, 1) and isinstance(doc, dict) and "gate" in doc:
        from agent.gpu.gate import GpuInventory
        from agent.gpu_local import node_verdict

        data = dict(doc)
        data["schema_"] = data.pop("schema", None)
        try:
            inv = GpuInventory.model_validate(data)
        except ValueError:
            return False, "the check's answer could not be read", doc
        passed, why = node_verdict(inv)
        return passed, why, doc
    if isinstance(doc, dict) and doc.get("error"):
        return False, f"check error: {doc['error']}", doc
    last = (err or "").strip().splitlines()
    return False, f"check exited {p.returncode}" + (f": {last[-1]}" if last else ""), doc


def health(
    name: str,
    check_argv: list[str],
    timeout: float = DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
) -> HealthResult:
    """Check this node, then drain it (tuner's reason), resume it (tuner's drain only) or
    leave it. Raises TunerError when Slurm cannot be read or changed."""
    t0 = time.monotonic()
    passed, why, doc = run_check(check_argv, timeout)
    before = read_state(name, env)
    action: Action = "none"
    reason = None
    if before.drain and not before.tuner_drain:
        action = "left to the administrator"
    elif passed:
        if before.tuner_drain:
            resume(name, env)
            action = "resumed"
    else:
        reason = reason_text(why)
        if not before.drain:
            drain(name, reason, env)
            action = "drained"
        elif before.reason != reason:
            drain(name, reason, env)
            action = "reason updated"
    return HealthResult(
        node=name,
        passed=passed,
        why=why,
        seconds=round(time.monotonic() - t0, 3),
        before=before,
        action=action,
        reason=reason,
        check=doc,
    )


def describe(r: HealthResult) -> str:
    verdict = "passed" if r.passed else "FAILED"
    before = f"{r.before.state}" + (f" ({r.before.reason})" if r.before.reason else "")
    line = f"{r.node}: gate {verdict}: {r.why}. Slurm: {before} -> {r.action}"
    if r.action == "left to the administrator":
        line += " (its drain reason does not start with 'tuner:')"
    return line
