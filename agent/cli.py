"""The `tuner` command line. Exit codes: 0 ok, 1 drift or a host failed, 2 bad input."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from agent.errors import BadInput, TunerError

if TYPE_CHECKING:
    from rich.console import Console

# Plain help wrapped at 80 columns (agent/clihelp.py adds placeholders and examples).
_HELP = {"rich_markup_mode": None, "context_settings": {"max_content_width": 80}}
app = typer.Typer(
    no_args_is_help=True,
    help="Tune MI355X inference nodes: OS and BIOS profiles, health gate, fleet.",
    **_HELP,  # type: ignore[arg-type]
)
profiles_app = typer.Typer(
    no_args_is_help=True,
    help="List and show tuning profiles.",
    **_HELP,  # type: ignore[arg-type]
)
sim_app = typer.Typer(
    no_args_is_help=True,
    help="The simulated fleet (a lab for profiles).",
    **_HELP,  # type: ignore[arg-type]
)
agent_app = typer.Typer(
    no_args_is_help=True,
    help="The node agent: keeps each node tuned across boots and hotplug (docs/agent.md).",
    **_HELP,  # type: ignore[arg-type]
)
app.add_typer(profiles_app, name="profiles")
app.add_typer(sim_app, name="sim")
app.add_typer(agent_app, name="agent")


class _LazyConsole:
    """A rich Console made on first use: commands that print nothing do not import rich."""

    def __init__(self, **kw: Any) -> None:
        self._kw = kw
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kw)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole(highlight=False, width=None if sys.stdout.isatty() else 160))
err = cast("Console", _LazyConsole(stderr=True, highlight=False))

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document (docs/json.md).")]
DetailOpt = Annotated[
    bool,
    typer.Option(
        "--detail",
        help="Every host and every row (default: hosts with the same result on one row, "
        "only what differs or failed).",
    ),
]
InventoryOpt = Annotated[
    str | None,
    typer.Option(
        "--inventory",
        "-i",
        help="Ansible inventory (default: $TUNER_INVENTORY, else the simulated fleet's).",
    ),
]
LimitOpt = Annotated[str | None, typer.Option("--limit", "-l", help="Ansible host pattern.")]
ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="Profile name or YAML path.")]
ForksOpt = Annotated[
    int | None,
    typer.Option(
        "--forks", min=1, max=256, help="Hosts worked on at once (default: all, up to 64)."
    ),
]
StateDirOpt = Annotated[
    str | None,
    typer.Option(
        "--state-dir", help="State folder (default: $TUNER_STATE_DIR or ~/.local/state/tuner)."
    ),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        max=86400,
        help="Seconds to wait for another tuner run's lock on a host (then that host fails, "
        "naming the holder).",
    ),
]


_last_doc: list[Any] = []  # the document a command emitted (for the run history)


def _emit(model: Any, as_json: bool, human: Callable[[], None]) -> None:
    """`model`: a pydantic model or a dict; as JSON with --json, else `human()`."""
    data = model if isinstance(model, dict) else model.model_dump(mode="json")
    _last_doc[:] = [data]
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human()


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Turn tuner's errors into a message and an exit code: never a traceback."""
    try:
        yield
    except TunerError as e:
        if as_json:
            sys.stdout.write(json.dumps(e.to_json(), indent=2) + "\n")
        err.print(f"[bold red]error:[/] {e}", markup=True, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except RecursionError:
        # a last net for input nested too deeply for a parser (YAML is limited before this)
        msg = "input nested too deeply to read (a facts, profile or inventory file?)"
        if as_json:
            sys.stdout.write(json.dumps({"error": msg, "file": None, "field": None}) + "\n")
        err.print(f"[bold red]error:[/] {msg}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def _progress(total: int, label: str, as_json: bool) -> Iterator[Any]:
    """Progress on stderr (stdout keeps the table or the JSON document): on a terminal a
    bar with the current phase, the hosts still working and what they wait on; otherwise
    one line per phase, per host result and per new BIOS stage, and every
    $TUNER_PROGRESS_QUIET seconds (default 15) of silence a line saying what is awaited."""
    from agent.runner import Progress

    _ = as_json  # --json: the document on stdout, progress on stderr all the same

    class Waiting(Progress):
        def __init__(self) -> None:
            self.states: dict[str, str] = {}
            self.done: set[str] = set()  # hosts with a result in this phase (a layer may
            self.total = total  # run a second pass on a host: it is counted once)

        @property
        def done_n(self) -> int:
            return len(self.done)

        def waiting(self) -> str:
            from agent.view import fold

            by: dict[str, list[str]] = {}
            for h, text in self.states.items():
                by.setdefault(text, []).append(h)
            return "; ".join(f"{text}: {fold(hs)}" for text, hs in by.items())

        def phase(self, text: str, steps: int = 0) -> None:
            self.states.clear()
            self.done.clear()
            self.total = steps

        def state(self, host: str, text: str) -> None:
            self.states[host] = text

        def __call__(self, host: str, status: str) -> None:
            self.states.pop(host, None)
            self.done.add(host)

    if not err.is_terminal:
        import threading
        import time

        start = time.monotonic()
        quiet = float(os.environ.get("TUNER_PROGRESS_QUIET") or 15)

        class Lines(Waiting):
            def __init__(self) -> None:
                super().__init__()
                self.last = time.monotonic()
                self.stages: set[str] = set()
                self.lock = threading.Lock()

            def say(self, text: str) -> None:
                with self.lock:
                    self.last = time.monotonic()
                    sys.stderr.write(f"{label}: {text} [{self.last - start:.1f} s]\n")
                    sys.stderr.flush()

            def phase(self, text: str, steps: int = 0) -> None:
                super().phase(text, steps)
                self.stages.clear()
                self.say(text)

            def state(self, host: str, text: str) -> None:
                super().state(host, text)
                if text != "started" and text not in self.stages:
                    self.stages.add(text)
                    self.say(f"  {text}: {host} first")

            def __call__(self, host: str, status: str) -> None:
                super().__call__(host, status)
                of = f"/{self.total}" if self.total else ""
                word = "done" if status == "ok" else status
                self.say(f"  {host} {word} ({self.done_n}{of})")

        lines = Lines()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(1.0):
                if lines.states and time.monotonic() - lines.last >= quiet:
                    lines.say(f"  still waiting on {lines.waiting()}")

        t = threading.Thread(target=beat, name="tuner-progress", daemon=True)
        t.start()
        try:
            yield lines
        finally:
            stop.set()
            t.join(2)
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=Console(stderr=True, highlight=False),  # a real one: Live enters it
        transient=True,
    ) as p:
        task = p.add_task(label, total=total, last="")

        class BarProgress(Waiting):
            def show(self, last: str = "") -> None:
                wait = self.waiting()
                p.update(task, last=(wait or last)[:100])

            def phase(self, text: str, steps: int = 0) -> None:
                super().phase(text, steps)
                p.reset(task, total=steps or None, description=f"{label} {text}", last="")

            def state(self, host: str, text: str) -> None:
                super().state(host, text)
                self.show()

            def __call__(self, host: str, status: str) -> None:
                super().__call__(host, status)
                p.update(task, completed=self.done_n)
                self.show(f"{host} {'done' if status == 'ok' else status}")

        yield BarProgress()


def _n(count: int, word: str) -> str:
    """`1 node`, `2 nodes`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _phases(label: str, as_json: bool) -> Callable[[str], None]:
    """A line per phase on stderr (terminal or not, so CI logs show it); none with --json."""
    import time

    start = time.monotonic()

    def say(text: str) -> None:
        if not as_json:
            err.print(f"{label}: {text} [{time.monotonic() - start:.1f} s]", soft_wrap=True)

    return say


# ------------------------------------------------------------------------------ profiles


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it


@profiles_app.command("list")
def profiles_list(as_json: JsonOpt = False) -> None:
    """List the profiles shipped in profiles/ (`profiles show NAME` validates one)."""
    import yaml

    from agent.paths import profiles_dir

    with _errors(as_json):
        items = []
        d = profiles_dir()
        # Only each file's name and description (read as `profiles show` reads them): no
        # schema, no includes, so the list is quick (docs/performance.md).
        for path in sorted(d.glob("*.y*ml"), key=lambda p: p.stem) if d.is_dir() else []:
            try:
                raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                raise BadInput(f"cannot read this profile: {e}", file=str(path)) from e
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise BadInput("a profile needs a `name`", file=str(path), field="name")
            desc = raw.get("description") or ""
            items.append({"name": raw["name"], "description": str(desc), "file": str(path)})

        def human() -> None:
            from rich.table import Table

            t = Table()
            for c in ("profile", "description", "file"):
                t.add_column(c)
            for i in items:
                rel = os.path.relpath(i["file"])
                t.add_row(i["name"], i["description"], i["file"] if rel.startswith("..") else rel)
            out.print(t)

        _emit({"profiles": items}, as_json, human)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or YAML path.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a resolved profile: every value and the file it came from."""
    from rich.table import Table

    from agent.profiles import load_profile

    with _errors(as_json):
        p = load_profile(name)

        def human() -> None:
            out.print(f"[bold]{p.name}[/]: {p.description}")
            out.print("files (later wins): " + " -> ".join(p.files))
            t = Table()
            for c in ("setting", "value", "from"):
                t.add_column(c)
            dump = {
                "os": p.os.model_dump(exclude_none=True),
                "bios": p.bios.model_dump(exclude_none=True),
                "kernel": p.kernel.model_dump(exclude_none=True),
            }
            from agent.profiles import _flatten

            flat: dict[str, Any] = {}
            _flatten(dump, "", flat)
            for k, v in flat.items():
                t.add_row(
                    k, json.dumps(v) if not isinstance(v, str) else v, p.sources.get(k, "default")
                )
            out.print(t)

        _emit(p, as_json, human)


# ------------------------------------------------------------------------------ apply etc.


def _prepare(profile: str | None, inventory: str | None, limit: str | None) -> tuple[Any, Any]:
    """Validate everything before any host is touched: profile, inventory, limit."""
    from agent.inventory import default_inventory, load_inventory
    from agent.paths import check_state_dir
    from agent.profiles import load_profile

    check_state_dir()
    prof = load_profile(profile) if profile is not None else None
    inv = load_inventory(default_inventory(inventory), limit)
    return prof, inv


def _run_options(insecure: bool, ca_bundle: str | None, lock_timeout: float | None) -> None:
    """Checks and settings shared by the commands that run on hosts (docs/security.md)."""
    from agent import runner
    from agent.inventory import check_ca_bundle

    if ca_bundle is not None:
        check_ca_bundle(ca_bundle, "--ca-bundle")
    if insecure:
        err.print(
            "[bold yellow]warning:[/] --insecure: the BMCs' TLS certificates are not verified; "
            "anyone on the path to a BMC can read its password and change its answers",
            markup=True,
            soft_wrap=True,
        )
    if lock_timeout is not None:
        runner.RUN_EXTRAVARS["tuner_lock_timeout"] = lock_timeout


InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Do not verify the BMCs' TLS certificates.")
]
CaBundleOpt = Annotated[
    str | None,
    typer.Option("--ca-bundle", help="CA certificates (PEM) to verify the BMCs' TLS with."),
]
BmcTimeoutOpt = Annotated[
    float,
    typer.Option("--bmc-timeout", min=0.1, max=600, help="Seconds to wait for a BMC answer."),
]


