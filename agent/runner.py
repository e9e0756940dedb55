"""Running tuner's playbooks through ansible-runner, tuned the way the field scales Ansible.

One call runs one playbook over the selected hosts and returns, per host, the module's
result (or why there is none: failed, unreachable). The Ansible settings that make a fleet
run fast live here (forks = hosts up to a cap, SSH pipelining, persistent connections);
the playbooks themselves are plain and run the same under `ansible-playbook`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent import executors
from agent.errors import Failed
from agent.hostkeys import HOST_KEYS_ENV, host_key_reason, host_keys_checked, ssh_args
from agent.inventory import Inventory
from agent.paths import control_path_dir, pid_alive, playbooks_dir, state_dir

__all__ = ["HOST_KEYS_ENV", "host_key_reason", "host_keys_checked", "ssh_args"]  # hostkeys.py

MAX_FORKS = 64
KEEP_ARTIFACTS = 40  # run folders kept under runs/artifacts (older ones are removed)


# The environment handed to Ansible: these names from the operator's environment, plus
# tuner's own ANSIBLE_* settings. Everything else (cloud keys, TUNER_BMC_PASSWORD...) is
# left out: ansible-runner writes the environment into every run's artifacts.
ENV_ALLOW = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "VIRTUAL_ENV",
    "ANSIBLE_CONFIG",
    "ANSIBLE_VAULT_PASSWORD_FILE",
    "ANSIBLE_VAULT_IDENTITY_LIST",
    "ANSIBLE_REMOTE_USER",
    "ANSIBLE_PRIVATE_KEY_FILE",
    "ANSIBLE_BECOME_METHOD",
    "ANSIBLE_BECOME_USER",
    "ANSIBLE_COLLECTIONS_PATH",
    "ANSIBLE_LOCAL_TEMP",
    "ANSIBLE_REMOTE_TEMP",
    "ANSIBLE_SSH_CONTROL_PATH_DIR",
)
ENV_ALLOW_PREFIX = ("LC_",)
_seq = itertools.count(1)
_warned: list[bool] = []


class HostOutcome(BaseModel):
    host: str
    status: str  # ok | failed | unreachable | no result
    message: str = ""
    results: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}  # what the module reports of the host (verify: topology)


class RunSecurity(BaseModel):
    """What a run relaxed, recorded in its report (docs/security.md)."""

    bmc_tls_verified: bool = True  # False with --insecure
    ssh_host_keys_verified: bool = True  # False with TUNER_SSH_HOST_KEY_CHECKING=no


def run_security(insecure: bool = False) -> RunSecurity:
    return RunSecurity(bmc_tls_verified=not insecure, ssh_host_keys_verified=host_keys_checked())


ProgressFn = Callable[[str, str], None]  # (host, status) when a host finishes


class Progress:
    """What a run tells as it goes (the CLI shows it: agent/cli/progress.py).

    Called as a ProgressFn when a host finishes; `phase` when a step of the run starts
    (`BIOS batch 1/4: apply`, with the number of host results it will give); `state` when a
    host moves on within a step (`started`; the BIOS module's `PATCH`, `reset`,
    `waiting for POST`, `verify`). This base shows nothing."""

    def __call__(self, host: str, status: str) -> None:
        """`host` finished with `status`."""

    def phase(self, text: str, steps: int = 0) -> None:
        """A step of the run starts; `steps`: host results it will give."""

    def state(self, host: str, text: str) -> None:
        """`host` is now doing `text` (not finished)."""


def _stage_file(stage_dir: Path, host: str) -> Path:
    """Where the BIOS module writes a host's current stage (no host name in the path)."""
    return stage_dir / hashlib.sha256(host.encode()).hexdigest()[:24]


