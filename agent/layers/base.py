"""The shape every layer has: what the orchestrator (agent/layers/run.py) needs of it.

A layer is registered by one line in agent/layers/__init__.py (`REGISTRY`); its class
declares everything else the rest of tuner needs of it (see `Layer`), so the orchestrator,
profiles, reports, `tuner ready` and the CLI loop over the registered layers and never name
one. Heavy imports stay inside functions: the CLI reads the registry at start-up.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from agent.modargs import REBOOT_TIMEOUT  # stdlib only: the module stays light

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from agent.inventory import Inventory, InventoryHost
    from agent.profiles import Profile
    from agent.report import ApplyReport, RollbackReport, VerifyReport
    from agent.runner import HostOutcome, ProgressFn
    from agent.view import HostView

    Report = ApplyReport | VerifyReport | RollbackReport

Command = Literal["apply", "verify", "rollback"]
REBOOT = ("never", "if-needed")
# A layer's part in the reboot (see `Layer.reboot`).
RebootRole = Literal["none", "waits", "resets"]


class Credentials:
    """Secrets a run was given (the BMC password...), taken out of the environment before
    any Ansible run could record them (ansible-runner writes the environment into each run's
    artifacts). Never printed: the repr names the keys only."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}

    def take(self, *env_names: str) -> None:
        """Move these variables out of this process's environment into the run."""
        for name in env_names:
            value = os.environ.pop(name, None)
            if value:
                self._secrets[name] = value

    def get(self, name: str) -> str | None:
        return self._secrets.get(name) or None

    def __repr__(self) -> str:
        return f"Credentials({sorted(self._secrets)})"


@dataclass
class RunOptions:
    """Everything a run is given besides the profile and the inventory: one object, handed
    to every layer through `Run`, instead of module globals. Defaults are defined here once.

    `layers` holds each layer's own options by layer name (e.g. the BIOS layer's
    `BiosOptions`: BMC TLS and timeouts); a layer absent from it uses its defaults."""

    forks: int | None = None  # hosts worked on at once (None: all, up to runner.MAX_FORKS)
    progress: ProgressFn | None = None
    lock_timeout: float | None = None  # seconds to wait for a host's lock (None: modargs')
    reboot: str = "never"  # never | if-needed: the reboot plan's policy (REBOOT)
    reboot_timeout: float = REBOOT_TIMEOUT  # seconds a node may take to boot after a reset
    credentials: Credentials = field(default_factory=Credentials)
    layers: dict[str, Any] = field(default_factory=dict)

    def check(self) -> RunOptions:
        from agent.errors import BadInput

        if self.reboot not in REBOOT:
            raise BadInput(f"must be never or if-needed, got {self.reboot!r}", field="--reboot")
        return self


@dataclass
class Reboots:
    """The reboot plan of one run, owned by the orchestrator: which hosts wait for a reboot
    (a layer asked: `need`), which were rebooted and by what (`did`: a BIOS reset through
    the BMC, or the OS), which reboots failed. One reboot per node for all layers."""

    allowed: bool = False  # --reboot if-needed, apply or rollback, not --check
    waiting: set[str] = field(default_factory=set)
    done: dict[str, str] = field(default_factory=dict)  # host -> BIOS reset | os | simulator
    failed: dict[str, str] = field(default_factory=dict)  # host -> why

    def need(self, host: str) -> None:
        self.waiting.add(host)

    def did(self, host: str, by: str) -> None:
        self.done.setdefault(host, by)
        self.failed.pop(host, None)

    def pending(self, hosts: list[str]) -> list[str]:
        """Of these hosts, the ones still waiting for a reboot nobody made yet."""
        return [h for h in hosts if h in self.waiting and h not in self.done]


