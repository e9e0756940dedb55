"""Running tuner's playbooks through ansible-runner, tuned the way the field scales Ansible.

One call runs one playbook over the selected hosts and returns, per host, the module's
result (or why there is none: failed, unreachable). The Ansible settings that make a fleet
run fast live here (forks = hosts up to a cap, SSH pipelining, persistent connections);
the playbooks themselves are plain and run the same under `ansible-playbook`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.errors import Failed
from agent.inventory import Inventory
from agent.paths import playbooks_dir, state_dir

MAX_FORKS = 64


class HostOutcome(BaseModel):
    host: str
    status: str  # ok | failed | unreachable | no result
    message: str = ""
    results: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}  # what the module reports of the host (verify: topology)


ProgressFn = Callable[[str, str], None]  # (host, status) when a host finishes


def tuned_envvars(forks: int) -> dict[str, str]:
    """The Ansible configuration of tuner's fast path (see docs/performance.md)."""
    return {
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=300s",
        "ANSIBLE_TIMEOUT": "20",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }


def run_playbook(
    playbook: str,
    inv: Inventory,
    extravars: dict[str, Any],
    *,
    check: bool = False,
    forks: int | None = None,
    progress: ProgressFn | None = None,
    module: str,
) -> tuple[dict[str, HostOutcome], str]:
    """Run `playbooks/<playbook>` on the inventory's selected hosts.

    Returns the outcome per host and the run's artifact folder (the audit trail)."""
    import ansible_runner

    names = [h.name for h in inv.hosts]
    forks = max(1, min(forks or len(names), MAX_FORKS))
    runs = state_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # ansible-runner records the process environment in each run's artifacts: keep them
    # readable by this user only.
    runs.chmod(0o700)
    ident = (
        time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{playbook.split('.')[0]}"
    )
    outcomes: dict[str, HostOutcome] = {}

    def on_event(ev: dict[str, Any]) -> bool:
        kind = ev.get("event", "")
        data = ev.get("event_data") or {}
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            return True
        if data.get("task_action", module) not in (module, f"ansible.legacy.{module}"):
            return True
        host = data.get("host", "")
        res = data.get("res") or {}
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

    env = tuned_envvars(forks)
    # ansible-runner starts `ansible-playbook` from PATH: use the one beside this Python.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    try:
        r = ansible_runner.run(
            private_data_dir=str(runs),
            ident=ident,
            playbook=str(playbooks_dir() / playbook),
            inventory=inv.path,
            limit=",".join(names),
            extravars=extravars,
            envvars=env,
            cmdline="--check" if check else None,
            forks=forks,
            quiet=True,
            event_handler=on_event,
            rotate_artifacts=40,
            suppress_env_files=True,
        )
    except Exception as e:  # ansible-runner raises on a missing ansible-playbook, etc.
        raise Failed(f"could not run Ansible: {e}") from e
    artifacts = str(runs / "artifacts" / ident)
    for name in names:
        if name not in outcomes:
            why = f"Ansible gave no result for this host (run status {r.status}, rc {r.rc})"
            outcomes[name] = HostOutcome(host=name, status="no result", message=why)
    return {name: outcomes[name] for name in names}, artifacts


def _msg(res: dict[str, Any]) -> str:
    msg = str(res.get("msg") or res.get("stderr") or res.get("module_stderr") or "").strip()
    return " ".join(msg.split())[:500]
