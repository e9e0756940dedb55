"""`tuner sim ...`: the simulated fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.cli.common import (
    HELP,
    emit,
    errors,
    out,
    phases,
    plural,
    state_folder,
)
from agent.cli.options import (
    JsonOpt,
    StateDirOpt,
)
from agent.errors import BadInput

sim_app = typer.Typer(
    no_args_is_help=True,
    help="The simulated fleet (a lab for profiles).",
    **HELP,
)


@sim_app.command("up")
def sim_up(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes", "-n", min=1, max=2048, help="How many nodes (default: the scenario's, 4)."
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
    nic_model: Annotated[
        str,
        typer.Option(
            "--nic-model",
            help="Scale-out NICs of the nodes, a port per GPU (docs/sim-nic.md).",
        ),
    ] = "pollara-400",
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
    from_capture: Annotated[
        list[str] | None,
        typer.Option(
            "--from-capture",
            metavar="BUNDLE",
            help="Build one node from each capture bundle (tuner capture): its tree, GPU "
            "answers and BMC resources (docs/sim-capture.md).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a simulated fleet: node trees, sshd and a Redfish BMC per node, an inventory."""
    from agent.sim import fleet as simfleet
    from agent.sim.nodetree import Topology

    with errors(as_json):
        if connection not in ("auto", "ssh", "local"):
            raise BadInput("must be auto, ssh or local", field="--connection")
        captures = None
        if from_capture:
            from agent.capture.bundle import read_bundle

            if scenario != "healthy":
                raise BadInput(
                    "--scenario and --from-capture exclude each other (a bundle is its GPU state)",
                    field="--scenario",
                )
            captures = [read_bundle(b) for b in from_capture]  # all checked before anything
        sd = state_folder(state_dir)
        f = simfleet.up(
            sd,
            nodes,
            connection,
            Topology(cores_per_socket=cores_per_socket),
            scenario,
            bmc_vendor=bmc_vendor,
            bmc_tls=bmc_tls,
            bmc_reset_delay=bmc_reset_delay,
            progress=phases("sim up", as_json),
            runtime=runtime,
            captures=captures,
            nic_model=nic_model,
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
                    **({"bundle": n.bundle, "defaults": n.defaults} if n.bundle else {}),
                }
                for n in f.nodes
            ],
            "bmc_pid": f.bmc_pid,
        }

        def human() -> None:
            import shlex

            out.print(
                f"{plural(len(f.nodes), 'simulated node')} up ({f.connection}); "
                f"inventory: {f.inventory}"
            )
            out.print(f"GPU scenario: {f.scenario}")
            for n in f.nodes:
                if n.bundle:
                    out.print(f"{n.name}: from {n.bundle}")
                    for d in n.defaults:
                        out.print(f"  default used: {d}")
            sd_arg = ""
            if state_dir:  # the commands below must find this fleet, not the default one
                out.print(f"next: export TUNER_STATE_DIR={shlex.quote(str(sd))}")
                sd_arg = f" --state-dir {shlex.quote(str(sd))}"
            if f.runtime == "bare":
                out.print("next: tuner provision (the nodes' runtime for tuner's GPU tasks)")
            out.print("next: tuner apply --profile inference --check; tuner check; tuner status")
            out.print(f"when done: tuner sim down{sd_arg}")

        emit(data, as_json, human)


@sim_app.command("down")
def sim_down(state_dir: StateDirOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the simulated fleet and remove its files."""
    from agent.sim import fleet as simfleet

    with errors(as_json):
        sd = state_folder(state_dir)
        f = simfleet.down(sd, progress=phases("sim down", as_json))
        n = len(f.nodes) if f else 0
        emit(
            {"removed": n, "state_dir": str(sd)},
            as_json,
            lambda: out.print(
                f"removed {plural(n, 'simulated node')} from {sd}" if n else "no simulated fleet"
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

    with errors(as_json):
        f = simfleet.load(state_folder(state_dir))
        if f is None:
            raise BadInput("no simulated fleet is up (tuner sim up)", field="--state-dir")
        known = {n.name: n for n in f.nodes}
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            raise BadInput(f"no such simulated node: {', '.join(unknown)}", field="NAMES")
        picked = [known[n] for n in names] if names else f.nodes
        for n in picked:
            reboot(Path(n.root))
        emit(
            {"rebooted": [n.name for n in picked]},
            as_json,
            lambda: out.print(f"rebooted {plural(len(picked), 'node')}"),
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
    count: Annotated[
        int,
        typer.Option(
            "--count",
            min=1,
            max=100000,
            help="Deliver the event this many times, back to back (an event storm, as "
            "`udevadm trigger` replays events).",
        ),
    ] = 1,
    state_dir: StateDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Play the kernel on a simulated node: change its tree as the kernel would and deliver
    the uevent to the node agent (docs/sim-agent.md)."""
    from agent.sim import fleet as simfleet
    from agent.sim.events import event

    with errors(as_json):
        f = simfleet.load(state_folder(state_dir))
        if f is None:
            raise BadInput("no simulated fleet is up (tuner sim up)", field="--state-dir")
        node = next((n for n in f.nodes if n.name == name), None)
        if node is None:
            raise BadInput(f"no such simulated node: {name}", field="NAME")
        for _ in range(count):
            ev = event(Path(node.root), kind, arg)
        times = f" x{count}" if count > 1 else ""
        emit(
            {"node": name, "event": ev.to_json(), "count": count},
            as_json,
            lambda: out.print(f"{name}: {ev.action} {ev.device_path} ({ev.subsystem}){times}"),
        )


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

    emit({"scenarios": items}, as_json, human)