@contextlib.contextmanager
def _watch_stages(stage_dir: Path | None, names: list[str], progress: Any) -> Iterator[None]:
    """Poll the stage files a module writes (playbooks/library/tuner_bios.py `_say`) and
    tell `progress.state` each change, while the playbook runs."""
    state = getattr(progress, "state", None)
    if stage_dir is None or state is None:
        yield
        return
    import threading

    files = {n: _stage_file(stage_dir, n) for n in names}
    seen: dict[str, str] = {}
    stop = threading.Event()

    def poll() -> None:
        while True:
            for n, f in files.items():
                try:
                    text = f.read_text()[:80].strip()
                except OSError:
                    continue
                if text and seen.get(n) != text:
                    seen[n] = text
                    state(n, text)
            if stop.wait(0.3):
                return

    t = threading.Thread(target=poll, name="tuner-stages", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(2)


def tuned_envvars(forks: int, check_keys: bool = True) -> dict[str, str]:
    """The Ansible configuration of tuner's fast path (see docs/performance.md), with
    SSH host keys verified and only the inventory plugins that do not run code."""
    env = {
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args(check_keys),
        # ansible-runner sets False when this is unset (and Ansible then adds
        # StrictHostKeyChecking=no to every ssh command): set it explicitly.
        "ANSIBLE_HOST_KEY_CHECKING": str(check_keys),
        # per state folder, so `tuner sim down` can end the masters (agent/sim/fleet.py);
        # an operator's ANSIBLE_SSH_CONTROL_PATH_DIR wins
        "ANSIBLE_SSH_CONTROL_PATH_DIR": os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR")
        or str(control_path_dir()),
        "ANSIBLE_TIMEOUT": "20",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
    }
    from agent.inventory import inventory_env

    env.update(inventory_env())
    if not check_keys:
        # Connections made without checks are not reused by a checked run (ControlPersist).
        base = os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR") or "~/.ansible/cp"
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = base.rstrip("/") + "-unchecked"
    return env


def scrubbed_env(env: Mapping[str, str], tuner_set: dict[str, str]) -> dict[str, str]:
    """The environment Ansible gets: the allow-list and tuner's settings (`run_local` adds
    its event callback's)."""
    keep = {k: v for k, v in env.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIX)}
    keep.update(tuner_set)
    return keep


