"""`tuner agent install|remove|status` over the inventory: playbooks/agent.yml, one task per
host (the tuner_agent module, agent/nodeagent.py on the node). Controller side."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent.inventory import Inventory
from agent.runner import ProgressFn, run_playbook

BAD = ("failed", "unreachable", "no result")


class AgentHost(BaseModel):
    host: str
    status: str  # installed | unchanged | would install | removed | not installed | ...
    message: str = ""
    detail: dict[str, Any] = {}  # the module's result (files, enabled, last agent run)


class AgentReport(BaseModel):
    command: str  # install | remove | status
    check: bool = False
    hosts: list[AgentHost] = []
    artifacts: str = ""
    exit_code: int = 0


def _status_word(d: dict[str, Any]) -> tuple[str, bool]:
    """status mode: a word for the host, and whether it is as it should be."""
    if not d.get("installed"):
        return "not installed", False
    if d.get("missing"):
        return "broken", False
    last = d.get("last") or {}
    active = d.get("active")
    if active is not None and active != "active":
        return f"installed, {active}", False
    if last.get("status") == "failed":
        return "last run failed", False
    if not last:
        return "installed, never ran", True
    return "running" if active == "active" else "installed", True


def run(
    mode: str,
    inv: Inventory,
    check: bool = False,
    forks: int | None = None,
    progress: ProgressFn | None = None,
) -> AgentReport:
    outcomes, artifacts = run_playbook(
        "agent.yml",
        inv,
        {"tuner_mode": mode},
        check=check and mode != "status",
        forks=forks,
        progress=progress,
        module="tuner_agent",
    )
    rep = AgentReport(command=mode, check=check, artifacts=artifacts)
    bad = False
    for name, o in outcomes.items():
        detail = o.results[0] if o.results else {}
        if o.status != "ok":
            rep.hosts.append(AgentHost(host=name, status=o.status, message=o.message))
            bad = True
            continue
        if mode == "status":
            word, good = _status_word(detail)
            last = detail.get("last") or {}
            msg = (
                f"last run: {last.get('trigger')} -> {last.get('status')}"
                + (f", re-applied {', '.join(last['changed'])}" if last.get("changed") else "")
                if last
                else ""
            )
            if detail.get("missing"):
                msg = "missing: " + ", ".join(detail["missing"][:3])
            bad = bad or not good
        else:
            word = str(detail.get("status", "?"))
            n = len(detail.get("files") or [])
            msg = f"{n} file{'' if n == 1 else 's'}" if n else ""
            if mode == "install" and detail.get("enabled"):
                msg += (", " if msg else "") + "unit enabled"
        rep.hosts.append(AgentHost(host=name, status=word, message=msg, detail=detail))
    rep.exit_code = 1 if bad else 0
    return rep


def print_report(rep: AgentReport, console: Any) -> None:
    """Hosts with the same status and detail on one row (agent/view.py)."""
    from agent.view import HostView, fleet_table

    title = f"tuner agent {rep.command}" + (" --check" if rep.check else "")
    views = [HostView(host=h.host, status=h.status, summary=h.message) for h in rep.hosts]
    fleet_table(title, ["detail"], views, console)