LayerOpt = Annotated[
    str,
    typer.Option(
        "--layer",
        help="cmdline, bios, os or all: the layers to work on (they run in that order on "
        "a host).",
    ),
]
RebootOpt = Annotated[
    str,
    typer.Option(
        "--reboot",
        help="never (BIOS values and the kernel command line stay pending until the next "
        "reboot) or if-needed (reboot those hosts once, in rolling batches).",
    ),
]
BatchSizeOpt = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Hosts per rolling batch (default: all)."),
]
MaxFailedOpt = Annotated[
    int | None,
    typer.Option(
        "--max-failed",
        min=0,
        help="Start no new batch once more than M hosts have failed (whole run).",
    ),
]
ResetTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--reset-timeout", min=1, max=7200, help="Seconds a node may take to boot after reset."
    ),
]


def _layers_run(
    command: str,
    layer: str,
    profile: str | None,
    inventory: str | None,
    limit: str | None,
    bios_options: Any,
    as_json: bool,
    *,
    lock_timeout: float | None = None,
    reboot_all_hosts: bool = False,
    detail: bool = False,
    **run_kw: Any,
) -> None:
    """Validate, run the selected layers (agent/layers/run.py), print, exit with the code."""
    from agent import layers
    from agent.inventory import check_reboot_scope
    from agent.layers import bios
    from agent.layers.base import Run
    from agent.layers.run import execute, print_report
    from agent.runner import run_security

    # The BMC password leaves the environment before any Ansible run records it, whatever
    # the layers (ansible-runner writes the environment into each run's artifacts).
    bios.take_env_password()
    picked = layers.make(layer, bios.check_options(bios_options))
    _run_options(bios_options.insecure, bios_options.ca_bundle, lock_timeout)
    prof, inv = _prepare(profile, inventory, limit)
    if command in ("apply", "rollback") and {"bios", "cmdline"} & set(layers.names(layer)):
        check_reboot_scope(inv, bios_options.reboot, bool(run_kw.get("check")), reboot_all_hosts)
    run = Run(command=command, profile=prof, inv=inv, **run_kw)  # type: ignore[arg-type]
    with _progress(len(inv.hosts) * len(picked), command, as_json) as prog:
        run.progress = prog
        r = execute(run, picked)
    r.security = run_security(bios_options.insecure)
    _emit(r, as_json, lambda: print_report(r, picked, out, detail))
    raise typer.Exit(r.exit_code)