def new_ident(playbook: str) -> str:
    """A run folder name no other run uses: time, process, a counter within the process."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid()}-{next(_seq)}-{playbook.split('.')[0]}"


def rotate_artifacts(runs: Path, keep: int = KEEP_ARTIFACTS) -> None:
    """Keep the newest `keep` run folders. Runs sharing a state folder take turns (a lock),
    and a folder whose run is still going (its process alive) is never removed."""
    art = runs / "artifacts"
    if not art.is_dir():
        return
    # the lock file is never followed through a link (O_NOFOLLOW)
    fd = os.open(runs / ".rotate.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "r+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            dirs = []
            for d in art.iterdir():
                with contextlib.suppress(OSError):
                    dirs.append((d.stat().st_mtime, d))
            dirs.sort()
            for _, d in dirs[: max(0, len(dirs) - keep)]:
                m = re.match(r"^\d{8}T\d{6}-(\d+)-", d.name)
                if m and pid_alive(int(m.group(1))):
                    continue
                shutil.rmtree(d, ignore_errors=True)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def run_playbook(
    playbook: str,
    inv: Inventory,
    extravars: dict[str, Any],
    *,
    check: bool = False,
    forks: int | None = None,
    progress: ProgressFn | None = None,
    module: str,
    stage_dir: Path | None = None,
    skip_tags: str | None = None,
) -> tuple[dict[str, HostOutcome], str]:
    """Run `playbooks/<playbook>` on the inventory's selected hosts.

    `progress`: told each host's result as it comes (and, if it is a `Progress`, each host's
    start and the stages a module writes under `stage_dir`).
    Returns the outcome per host and the run's artifact folder (the audit trail)."""
    names = [h.name for h in inv.hosts]
    forks = max(1, min(forks or len(names), MAX_FORKS))
    runs = state_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # ansible-runner records the process environment in each run's artifacts: keep them
    # readable by this user only.
    runs.chmod(0o700)
    ident = new_ident(playbook)
    check_keys = host_keys_checked()
    if not check_keys and not _warned:
        _warned.append(True)
        sys.stderr.write(
            f"warning: {HOST_KEYS_ENV}=no: SSH host keys are NOT verified; a host that is not "
            "the one in known_hosts gets root commands and secrets\n"
        )
    outcomes: dict[str, HostOutcome] = {}
    told: set[str] = set()  # hosts whose stage a task before the module set

    def on_event(ev: dict[str, Any]) -> bool:
        kind = ev.get("event", "")
        data = ev.get("event_data") or {}
        if kind not in (
            "runner_on_start",
            "runner_on_ok",
            "runner_on_failed",
            "runner_on_unreachable",
        ):
            return True
        host = data.get("host", "")
        if kind == "runner_on_start":
            state = getattr(progress, "state", None)
            if state is not None and host not in told:
                state(host, "started")
            return True
        res = data.get("res") or {}
        if data.get("task_action", module) not in (module, f"ansible.legacy.{module}"):
            if kind == "runner_on_ok" and isinstance(res.get("tuner_stage"), str):
                # a task before the module says what the host waits for (tuner_lock)
                state = getattr(progress, "state", None)
                if state is not None:
                    state(host, res["tuner_stage"][:300])
                    told.add(host)  # the module's start does not hide it
            # another task of the play failed the host (provision's wheelhouse copy): keep
            # its reason, unless the module's own result comes (it wins)
            if kind != "runner_on_ok" and not data.get("ignore_errors") and host not in outcomes:
                st = "unreachable" if kind == "runner_on_unreachable" else "failed"
                task = data.get("task", "")
                outcomes[host] = HostOutcome(host=host, status=st, message=f"{task}: {_msg(res)}")
                if progress:
                    progress(host, st)
            return True
        if kind == "runner_on_ok":
            o = HostOutcome(
                host=host, status="ok", results=res.get("results", []), facts=res.get("facts") or {}
            )
        elif kind == "runner_on_failed":
            o = HostOutcome(
                host=host,
                status="failed",
                message=_msg(res),
                results=res.get("results", []),
                facts=res.get("facts") or {},
            )
        else:
            o = HostOutcome(host=host, status="unreachable", message=_msg(res))
        outcomes[host] = o
        if progress:
            progress(host, o.status)
        return True

    env = tuned_envvars(forks, check_keys)
    # ansible-runner starts `ansible-playbook` from PATH: use the one beside this Python.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    execs = (
        (executors.active() or executors.from_inventory(inv))
        if executors.shardable(playbook)
        else ()
    )
    try:
        rotate_artifacts(runs)
        if execs:  # execution nodes (agent/executors.py): one shard per executor

            def lost(host: str, why: str) -> None:
                if host in outcomes:  # its result came before the executor was lost
                    return
                outcomes[host] = HostOutcome(host=host, status="failed", message=why)
                if progress:
                    progress(host, "failed")

            r: Any = executors.run_shards(
                playbook=playbook,
                inv=inv,
                runs=runs,
                ident=ident,
                extravars=extravars,
                envvars=env,
                check=check,
                forks=forks,
                on_event=on_event,
                lost=lost,
                execs=execs,
                skip_tags=skip_tags,
            )
            return _filled(names, outcomes, r), str(runs / "artifacts" / ident)
        cmd = ["ansible-playbook", "-i", inv.path, "--limit", ",".join(names)]
        cmd += ["-e", json.dumps(extravars), "--forks", str(forks)]
        if check:
            cmd.append("--check")
        if skip_tags:
            cmd += ["--skip-tags", skip_tags]
        cmd.append(str(playbooks_dir() / playbook))
        with _watch_stages(stage_dir, names, progress):
            r = run_local(cmd, scrubbed_env(os.environ, env), runs, ident, on_event)
    except Exception as e:  # no ansible-playbook on PATH, the run folder not writable...
        raise Failed(f"could not run Ansible: {e}") from e
    return _filled(names, outcomes, r), str(runs / "artifacts" / ident)


CALLBACK_DIR = Path(__file__).resolve().parent / "ansible_plugins" / "callback"


class LocalRun(BaseModel):
    """How a playbook run on the controller ended (the fields `_filled` names)."""

    status: str  # successful | failed | canceled
    rc: int
    error: str = ""  # Ansible's own last error line, when it failed before any host result