@dataclass
class Run:
    """One command over the fleet: what every layer of it sees."""

    command: Command
    profile: Profile | None  # None for rollback (the records say what to restore)
    inv: Inventory
    check: bool = False
    batch_size: int | None = None  # apply and rollback: hosts per rolling batch (None: all)
    max_failed: int | None = None  # start no new batch once more hosts than this failed
    options: RunOptions = field(default_factory=RunOptions)
    reboots: Reboots = field(default_factory=Reboots)

    @property
    def forks(self) -> int | None:
        return self.options.forks

    @property
    def progress(self) -> ProgressFn | None:
        return self.options.progress

    @progress.setter
    def progress(self, value: ProgressFn | None) -> None:
        self.options.progress = value

    @property
    def reboot(self) -> str:
        return self.options.reboot

    def layer_options(self, name: str, default: Callable[[], Any]) -> Any:
        """The options the run gives layer `name` (its defaults when none)."""
        got = self.options.layers.get(name)
        if got is None:
            got = self.options.layers[name] = default()
        return got

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
        skip_tags: str | None = None,
    ) -> tuple[dict[str, HostOutcome], str]:
        """`playbooks/<name>` on these hosts of the run's inventory, with the run's forks,
        lock timeout (and its progress, unless `progress=False`): the one way a layer runs
        Ansible. `skip_tags`: tasks left out (ansible-playbook --skip-tags)."""
        from agent.runner import run_playbook

        run_vars: dict[str, Any] = {}
        if self.options.lock_timeout is not None:
            run_vars["tuner_lock_timeout"] = self.options.lock_timeout
        return run_playbook(
            name,
            self.inv.model_copy(update={"hosts": hosts}),
            {**run_vars, **extravars},
            check=check,
            forks=self.forks,
            progress=self.progress if progress else None,
            module=module,
            stage_dir=stage_dir,
            skip_tags=skip_tags,
        )


@dataclass
class HostResult:
    """One layer's result on one host.

    `status` is in the command's host words (apply: unchanged, changed, would change,
    failed, unreachable, not started; verify: ok, pending, drift, failed, unreachable;
    rollback: nothing to do, would restore, restored, pending reboot, failed, unreachable,
    not started): the host's status is the worst of its layers'. `detail` is the layer's
    own part of the host report (a pydantic model with at least `status`; it goes to the
    host's `layers[name]`); `facts` what the layer learnt of the host."""

    status: str
    message: str = ""
    detail: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


Results = dict[str, HostResult]  # host name -> result


@dataclass(frozen=True)
class Cross:
    """A cross-layer check, registered with the layers it needs (`Layer.crosses`): run on
    verify for each host where all of `needs` ran; `check(profile, {layer: result})` ->
    CrossCheck-like models (`status` "mismatch" turns an ok/pending host into drift)."""

    needs: tuple[str, ...]
    check: Callable[[Any, dict[str, HostResult]], list[Any]]