RebootAllOpt = Annotated[
    bool,
    typer.Option(
        "--reboot-all-hosts",
        help="Allow --reboot if-needed to select every host of a fleet larger than 8.",
    ),
]


def _bios_options(
    reboot: str,
    batch_size: int | None,
    max_failed: int | None,
    insecure: bool,
    ca_bundle: str | None,
    bmc_timeout: float,
    reset_timeout: float,
) -> Any:
    """The BIOS layer's options of apply and rollback (a BiosOptions)."""
    from agent.layers.bios import BiosOptions

    return BiosOptions(
        reboot=reboot,
        batch_size=batch_size,
        max_failed=max_failed,
        insecure=insecure,
        ca_bundle=ca_bundle,
        timeout=bmc_timeout,
        reset_timeout=reset_timeout,
        poll=min(2.0, max(0.2, reset_timeout / 100)),
    )


@app.command()
def apply(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Show what would change; write/send nothing.")
    ] = False,
    forks: ForksOpt = None,
    layer: LayerOpt = "all",
    reboot: RebootOpt = "never",
    batch_size: BatchSizeOpt = None,
    max_failed: MaxFailedOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = 30.0,
    reset_timeout: ResetTimeoutOpt = 1200.0,
    reboot_all_hosts: RebootAllOpt = False,
    lock_timeout: LockTimeoutOpt = 300.0,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a profile: BIOS through each host's BMC (Redfish), then OS (through Ansible)."""
    with _errors(as_json):
        opts = _bios_options(
            reboot, batch_size, max_failed, insecure, ca_bundle, bmc_timeout, reset_timeout
        )
        _layers_run(
            "apply",
            layer,
            profile,
            inventory,
            limit,
            opts,
            as_json,
            check=check,
            forks=forks,
            batch_size=batch_size,
            max_failed=max_failed,
            lock_timeout=lock_timeout,
            reboot_all_hosts=reboot_all_hosts,
            detail=detail,
        )