def run_local(
    cmd: list[str],
    env: dict[str, str],
    runs: Path,
    ident: str,
    on_event: Callable[[dict[str, Any]], Any],
) -> LocalRun:
    """Run `ansible-playbook` with tuner's event callback (agent/ansible_plugins/callback/
    tuner_events.py) and hand each event to `on_event` as it comes.

    The run's folder `runs/artifacts/<ident>/` holds what ansible-runner's artifacts held:
    `command` (the command, its folder and its environment, which `scrubbed_env` keeps free
    of secrets), `stdout` (whatever Ansible printed besides the events: warnings, errors),
    `job_events/<counter>-<uuid>.json` (every event, as the callback wrote it: the audit
    trail), `rc` and `status`. Events come through a pipe, not a terminal: no pty, no
    base64 markers, no partial files, and each event's JSON is encoded once (in the
    callback) and decoded once (here)."""
    art = runs / "artifacts" / ident
    events = art / "job_events"
    events.mkdir(parents=True, mode=0o700)
    art.chmod(0o700)
    rfd, wfd = os.pipe()
    env = {
        **env,
        "ANSIBLE_STDOUT_CALLBACK": "tuner_events",
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "TUNER_EVENTS_FD": str(wfd),
        "TUNER_RUN_IDENT": ident,
    }
    command = {"command": cmd, "cwd": str(runs), "env": env}
    _write_private(art / "command", json.dumps(command).encode())
    status, rc, error = "failed", -1, ""
    try:
        with os.fdopen(_new_private(art / "stdout"), "wb") as out:
            p = subprocess.Popen(
                cmd,
                cwd=runs,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(wfd,),
                start_new_session=True,  # tuner ends the whole run if it is stopped
            )
        os.close(wfd)
        wfd = -1
        try:
            with _stopped_by_signals():
                _pump(p, rfd, events, on_event)
                rc = p.wait()
        except BaseException:
            status = "canceled"
            from agent.diag.node import kill_group

            kill_group(p, grace=10.0)
            raise
        status = "successful" if rc == 0 else "failed"
        if rc:
            error = _last_error(art / "stdout")
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
        _write_private(art / "rc", str(rc).encode())
        _write_private(art / "status", status.encode())
    return LocalRun(status=status, rc=rc, error=error)


def _last_error(stdout: Path) -> str:
    """Ansible's last `ERROR!` / `[ERROR]:` line (a playbook or inventory it could not
    load), one line, at most 300 characters."""
    try:
        with stdout.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [x.strip() for x in tail.splitlines() if "ERROR" in x[:12]]
    return " ".join(lines[-1].split())[:300] if lines else ""


def _pump(
    p: subprocess.Popen[bytes],
    rfd: int,
    events: Path,
    on_event: Callable[[dict[str, Any]], Any],
) -> None:
    """Read event lines until the pipe ends, or until Ansible has exited and nothing more
    comes (a process Ansible left behind may hold the pipe open)."""
    buf = b""
    done = False
    while True:
        ready, _, _ = select.select([rfd], [], [], 0.5)
        if ready:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                done = True
            buf += chunk
        elif p.poll() is not None:
            done = True
        *lines, buf = buf.split(b"\n")
        for line in lines:
            _event(line, events, on_event)
        if done:
            if buf.strip():
                _event(buf, events, on_event)
            return


def _event(line: bytes, events: Path, on_event: Callable[[dict[str, Any]], Any]) -> None:
    try:
        ev = json.loads(line)
    except ValueError:
        return  # not an event (the callback writes nothing else to the pipe)
    if not isinstance(ev, dict):
        return
    name = f"{int(ev.get('counter') or 0)}-{str(ev.get('uuid', ''))[:64]}.json"
    if "/" not in name and not name.startswith("."):
        with contextlib.suppress(FileExistsError):  # counters are unique: never expected
            _write_private(events / name, line)  # as the callback wrote it
    on_event(ev)


def _new_private(path: Path) -> int:
    """A new file of the run's folder (created by this run, 0700), open for writing: never
    one already there, never through a link."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(_new_private(path), "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While tuner waits for Ansible, SIGTERM and SIGHUP end tuner as Ctrl-C does: the run's
    process group is ended and the run recorded as canceled (the default action would leave
    `ansible-playbook` running with nobody reading its events). Main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _filled(names: list[str], outcomes: dict[str, HostOutcome], r: Any) -> dict[str, HostOutcome]:
    for name in names:
        if name not in outcomes:
            why = f"Ansible gave no result for this host (run status {r.status}, rc {r.rc})"
            if getattr(r, "error", ""):
                why += f": {r.error}"
            outcomes[name] = HostOutcome(host=name, status="no result", message=why)
    return {name: outcomes[name] for name in names}


def _msg(res: dict[str, Any]) -> str:
    msg = str(res.get("msg") or res.get("stderr") or res.get("module_stderr") or "").strip()
    if msg.startswith("MODULE FAILURE") and res.get("module_stderr"):
        # the interpreter's own words (e.g. "/opt/tuner/venv/bin/python: not found")
        msg = f"{msg.splitlines()[0]}: {str(res['module_stderr']).strip()}"
    return host_key_reason(msg) or " ".join(msg.split())[:500]