class Layer(ABC):
    """A layer of a node's tuning. Registered by one line in agent/layers/__init__.py.

    What the class declares (the rest of tuner reads these, never the layer's name):

    * `name`: the --layer word and the key in each host's `layers`; `label`: the prefix of
      its messages ("BIOS"); `order`: where it runs on a host (lower first).
    * `section`, `schema()`: the profile section it owns and that section's pydantic model
      (agent/profiles.py validates and merges every registered section).
    * `options()`: its own options (a dataclass; the run hands them as
      `RunOptions.layers[name]`), `from_cli(flags)` builds them from the command's flags;
      `secrets`: environment variables to take out of the environment before Ansible runs
      (`Credentials`).
    * `reboot`: its part in the run's reboot plan (`Reboots`): "none" (runs after the
      reboot point, on the booted system: the OS), "waits" (its changes wait for a reboot:
      it calls `run.reboots.need(host)`, and `rebooted` is called after the reboot point:
      the kernel command line), "resets" (it can reset a node itself, through the BMC, and
      resets the waiting hosts too: `run.reboots.did(host, "BIOS reset")`).
    * `crosses`: cross-layer checks (`Cross`) registered with this layer.
    * `part` of the host report: `HostResult.detail` goes to `layers[name]`; `v1_keys`
      the fields that part had in report schema 1 (kept for --json readers);
      `reasons(part)` why a host does not conform (`tuner ready`).
    * `module`: the Ansible module it runs (`playbooks/library/<module>.py`), whose
      arguments are typed once in `playbooks/module_utils/tuner_modargs.py`.

    Each method that touches hosts works on one batch of hosts (already validated) and
    returns a result for every one of them, plus the ansible-runner artifacts folder."""

    name: ClassVar[str]
    label: ClassVar[str]
    order: ClassVar[int]
    section: ClassVar[str | None] = None
    module: ClassVar[str | None] = None
    reboot: ClassVar[RebootRole] = "none"
    secrets: ClassVar[tuple[str, ...]] = ()
    crosses: ClassVar[tuple[Cross, ...]] = ()
    prefix_messages: ClassVar[bool] = True  # "BIOS: why" in the host's message (OS: as is)

    def __init__(self, options: Any = None) -> None:
        self.o = options if options is not None else self.options()

    @classmethod
    def schema(cls) -> type[BaseModel] | None:
        """The pydantic model of the layer's profile section (None: no section)."""
        return None

    @classmethod
    def options(cls) -> Any:
        """The layer's own options with their defaults (None: it has none)."""
        return None

    @classmethod
    def from_cli(cls, flags: dict[str, Any]) -> Any:
        """The layer's own options from the command's flags (by flag name, e.g.
        `bmc_timeout`; a flag the command lacks is absent). Default: its defaults."""
        return cls.options()

    def check_options(self, run: Run) -> None:  # noqa: B027 (optional hook)
        """Validate the layer's options before anything runs (BadInput: exit 2)."""

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

    def rebooted(self, run: Run, hosts: list[InventoryHost], results: Results) -> list[str]:
        """After the reboot point of a batch (layers with `reboot = "waits"`): update this
        layer's results of `hosts` from `run.reboots` (done: by what; failed: why), e.g.
        read again what the reboot should have brought. -> artifacts folders of any runs."""
        return []

    @abstractmethod
    def skipped(self, run: Run, why: str) -> HostResult:
        """The result of a host the layer does not work on (targets said why)."""

    @abstractmethod
    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        """The result of a host in a batch that was not started (the failure cap)."""

    @classmethod
    def v1_keys(cls, command: str, result: HostResult | None) -> dict[str, Any]:
        """The fields this layer's part had on a host in report schema 1, with their empty
        values when the layer did not run (`result` None), kept so that --json readers of
        schema 1 keep working (docs/json.md)."""
        return {}

    def from_v1(self, command: str, host: dict[str, Any]) -> Any:
        """The layer's part from a schema-1 host document (None: the layer did not run)."""
        return None

    def part(self, host: Any) -> Any:
        """The layer's part of a host report as its model (None: the layer did not run)."""
        return host.layers.get(self.name)

    def reasons(self, part: Any) -> list[str]:
        """Why a host does not conform, from the layer's verify part (`tuner ready`)."""
        status = getattr(part, "status", "ok")
        if status in ("pending", "drift", "failed"):
            return [f"{self.label} {status}: {getattr(part, 'message', '')}".rstrip(": ")]
        return []

    def finish(self, run: Run, report: Any) -> None:  # noqa: B027 (optional hook)
        """Add the layer's run-level part to the report (e.g. the BIOS run's reboot mode)."""

    def views(self, report: Any) -> tuple[str, list[str], list[HostView]] | None:
        """The layer's table for people: (title, the layer's columns, one HostView per host
        it has a part in), or None (no table). agent/view.py groups equal hosts."""
        return None

    def table(self, report: Any, console: Console, detail: bool = False) -> None:
        """Print the layer's table of the report (grouped; `detail`: every host, every row)."""
        from agent.view import fleet_table

        got = self.views(report)
        if got is not None and got[2]:
            title, columns, views = got
            fleet_table(title, columns, views, console, detail=detail)