@app.command()
def verify(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    layer: LayerOpt = "all",
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = 30.0,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare every host's OS and BIOS with a profile, and the OS with the BIOS.

    Exit 0 only if all conform; `pending` (BIOS values set, waiting for a reset) exits 1."""
    from agent.layers.bios import BiosOptions

    with _errors(as_json):
        opts = BiosOptions(insecure=insecure, ca_bundle=ca_bundle, timeout=bmc_timeout)
        _layers_run(
            "verify", layer, profile, inventory, limit, opts, as_json, forks=forks, detail=detail
        )


@app.command()
def rollback(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be restored.")] = False,
    forks: ForksOpt = None,
    layer: LayerOpt = "all",
    reboot: RebootOpt = "never",
    batch_size: BatchSizeOpt = None,
    max_failed: MaxFailedOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = 30.0,
    reset_timeout: ResetTimeoutOpt = 1200.0,
    reboot_all_hosts: RebootAllOpt = False,
    lock_timeout: LockTimeoutOpt = 300.0,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore the values each host had before tuner first wrote to it (OS files, BIOS).

    BIOS values restored without --reboot if-needed are pending until the next reboot."""
    with _errors(as_json):
        opts = _bios_options(
            reboot, batch_size, max_failed, insecure, ca_bundle, bmc_timeout, reset_timeout
        )
        _layers_run(
            "rollback",
            layer,
            None,
            inventory,
            limit,
            opts,
            as_json,
            check=check,
            forks=forks,
            batch_size=batch_size,
            max_failed=max_failed,
            lock_timeout=lock_timeout,
            reboot_all_hosts=reboot_all_hosts,
            detail=detail,
        )


# ------------------------------------------------------------------------------ provision


@app.command()
def provision(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report each node and what would change; write nothing.")
    ] = False,
    wheelhouse: Annotated[
        str | None,
        typer.Option(
            "--wheelhouse",
            help="Your own folder of wheels (air-gapped sites); default: built once with pip "
            "download, cached in the state folder.",
        ),
    ] = None,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make nodes ready for tuner: /opt/tuner/venv with tuner's node-side packages and the
    amdsmi package of the node's ROCm, installed offline from a pushed wheelhouse.

    Exit 0 when every node is ready, 1 when one failed, 2 on bad input."""
    from agent.paths import state_dir
    from agent.provision import check_wheelhouse, print_report
    from agent.provision import provision as run_provision

    with _errors(as_json):
        wh = check_wheelhouse(wheelhouse) if wheelhouse is not None else None
        _, inv = _prepare(None, inventory, limit)
        with _progress(len(inv.hosts), "provision", as_json) as prog:
            r = run_provision(inv, check, forks, prog, state_dir(), wh)
        _emit(r, as_json, lambda: print_report(r, out))
        raise typer.Exit(1 if r.failed else 0)


# ------------------------------------------------------------------------------ sim


def _state(state_dir: str | None) -> Path:
    from agent.paths import check_state_dir

    d = check_state_dir(state_dir)
    if state_dir:
        os.environ["TUNER_STATE_DIR"] = str(d)
    return d


@sim_app.command("up")
def sim_up(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes", "-n", min=1, max=512, help="How many nodes (default: the scenario's, 4)."
        ),
    ] = None,
    scenario: Annotated[
        str,
        typer.Option("--scenario", help="GPU state of the nodes (tuner sim scenarios lists them)."),
    ] = "healthy",
    state_dir: StateDirOpt = None,
    connection: Annotated[
        str,
        typer.Option(
            help="ssh (a real sshd per node), local, or auto (ssh when sshd is installed)."
        ),
    ] = "auto",
    cores_per_socket: Annotated[
        int,
        typer.Option(
            "--cores-per-socket",
            min=1,
            max=192,
            help="Cores per socket (2 sockets, SMT on). 64 is an EPYC 9575F; fewer is faster.",
        ),
    ] = 64,
    bmc_vendor: Annotated[
        str,
        typer.Option(
            "--bmc-vendor",
            help="BMC personality of the nodes: dell, hpe, supermicro, amd, mixed (in turn) "
            "or none (no BMCs).",
        ),
    ] = "mixed",
    bmc_tls: Annotated[
        bool, typer.Option("--bmc-tls/--no-bmc-tls", help="Serve the BMCs over HTTPS.")
    ] = True,
    bmc_reset_delay: Annotated[
        float,
        typer.Option(
            "--bmc-reset-delay", min=0, max=600, help="Seconds a simulated BIOS reset takes."
        ),
    ] = 5.0,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="bare: nodes have only their own Python (run tuner provision first); "
            "controller: nodes borrow the controller's Python (a lab shortcut).",
        ),
    ] = "bare",
    as_json: JsonOpt = False,
) -> None:
    """Create a simulated fleet: node trees, sshd and a Redfish BMC per node, an inventory."""
    from agent.sim import fleet as simfleet
    from agent.sim.nodetree import Topology

    with _errors(as_json):
        if connection not in ("auto", "ssh", "local"):
            raise BadInput("must be auto, ssh or local", field="--connection")
        sd = _state(state_dir)
        f = simfleet.up(
            sd,
            nodes,
            connection,
            Topology(cores_per_socket=cores_per_socket),
            scenario,
            bmc_vendor=bmc_vendor,
            bmc_tls=bmc_tls,
            bmc_reset_delay=bmc_reset_delay,
            progress=_phases("sim up", as_json),
            runtime=runtime,
        )
        from agent.sim import bmcfleet

        data = {
            "inventory": f.inventory,
            "scenario": f.scenario,
            "runtime": f.runtime,
            "connection": f.connection,
            "nodes": [
                {
                    "name": n.name,
                    "root": n.root,
                    "group": n.group,
                    "ssh_port": n.port,
                    **({"bmc": b} if (b := bmcfleet.describe(f, n.name)) else {}),
                }
                for n in f.nodes
            ],
            "bmc_pid": f.bmc_pid,
        }

        def human() -> None:
            import shlex

            out.print(
                f"{_n(len(f.nodes), 'simulated node')} up ({f.connection}); "
                f"inventory: {f.inventory}"
            )
            out.print(f"GPU scenario: {f.scenario}")
            sd_arg = ""
            if state_dir:  # the commands below must find this fleet, not the default one
                out.print(f"next: export TUNER_STATE_DIR={shlex.quote(str(sd))}")
                sd_arg = f" --state-dir {shlex.quote(str(sd))}"
            if f.runtime == "bare":
                out.print("next: tuner provision (the nodes' runtime for tuner's GPU tasks)")
            out.print("next: tuner apply --profile inference --check; tuner check; tuner status")
            out.print(f"when done: tuner sim down{sd_arg}")

        _emit(data, as_json, human)


@sim_app.command("down")
def sim_down(state_dir: StateDirOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the simulated fleet and remove its files."""
    from agent.sim import fleet as simfleet

    with _errors(as_json):
        sd = _state(state_dir)
        f = simfleet.down(sd, progress=_phases("sim down", as_json))
        n = len(f.nodes) if f else 0
        _emit(
            {"removed": n, "state_dir": str(sd)},
            as_json,
            lambda: out.print(
                f"removed {_n(n, 'simulated node')} from {sd}" if n else "no simulated fleet"
            ),
        )


@sim_app.command("reboot")
def sim_reboot(
    names: Annotated[list[str] | None, typer.Argument(help="Nodes (default: all).")] = None,
    state_dir: StateDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reboot simulated nodes: kernel files to boot defaults, sysctl.d/tmpfiles.d, /proc/cmdline."""
    from agent.sim import fleet as simfleet
    from agent.sim.nodetree import reboot

    with _errors(as_json):
        f = simfleet.load(_state(state_dir))
        if f is None:
            raise BadInput("no simulated fleet is up (tuner sim up)", field="--state-dir")
        known = {n.name: n for n in f.nodes}
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            raise BadInput(f"no such simulated node: {', '.join(unknown)}", field="NAMES")
        picked = [known[n] for n in names] if names else f.nodes
        for n in picked:
            reboot(Path(n.root))
        _emit(
            {"rebooted": [n.name for n in picked]},
            as_json,
            lambda: out.print(f"rebooted {_n(len(picked), 'node')}"),
        )


@sim_app.command("event")
def sim_event(
    name: Annotated[str, typer.Argument(help="The simulated node.")],
    kind: Annotated[
        str,
        typer.Argument(help="cpu-online, cpu-offline, cpufreq-load, gpu-remove or gpu-add."),
    ],
    arg: Annotated[
        str | None,
        typer.Argument(help="The CPU number, the cpufreq driver, or the GPU's PCI address."),
    ] = None,
    state_dir: StateDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Play the kernel on a simulated node: change its tree as the kernel would and deliver
    the uevent to the node agent (docs/sim-agent.md)."""
    from agent.sim import fleet as simfleet
    from agent.sim.events import event

    with _errors(as_json):
        f = simfleet.load(_state(state_dir))
        if f is None:
            raise BadInput("no simulated fleet is up (tuner sim up)", field="--state-dir")
        node = next((n for n in f.nodes if n.name == name), None)
        if node is None:
            raise BadInput(f"no such simulated node: {name}", field="NAME")
        ev = event(Path(node.root), kind, arg)
        _emit(
            {"node": name, "event": ev.to_json()},
            as_json,
            lambda: out.print(f"{name}: {ev.action} {ev.device_path} ({ev.subsystem})"),
        )


# ------------------------------------------------------------------------------ agent


@agent_app.command("run", context_settings={"ignore_unknown_options": False})
def agent_run(
    once: Annotated[bool, typer.Option("--once", help="Re-apply once and exit.")] = False,
    root: Annotated[
        str, typer.Option("--root", help="The node's / (a simulated node's tree).")
    ] = "/",
    events: Annotated[
        str, typer.Option("--events", help="netlink (udev, a real node), sim or none.")
    ] = "netlink",
    textfile_dir: Annotated[
        str,
        typer.Option("--textfile-dir", help="node_exporter's textfile folder, on the node."),
    ] = "/var/lib/prometheus/node-exporter",
    as_json: JsonOpt = False,
) -> None:
    """On a node: re-apply the settings tuner apply recorded, then watch udev and re-apply
    what a CPU coming online or a cpufreq driver loading undoes (what the unit runs)."""
    from agent.nodeagent import run

    if events not in ("netlink", "sim", "none"):
        err.print("error: --events must be netlink, sim or none")
        raise typer.Exit(2)
    argv = ["run", "--root", root, "--events", events, "--textfile-dir", textfile_dir]
    argv += ["--once"] if once else []
    argv += ["--json"] if as_json else []
    raise typer.Exit(run(argv))


def _agent_fleet(
    mode: str,
    inventory: str | None,
    limit: str | None,
    check: bool,
    forks: int | None,
    as_json: bool,
) -> None:
    from agent.agentfleet import print_report, run

    with _errors(as_json):
        _, inv = _prepare(None, inventory, limit)
        with _progress(len(inv.hosts), f"agent {mode}", as_json) as prog:
            rep = run(mode, inv, check=check, forks=forks, progress=prog)
        _emit(rep, as_json, lambda: print_report(rep, out))
        raise typer.Exit(rep.exit_code)


@agent_app.command("install")
def agent_install(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be installed.")] = False,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Install the node agent on every host: its code under /opt/tuner/lib and a systemd
    unit run by the node runtime /opt/tuner/venv (tuner provision builds it)."""
    _agent_fleet("install", inventory, limit, check, forks, as_json)


@agent_app.command("remove")
def agent_remove(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be removed.")] = False,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove the node agent: the unit and every file install made. The tuning stays
    (tuner rollback restores the originals)."""
    _agent_fleet("remove", inventory, limit, check, forks, as_json)


@agent_app.command("status")
def agent_status(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the agent installed and running on every host, and what did it last do. Exit 1
    when a host lacks it, its files, or its last run failed."""
    _agent_fleet("status", inventory, limit, False, forks, as_json)


# ------------------------------------------------------------------------------ GPU gate

DeadlineOpt = Annotated[
    float,
    typer.Option("--deadline", min=1, max=3600, help="Seconds a node may take (then it fails)."),
]


@app.command()
def facts(
    local: Annotated[bool, typer.Option("--local", help="This node, in-process.")] = False,
    root: Annotated[
        str, typer.Option("--root", help="The node's / (a simulated node's tree).")
    ] = "/",
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    deadline: DeadlineOpt = 60,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """GPU facts: every GPU amdsmi sees, the PCI bus view, host facts (a table per node;
    --json for everything)."""
    from agent.gpu.run import fleet_facts, local_facts

    with _errors(as_json):
        from agent.gpu.run import print_facts

        if local:
            f = local_facts(root)
            _emit(f, as_json, lambda: print_facts([f], {}, out))
            return
        _, inv = _prepare(None, inventory, limit)
        with _progress(len(inv.hosts), "facts", as_json) as prog:
            got, failures, _ = fleet_facts(inv, deadline, forks, prog)
        doc = {"nodes": [f.model_dump(mode="json") for f in got], "failed": failures}
        _emit(doc, as_json, lambda: print_facts(got, failures, out))
        raise typer.Exit(1 if failures else 0)


@app.command()
def check(
    local: Annotated[bool, typer.Option("--local", help="Check this node, in-process.")] = False,
    root: Annotated[str, typer.Option("--root", help="The node's / (with --local).")] = "/",
    facts_files: Annotated[
        list[str] | None,
        typer.Option("--facts", help="Evaluate saved facts (tuner facts --json) instead."),
    ] = None,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    deadline: DeadlineOpt = 60,
    min_gpus: Annotated[
        int | None, typer.Option("--min-gpus", min=0, help="Fail the gate below N usable GPUs.")
    ] = None,
    min_gpus_per_node: Annotated[
        int | None,
        typer.Option(
            "--min-gpus-per-node", min=1, max=64, help="Exclude a node with fewer usable GPUs."
        ),
    ] = None,
    max_excluded_nodes: Annotated[
        int | None,
        typer.Option(
            "--max-excluded-nodes", min=0, help="Fail the gate when more nodes are out at once."
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Health policy (default: checks/default.yml).")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the usable-GPU inventory here.")
    ] = None,
    forks: ForksOpt = None,
    show_gpus: Annotated[
        bool, typer.Option("--gpus", help="Show every GPU (grouped), not only excluded ones.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The pre-run health gate: per-GPU verdicts and the usable-GPU inventory.

    Exit 0 when the gate passes, 1 when it fails, 2 on bad input."""
    from agent.gpu.gate import GateOptions
    from agent.gpu.policy import load_policy
    from agent.gpu.run import (
        expected_gpus,
        fleet_facts,
        gate,
        load_facts_files,
        local_facts,
        print_inventory,
    )

    with _errors(as_json):
        if output is not None:
            from agent.paths import check_output_path

            output = str(check_output_path(output))
        pol = load_policy(policy)
        opts = GateOptions(
            min_gpus=min_gpus,
            min_gpus_per_node=min_gpus_per_node,
            max_excluded_nodes=max_excluded_nodes,
        )
        failures: dict[str, str] = {}
        expected: dict[str, int] = {}
        if facts_files:
            got = load_facts_files(facts_files)
            order = [f.name for f in got]
        elif local:
            got = [local_facts(root)]
            order = [got[0].name]
        else:
            _, inv = _prepare(None, inventory, limit)
            order = [h.name for h in inv.hosts]
            expected = expected_gpus(inv)
            with _progress(len(inv.hosts), "check", as_json) as prog:
                got, failures, _ = fleet_facts(inv, deadline, forks, prog)
        result = gate(got, failures, order, pol, opts, expected)
        if not facts_files and not local:
            from agent.gpu.gate import attach_addresses
            from agent.gpu.run import record_gate

            attach_addresses(result, inv.hosts)
            result.inventory = inv.path
            # nodes running the node agent keep their verdict (its textfile shows it)
            for w in record_gate(inv, result, got, forks):
                typer.echo(f"warning: {w}", err=True)
        doc = result.model_dump_inventory()
        if output:
            from agent.gpu.run import write_atomic

            try:
                write_atomic(output, doc)
            except OSError as e:
                tmp = Path(output).with_name(f".{Path(output).name}.tmp")
                tmp.unlink(missing_ok=True)
                raise TunerError(f"cannot write: {e.strerror or e}", field="--output") from e
        _emit(doc, as_json, lambda: print_inventory(result, out, show_gpus))
        raise typer.Exit(0 if result.gate.passed else 1)


# ------------------------------------------------------------------------------ ready


@app.command()
def ready(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    min_gpus: Annotated[
        int | None, typer.Option("--min-gpus", min=0, help="Not ready below N usable GPUs.")
    ] = None,
    min_gpus_per_node: Annotated[
        int | None,
        typer.Option(
            "--min-gpus-per-node", min=1, max=64, help="Exclude a node with fewer usable GPUs."
        ),
    ] = None,
    max_excluded_nodes: Annotated[
        int | None,
        typer.Option(
            "--max-excluded-nodes", min=0, help="Not ready when more nodes are out at once."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="A node that does not conform fails the answer."),
    ] = False,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Health policy (default: checks/default.yml).")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the usable-GPU inventory here (atomic)."),
    ] = None,
    deadline: DeadlineOpt = 60,
    forks: ForksOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """One pre-run answer: verify (OS + BIOS + cross-layer) and the GPU gate.

    Exit 0 only when the fleet conforms (drifted nodes excluded, or --strict) and the gate
    passes; 1 not ready; 2 bad input."""
    from agent import ready as rd
    from agent.gpu.gate import GateOptions
    from agent.gpu.policy import load_policy
    from agent.gpu.run import fleet_facts, write_atomic
    from agent.layers import bios

    with _errors(as_json):
        opts = bios.check_options(
            bios.BiosOptions(insecure=insecure, ca_bundle=ca_bundle, timeout=bmc_timeout)
        )
        pol = load_policy(policy)
        gopts = GateOptions(
            min_gpus=min_gpus,
            min_gpus_per_node=min_gpus_per_node,
            max_excluded_nodes=max_excluded_nodes,
        )
        prof, inv = _prepare(profile, inventory, limit)
        n = len(inv.hosts) * (3 if bios.has_bios(prof) else 2)
        with _progress(n, "ready", as_json) as prog:
            v = rd.verify_fleet(prof, inv, opts, forks, prog)
            got, failures, _ = fleet_facts(inv, deadline, forks, prog)
        r = rd.combine(
            prof.name,
            v,
            got,
            failures,
            [h.name for h in inv.hosts],
            pol,
            gopts,
            inv.hosts,
            inv.path,
            strict,
        )
        if output:
            write_atomic(output, r.gpus)
        _emit(r.dump(), as_json, lambda: rd.print_ready(r, out))
        raise typer.Exit(r.exit_code)


# ------------------------------------------------------------------------------ export


@app.command()
def export(
    from_: Annotated[
        str, typer.Option("--from", help="The report: tuner check/ready --output FILE (- stdin).")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="ansible, hostfile, slurm, prometheus, csv, mlperf-system or json.",
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write (atomically), or - for stdout.")
    ] = "-",
    per_node: Annotated[
        str | None,
        typer.Option("--per-node", help="prometheus: write one tuner_NODE.prom per node here."),
    ] = None,
    yaml_json: Annotated[
        bool,
        typer.Option(
            "--ansible-json", help="ansible: write JSON instead of YAML (default for *.json)."
        ),
    ] = False,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="mlperf-system: set a field (KEY=VALUE), repeatable."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the usable-GPU inventory where it is consumed (docs/export.md).

    Exit 0 written, 2 bad input (nothing written)."""
    from agent import export as ex

    with _errors(as_json):
        if fmt not in ex.FORMATS:
            raise BadInput(
                f"unknown format {fmt!r} (allowed: {', '.join(ex.FORMATS)})", field="--format"
            )
        if per_node is not None and fmt != "prometheus":
            raise BadInput("only with --format prometheus", field="--per-node")
        if field and fmt != "mlperf-system":
            raise BadInput("only with --format mlperf-system", field="--field")
        if as_json and output == "-" and per_node is None:
            raise BadInput("--json prints a summary: give --output FILE", field="--output")
        mlperf_fields: dict[str, str] = {}
        if field:
            from agent.export.mlperf import parse_fields

            mlperf_fields = parse_fields(field)
        inv = ex.load_report(from_)
        written: list[str] = []
        if per_node is not None:
            from agent.export import prometheus

            written = prometheus.write_per_node(inv, per_node)
        else:
            as_json_inv = yaml_json or output.endswith(".json")
            text = ex.render(inv, fmt, as_json=as_json_inv, mlperf={"fields": mlperf_fields})
            ex.write_text(output, text)
            if output != "-":
                written = [output]
        doc = {"format": fmt, "from": from_, "written": written, "usable_gpus": inv.usable_gpus}
        if output != "-" or per_node is not None:
            _emit(doc, as_json, lambda: err.print(f"wrote {', '.join(written)}"))


# ------------------------------------------------------------------------------ launch


@app.command(context_settings={"ignore_unknown_options": True})
def launch(
    from_: Annotated[
        str, typer.Option("--from", help="The report: tuner check/ready --output FILE.")
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(help="After --: the command to run on every node ({placeholders})."),
    ] = None,
    head: Annotated[
        str | None, typer.Option("--head", help="Head node (default: most usable GPUs, first).")
    ] = None,
    port: Annotated[
        int, typer.Option("--port", help="P (work down); P+1 carries results up.")
    ] = 29500,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            metavar="equal|weighted",
            help="Work shares: equal or weighted (by usable GPUs).",
        ),
    ] = "equal",
    recheck: Annotated[
        bool,
        typer.Option("--recheck/--no-recheck", help="Re-run the GPU gate before starting."),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each node's command and environment only.")
    ] = False,
    template: Annotated[
        str | None,
        typer.Option("--template", help="probe, vllm, or a YAML file (docs/launch.md)."),
    ] = None,
    probe_deadline: Annotated[
        float,
        typer.Option("--probe-deadline", min=1, max=3600, help="probe: seconds for all engines."),
    ] = 60.0,
    inventory: InventoryOpt = None,
    deadline: DeadlineOpt = 60,
    as_json: JsonOpt = False,
) -> None:
    """Start the run on exactly the usable GPUs: one process group per node over SSH.

    Exit 0 all nodes succeeded; 1 gate refused or a node failed (named); 2 bad input (no
    node touched); 130 interrupted (every node stopped)."""
    from agent.launch import run as lr

    with _errors(as_json):
        plan, targets = lr.prepare(
            from_,
            command or [],
            head=head,
            port=port,
            policy=policy,
            template=template,
            inventory=inventory,
            probe_deadline=probe_deadline,
        )
        if recheck and not dry_run:
            with _progress(plan.num_nodes, "recheck", as_json) as prog:
                plan, targets = lr.prepare(
                    from_,
                    command or [],
                    head=head,
                    port=port,
                    policy=policy,
                    template=template,
                    inventory=inventory,
                    probe_deadline=probe_deadline,
                    recheck_deadline=deadline,
                    progress=prog,
                )
        if dry_run:
            _emit(plan, as_json, lambda: lr.print_plan(plan, out))
            return
        lr.check_ports_free(plan.head_address, plan.port)
        report = lr.execute(plan, targets, lr.log_dir(), lr.echo_to(err if as_json else out))
        _emit(report, as_json, lambda: lr.print_report(report, out))
        raise typer.Exit(report.exit_code)


@sim_app.command("scenarios")
def sim_scenarios(as_json: JsonOpt = False) -> None:
    """List the GPU scenarios of the simulated fleet."""
    from agent.sim.scenarios import SCENARIOS

    items = [
        {"name": s.name, "nodes": s.nodes, "description": s.description, "expect": s.expect}
        for s in SCENARIOS.values()
    ]

    def human() -> None:
        from rich.table import Table

        t = Table()
        for c, just in (("scenario", "left"), ("nodes", "right"), ("description", "left")):
            t.add_column(c, justify=just)  # type: ignore[arg-type]
        for i in items:
            t.add_row(str(i["name"]), str(i["nodes"]), str(i["description"]))
        out.print(t)

    _emit({"scenarios": items}, as_json, human)


# ------------------------------------------------------------------------------ status


@app.command()
def status(
    state_dir: StateDirOpt = None,
    runs: Annotated[
        int, typer.Option("--runs", min=0, max=500, help="How many recent runs to list.")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """What is up: the simulated fleet of the state folder, and the last runs and their
    results (read from the state folder; no host is contacted)."""
    from agent import history
    from agent.paths import pid_alive
    from agent.sim import fleet as simfleet

    with _errors(as_json):
        sd = _state(state_dir)
        f = simfleet.load(sd)
        fleet: dict[str, Any] | None = None
        if f is not None:
            sshd = [n.sshd_pid for n in f.nodes if n.sshd_pid]
            fleet = {
                "nodes": len(f.nodes),
                "connection": f.connection,
                "scenario": f.scenario,
                "inventory": f.inventory,
                "sshd_running": sum(1 for p in sshd if pid_alive(p)),
                "sshd_expected": len(sshd),
                "bmcs": sum(1 for n in f.nodes if n.bmc_url),
                "bmc_running": bool(f.bmc_pid and pid_alive(f.bmc_pid)),
            }
        env_inv = os.environ.get("TUNER_INVENTORY")
        doc: dict[str, Any] = {
            "state_dir": str(sd),
            "inventory": env_inv or (f.inventory if f else None),
            "sim": fleet,
            "runs": history.recent(sd, runs),
        }

        def human() -> None:
            from rich.table import Table

            out.print(f"state folder: {sd}")
            if fleet is None:
                out.print("simulated fleet: none (tuner sim up)")
            else:
                up = fleet["sshd_running"] == fleet["sshd_expected"] and (
                    fleet["bmc_running"] or not fleet["bmcs"]
                )
                parts = [
                    f"{_n(fleet['nodes'], 'node')} ({fleet['connection']}, "
                    f"scenario {fleet['scenario']})",
                    "up" if up else "[bold red]partly down[/]",
                ]
                if fleet["sshd_expected"]:
                    parts.append(f"sshd {fleet['sshd_running']}/{fleet['sshd_expected']}")
                if fleet["bmcs"]:
                    parts.append("BMCs " + ("running" if fleet["bmc_running"] else "NOT running"))
                out.print("simulated fleet: " + ", ".join(parts))
            out.print(
                f"inventory: {doc['inventory'] or 'none'}"
                + (" ($TUNER_INVENTORY)" if env_inv else "")
            )
            if not doc["runs"]:
                out.print("runs: none yet")
                return
            t = Table(title=f"last {_n(len(doc['runs']), 'run')} (newest first)")
            for c in ("when (UTC)", "command", "exit", "took", "result"):
                t.add_column(c)
            for r in doc["runs"]:
                rc = r.get("exit_code")
                t.add_row(
                    str(r.get("at", "")).replace("T", " ").rstrip("Z"),
                    " ".join(str(a) for a in r.get("args", [])) or str(r.get("command")),
                    f"[green]{rc}[/]" if rc == 0 else f"[red]{rc}[/]",
                    f"{r.get('seconds', 0):.1f} s",
                    _result_text(r.get("summary") or {}),
                )
            out.print(t)

        _emit(doc, as_json, human)


def _result_text(s: dict[str, Any]) -> str:
    if "by_status" in s:
        return ", ".join(f"{n} {k}" for k, n in sorted(s["by_status"].items()))
    return ", ".join(f"{k} {v}" for k, v in s.items() if v is not None)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"tuner {version('tuner')}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    _: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print tuner's version and exit."
        ),
    ] = False,
) -> None:
    """Tune MI355X inference nodes: OS and BIOS profiles, health gate, fleet."""


def main() -> None:
    import time

    from agent.clihelp import apply_conventions

    # tuner uses no pydantic plugins; looking for them reads every installed package's metadata
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    cmd = typer.main.get_command(app)
    apply_conventions(cmd)
    start, rc = time.monotonic(), 1
    try:
        cmd(prog_name="tuner")
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise
    finally:
        if "_TUNER_COMPLETE" not in os.environ:
            from agent import history
            from agent.paths import state_dir

            doc = _last_doc[0] if _last_doc else None
            history.record(state_dir(), sys.argv[1:], rc, time.monotonic() - start, doc)


if __name__ == "__main__":
    main()
