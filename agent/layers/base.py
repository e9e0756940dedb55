"""The shape every layer has: what the orchestrator (agent/layers/run.py) needs of it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.console import Console

from agent.inventory import Inventory, InventoryHost
from agent.profiles import Profile
from agent.report import ApplyReport, RollbackReport, VerifyReport
from agent.runner import HostOutcome, ProgressFn, run_playbook
from agent.view import HostView, fleet_table

Command = Literal["apply", "verify", "rollback"]
Report = ApplyReport | VerifyReport | RollbackReport


@dataclass
class Run:
    """One command over the fleet: what every layer of it sees."""

    command: Command
    profile: Profile | None  # None for rollback (the records say what to restore)
    inv: Inventory
    check: bool = False
    forks: int | None = None
    progress: ProgressFn | None = None
    batch_size: int | None = None  # apply and rollback: hosts per rolling batch (None: all)
    max_failed: int | None = None  # start no new batch once more hosts than this failed

    def playbook(
        self,
        name: str,
        hosts: list[InventoryHost],
        extravars: dict[str, Any],
        *,
        module: str,
        check: bool = False,
        progress: bool = True,
        stage_dir: Path | None = None,
    ) -> tuple[dict[str, HostOutcome], str]:
        """`playbooks/<name>` on these hosts of the run's inventory, with the run's forks
        (and its progress, unless `progress=False`): the one way a layer runs Ansible."""
        return run_playbook(
            name,
            self.inv.model_copy(update={"hosts": hosts}),
            extravars,
            check=check,
            forks=self.forks,
            progress=self.progress if progress else None,
            module=module,
            stage_dir=stage_dir,
        )


@dataclass
class HostResult:
    """One layer's result on one host.

    `status` is in the command's host words (apply: unchanged, changed, would change,
    failed, unreachable, not started; verify: ok, pending, drift, failed, unreachable;
    rollback: nothing to do, would restore, restored, pending reboot, failed, unreachable,
    not started): the
    host's status is the worst of its layers'. `detail` is the layer's own part of the host
    report (the layer's `fill` puts it there); `facts` what the layer learnt of the host."""

    status: str
    message: str = ""
    detail: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


Results = dict[str, HostResult]  # host name -> result


class Layer(ABC):
    """A layer of a node's tuning (OS, BIOS, next: the kernel command line).

    Each method that touches hosts works on one batch of hosts (already validated) and
    returns a result for every one of them, plus the ansible-runner artifacts folder."""

    name: ClassVar[str]  # the --layer word and the key in each host's `layers`
    label: ClassVar[str]  # prefix of the layer's messages in the host message ("BIOS")

    @abstractmethod
    def wants(self, run: Run) -> bool:
        """Does this run have work for the layer (the profile sets something for it)?"""

    @abstractmethod
    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        """Validate the layer's host variables (BadInput: nothing is touched yet) ->
        (hosts the layer works on, hosts it skips -> why)."""

    @abstractmethod
    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        """What the layer shows of each host, read only."""

    def refused(self, run: Run, hosts: list[InventoryHost]) -> dict[str, str]:
        """Before apply changes anything anywhere: hosts whose input only the host can judge
        (a BMC's registry forbids a value, no such Redfish system) -> why. Any: exit 2.

        Results marked `facts["bad_input"]` count the same way after the other commands."""
        return {}

    @abstractmethod
    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        """apply --check: what apply would do, nothing written."""

    @abstractmethod
    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        """Save originals, then set the profile's values."""

    @abstractmethod
    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        """Compare with the profile (read only)."""

    @abstractmethod
    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        """Put back the originals saved before tuner's first change (--check: say what)."""

    @abstractmethod
    def skipped(self, run: Run, why: str) -> HostResult:
        """The result of a host the layer does not work on (targets said why)."""

    @abstractmethod
    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        """The result of a host in a batch that was not started (the failure cap)."""

    @abstractmethod
    def fill(self, run: Run, host: Any, result: HostResult) -> None:
        """Put the layer's part into the host's report (HostApply/HostVerify/HostRollback)."""

    def finish(self, run: Run, report: Any) -> None:  # noqa: B027 (optional hook)
        """Add the layer's run-level part to the report (e.g. the BIOS run's reboot mode)."""

    def views(self, report: Any) -> tuple[str, list[str], list[HostView]] | None:
        """The layer's table for people: (title, the layer's columns, one HostView per host
        it has a part in), or None (no table). agent/view.py groups equal hosts."""
        return None

    def table(self, report: Any, console: Console, detail: bool = False) -> None:
        """Print the layer's table of the report (grouped; `detail`: every host, every row)."""
        got = self.views(report)
        if got is not None and got[2]:
            title, columns, views = got
            fleet_table(title, columns, views, console, detail=detail)
