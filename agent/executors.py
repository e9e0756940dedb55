"""Execution nodes: one fleet run sharded over machines that run ansible-runner's worker.

The protocol is the one AWX's execution nodes use (ansible-runner's streaming interface):
for each shard the controller *transmits* a private data folder (the playbooks, the shard's
inventory, the run's variables and Ansible settings) into `ansible-runner worker` on the
executor, started over SSH, and *processes* the worker's stream (events, status, the
artifacts) here: the same events a local run gives, so results, progress and the failure cap
are the controller's, merged over shards, and the audit trail is kept under the controller's
`runs/artifacts/` (one folder per shard inside the run's).

What crosses to an executor (docs/security.md "Execution nodes"): the playbooks and modules,
the shard's host names and their non-secret inventory variables (`InventoryHost.vars`:
secrets and vaulted values are left out by the inventory loader), the public halves of the
SSH keys the inventory names and the known_hosts files it names, the run's extra variables
(no secret: playbooks that need one, the BIOS layer's BMC password, run on the controller,
see LOCAL_PLAYBOOKS) and tuner's Ansible settings. The private SSH keys stay on the
controller: the executor reaches the nodes through the controller's ssh-agent, forwarded
for the run (`TUNER_EXECUTOR_FORWARD_AGENT=no` when executors have keys of their own).

Settings (environment): TUNER_EXECUTORS (the list `--executors` reads), TUNER_EXECUTOR_SSH_CONFIG
(an ssh_config file for reaching executors: users, ports, keys, known_hosts),
TUNER_EXECUTOR_RUNNER (ansible-runner's path on the executors, default `ansible-runner`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import BadInput
from agent.paths import write_file

ENV = "TUNER_EXECUTORS"
SSH_CONFIG_ENV = "TUNER_EXECUTOR_SSH_CONFIG"
RUNNER_ENV = "TUNER_EXECUTOR_RUNNER"
AGENT_ENV = "TUNER_EXECUTOR_FORWARD_AGENT"
GROUP = "tuner_executors"  # an inventory group naming the executors (not fleet hosts)
MAX_EXECUTORS = 256
# Playbooks that work from the controller itself (Redfish to BMCs with the BMC password,
# the simulator's reboot): never sharded, so their secrets never reach an executor.
LOCAL_PLAYBOOKS = frozenset({"bios.yml", "capture-bmc.yml", "reboot.yml"})
# Ansible settings that name controller paths: executors use their own defaults.
CONTROLLER_ONLY_ENV = ("ANSIBLE_SSH_CONTROL_PATH_DIR",)

# Set once per command by `--executors` (process-wide: fleet runs may start in threads).
_active: list[tuple[str, ...]] = [()]


def parse(spec: str | None, field_name: str = "--executors") -> tuple[str, ...]:
    """`a,b,c` -> executor names, each validated like an inventory host name (they become
    ssh destinations: no option-like or shell text gets through)."""
    from agent.inventory import ADDRESS, HOSTNAME

    if spec is None or not spec.strip():
        return ()
    names: list[str] = []
    for raw in spec.split(","):
        name = raw.strip()
        if not name:
            raise BadInput(f"{spec!r}: an empty executor name", field=field_name)
        if not (HOSTNAME.match(name) or ADDRESS.match(name)) or name.startswith("-"):
            raise BadInput(
                f"executor {name[:80]!r} is not a valid host name (letters, digits, '.', '-', "
                "'_'; users and ports go in the ssh config: TUNER_EXECUTOR_SSH_CONFIG)",
                field=field_name,
            )
        if name in names:
            raise BadInput(f"executor {name!r} is named twice", field=field_name)
        names.append(name)
    if len(names) > MAX_EXECUTORS:
        raise BadInput(f"{len(names)} executors: at most {MAX_EXECUTORS}", field=field_name)
    return tuple(names)


def use(names: tuple[str, ...]) -> None:
    """The executors this process's fleet runs go through (set by `--executors`)."""
    _active[0] = names


def active() -> tuple[str, ...]:
    return _active[0]


def check_settings() -> None:
    """The executors' settings, validated before any host is touched."""
    cfg = os.environ.get(SSH_CONFIG_ENV)
    if cfg and not Path(cfg).is_file():
        raise BadInput(f"{cfg!r} is not a file", field=SSH_CONFIG_ENV)
    runner = os.environ.get(RUNNER_ENV, "ansible-runner")
    if not runner or "\x00" in runner or runner.startswith("-") or any(c.isspace() for c in runner):
        raise BadInput(f"{runner[:80]!r} is not a program path", field=RUNNER_ENV)
    if os.environ.get(AGENT_ENV, "yes").strip().lower() not in (
        "yes",
        "no",
        "1",
        "0",
        "true",
        "false",
    ):
        raise BadInput("must be yes or no", field=AGENT_ENV)


def shardable(playbook: str) -> bool:
    return playbook not in LOCAL_PLAYBOOKS


def shards(names: list[str], execs: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Contiguous, even slices of the fleet in inventory order (neighbours stay together:
    an executor per rack or pod when the inventory is in rack order); executors with no
    host left out."""
    n = min(len(execs), len(names))
    out = []
    start = 0
    for i in range(n):
        size = len(names) // n + (1 if i < len(names) % n else 0)
        out.append((execs[i], names[start : start + size]))
        start += size
    return out


def _forward_agent() -> bool:
    return os.environ.get(AGENT_ENV, "yes").strip().lower() in ("yes", "1", "true")


def from_inventory(inv: Any) -> tuple[str, ...]:
    """The inventory group `tuner_executors`: its hosts (validated by the inventory loader)
    are the executors when `--executors` is not given; their ansible_host, ansible_port and
    ansible_user say how to reach them."""
    out = []
    for h in getattr(inv, "executors", []):
        _where[h.name] = (h.address, h.vars.get("ansible_port"), h.vars.get("ansible_user"))
        out.append(h.name)
    if out:
        check_settings()
    return tuple(out)


# executor name -> (address, port, user) from the inventory group (else ssh's config decides)
_where: dict[str, tuple[str, Any, Any]] = {}


def ssh_command(executor: str) -> list[str]:
    """The argument list that starts ansible-runner's worker on `executor` (no shell string
    is built from any name: the remote command is fixed words, quoted)."""
    runner = os.environ.get(RUNNER_ENV, "ansible-runner")
    bindir = os.path.dirname(runner)
    words = ["ansible-runner", "worker"] if not bindir else [runner, "worker"]
    if bindir:  # its Ansible beside it (a virtualenv)
        words = ["env", f"PATH={bindir}:/usr/local/bin:/usr/bin:/bin", *words]
    cmd = ["ssh"]
    if cfg := os.environ.get(SSH_CONFIG_ENV):
        cmd += ["-F", cfg]
    cmd += [
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "ForwardAgent=" + ("yes" if _forward_agent() else "no"),
    ]
    dest = executor
    if executor in _where:
        dest, port, user = _where[executor]
        if isinstance(port, int) and 0 < port < 65536:
            cmd += ["-p", str(port)]
        if isinstance(user, str) and user and user.replace("-", "").replace("_", "").isalnum():
            cmd += ["-l", user]
    cmd += [
        "--",
        dest,
        " ".join(shlex.quote(w) for w in words),
    ]
    return cmd


def _known_hosts_paths(args: str) -> list[str]:
    try:
        words = shlex.split(args)
    except ValueError:
        return []
    out = []
    for w in words:
        if w.startswith("UserKnownHostsFile="):
            out += w.split("=", 1)[1].split()
    return out


def shard_inventory(hosts: list[Any], pdd: Path) -> dict[str, Any]:
    """The shard's inventory (its hosts, their non-secret variables) and the public files
    it needs beside it: known_hosts files and the public halves of the hosts' SSH keys, at
    paths templated from the worker's own folder (`playbook_dir`)."""
    base = "{{ playbook_dir | dirname }}"
    files: dict[str, str] = {}  # controller path -> name in the shard's folder

    def public(path: str, kind: str) -> str | None:
        if path not in files:
            src = Path(os.path.expanduser(path))
            try:
                data = src.read_bytes()
            except OSError:
                return None
            files[path] = f"{kind}-{len(files) + 1}"
            d = pdd / "public"
            d.mkdir(mode=0o700, exist_ok=True)
            write_file(d / files[path], data, 0o600)
        return f"{base}/public/{files[path]}"

    out: dict[str, Any] = {}
    for h in hosts:
        # BMC variables only serve the playbooks that stay on the controller (LOCAL_PLAYBOOKS)
        hv = {k: v for k, v in h.vars.items() if not k.startswith("bmc_")}
        args = hv.get("ansible_ssh_common_args")
        if isinstance(args, str):
            for kh in _known_hosts_paths(args):
                new = public(kh, "known_hosts")
                if new is not None:
                    args = args.replace(kh, new)
            if _forward_agent():
                args = args.replace("IdentitiesOnly=yes", "IdentitiesOnly=no")
            hv["ansible_ssh_common_args"] = args
        if h.key_file and _forward_agent():
            pub = public(h.key_file + ".pub", "key")
            if pub is not None:  # the agent's key this public half selects
                hv["ansible_ssh_private_key_file"] = pub
        out[h.name] = hv
    return {"all": {"hosts": out}}


# Extra variables naming controller files a playbook copies to each host ({host: path}):
# the shard's files travel in its stream (project/files/, where Ansible's copy looks first).
SHIPPED_VARS = ("tuner_wheelhouses",)


def ship_files(extravars: dict[str, Any], hosts: list[str], files: Path) -> dict[str, Any]:
    out = dict(extravars)
    for key in SHIPPED_VARS:
        per_host = extravars.get(key)
        if not isinstance(per_host, dict):
            continue
        mine: dict[str, str] = {}
        for h in hosts:
            src = per_host.get(h)
            if not isinstance(src, str):
                continue
            name = Path(src).name
            dst = files / name
            if not dst.exists():
                files.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            mine[h] = name  # relative: found in the playbook's files/
        out[key] = mine
    return out


@dataclass
class ShardResult:
    executor: str
    hosts: list[str]
    status: str = "unstarted"
    rc: int | None = None
    lost: str = ""  # why the executor's stream ended without a result (empty: it did not)
    seconds: float = 0.0


@dataclass
class ShardedRun:
    """What run_playbook needs of a run (`status`, `rc`), over every shard."""

    shards: list[ShardResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        bad = [s for s in self.shards if s.status != "successful"]
        return "successful" if not bad else ",".join(sorted({s.status for s in bad}))

    @property
    def rc(self) -> int:
        return max((s.rc or 0) for s in self.shards) if self.shards else 0


_project_lock = threading.Lock()


def _copy_project(src: Path, dst: Path) -> None:
    """The playbooks, modules and module_utils as plain files (the stream keeps symlinks as
    links, and the module_utils links point into the controller's checkout)."""
    shutil.copytree(src, dst, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))


def run_shards(
    *,
    playbook: str,
    inv: Any,
    runs: Path,
    ident: str,
    extravars: dict[str, Any],
    envvars: dict[str, str],
    check: bool,
    forks: int,
    on_event: Callable[[dict[str, Any]], bool],
    lost: Callable[[str, str], None],
    execs: tuple[str, ...],
    skip_tags: str | None = None,
) -> ShardedRun:
    """Run `playbook` over the inventory's selected hosts, one shard per executor, at once.
    `on_event` gets every shard's events (serialised); `lost(host, why)` is told each host
    of a shard whose executor was lost (the caller keeps any result that came before)."""
    from agent.paths import playbooks_dir

    names = [h.name for h in inv.hosts]
    by_name = {h.name: h for h in inv.hosts}
    env = {k: v for k, v in envvars.items() if k not in CONTROLLER_ONLY_ENV}
    lock = threading.Lock()

    def handler(ev: dict[str, Any]) -> bool:
        with lock:
            return on_event(ev)

    result = ShardedRun()
    tmp = Path(tempfile.mkdtemp(prefix="tuner-shards-"))
    try:
        threads = []
        for i, (ex, hosts) in enumerate(shards(names, execs), 1):
            sr = ShardResult(executor=ex, hosts=hosts)
            result.shards.append(sr)
            pdd = tmp / str(i)
            pdd.mkdir(mode=0o700)
            with _project_lock:
                _copy_project(playbooks_dir(), pdd / "project")
            (pdd / "inventory").mkdir(mode=0o700)
            shard_vars = ship_files(extravars, hosts, pdd / "project" / "files")
            inv_doc = shard_inventory([by_name[n] for n in hosts], pdd)
            write_file(pdd / "inventory" / "hosts.json", json.dumps(inv_doc), 0o600)
            t = threading.Thread(
                target=_one_shard,
                name=f"tuner-shard-{i}",
                args=(sr, pdd, runs, f"{ident}/{i}-{ex}", playbook, shard_vars, env),
                kwargs={
                    "check": check,
                    "skip_tags": skip_tags,
                    "forks": max(1, min(forks, len(hosts))),
                    "handler": handler,
                },
                daemon=True,
            )
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for sr in result.shards:
        if not sr.lost:
            continue
        for h in sr.hosts:  # `lost` keeps a result that came before the executor was lost
            lost(h, f"executor {sr.executor} lost: {sr.lost}")
    return result


def _one_shard(
    sr: ShardResult,
    pdd: Path,
    runs: Path,
    ident: str,
    playbook: str,
    extravars: dict[str, Any],
    env: dict[str, str],
    *,
    check: bool,
    skip_tags: str | None = None,
    forks: int,
    handler: Callable[[dict[str, Any]], bool],
) -> None:
    from ansible_runner.interface import init_runner

    start = time.monotonic()
    stderr = tempfile.TemporaryFile()
    explanation: list[str] = []
    try:
        proc = subprocess.Popen(
            ssh_command(sr.executor),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    except OSError as e:
        sr.status, sr.lost = "error", f"ssh could not start: {e}"
        return
    assert proc.stdin is not None and proc.stdout is not None
    feeder_error: list[str] = []

    def feed() -> None:
        try:
            t = init_runner(
                private_data_dir=str(pdd),
                playbook=playbook,
                inventory=str(pdd / "inventory" / "hosts.json"),
                extravars=extravars,
                envvars=env,
                cmdline="--check" if check else None,
                skip_tags=skip_tags,
                forks=forks,
                quiet=True,
                streamer="transmit",
                _output=proc.stdin,
            )
            t.run()
        except (OSError, ValueError) as e:  # the executor went away while we sent
            feeder_error.append(str(e))
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]

    sender = threading.Thread(target=feed, name="tuner-transmit", daemon=True)
    sender.start()

    def status(data: dict[str, Any], runner_config: Any = None) -> None:
        if data.get("status") == "error" and data.get("job_explanation"):
            explanation.append(str(data["job_explanation"]))

    try:
        p = init_runner(
            private_data_dir=str(runs),
            ident=ident,
            quiet=True,
            streamer="process",
            _input=proc.stdout,
            event_handler=handler,
            status_handler=status,
        )
        p.run()
        sr.status, sr.rc = p.status, p.rc
    except Exception as e:  # a stream cut in the middle of an event or the artifacts
        sr.status = "error"
        explanation.append(f"its stream broke: {e}")
    finally:
        sender.join(5)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        stderr.seek(0)
        err = " ".join(stderr.read().decode(errors="replace").split())[-300:]
        stderr.close()
        sr.seconds = time.monotonic() - start
    if sr.status in ("successful", "failed"):
        return  # the worker's stream ended as a run does (ansible-runner's own status)
    why = []
    if rc and rc < 0:
        why.append(f"ssh ended by signal {-rc}")
    elif rc == 255:
        why.append("ssh failed (exit 255)")
    elif rc:
        why.append(f"the worker exited {rc}")
    if err:
        why.append(err)
    elif explanation:
        why.append(explanation[-1][:300])
    elif feeder_error:
        why.append(f"sending the job failed: {feeder_error[-1][:200]}")
    sr.lost = "; ".join(why) or f"its stream ended without a result (status {sr.status})"
    sr.status = "error"
