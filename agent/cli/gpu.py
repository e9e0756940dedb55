"""`tuner facts|check|ready`: GPU facts, the health gate, the pre-run answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.common import (
    app,
    emit,
    errors,
    out,
    prepare,
)
from agent.cli.options import (
    BMC_TIMEOUT,
    BmcTimeoutOpt,
    CaBundleOpt,
    DeadlineOpt,
    ExecutorsOpt,
    ForksOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    LimitOpt,
    ProfileOpt,
)
from agent.cli.progress import progress
from agent.errors import BadInput, TunerError

# Active diagnostics (docs/diagnostics.md): the same options on check and ready.
LevelOpt = Annotated[
    int,
    typer.Option(
        "--level",
        min=1,
        max=3,
        help="1: telemetry (amdsmi); 2: also AMD's test tools per node (RVS, rccl-tests, "
        "TransferBench), a few minutes; 3: also the long stress and power runs and an RCCL "
        "all-reduce across the nodes (docs/diagnostics.md).",
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget",
        min=10,
        max=86400,
        help="Seconds the level 2/3 tests may take per node (the most telling first; "
        "what does not fit is listed as skipped).",
    ),
]
DiagPolicyOpt = Annotated[
    str | None,
    typer.Option("--diag-policy", help="Diagnostics policy (default: checks/diagnostics.yml)."),
]


def diag_setup(level: int, budget: float | None, diag_policy: str | None) -> tuple[Any, Any]:
    """The diagnostics policy and plan for `--level` (None, None at level 1); bad input
    (a budget or policy without a level, a bad policy file) raises before any host."""
    if level > 1:
        from agent.diag.plan import plan as diag_plan
        from agent.diag.policy import load_diag_policy

        dpol = load_diag_policy(diag_policy)
        return dpol, diag_plan(dpol, level, budget)
    if budget is not None or diag_policy is not None:
        raise BadInput("only with --level 2 or 3", field="--budget/--diag-policy")
    return None, None


def diag_fleet(
    inv: Any,
    result: Any,
    got: Any,
    pol: Any,
    opts: Any,
    dpol: Any,
    dplan: Any,
    forks: int | None,
    as_json: bool,
) -> Any:
    """Levels 2/3 over the fleet on the GPUs level 1 left usable; the joined inventory."""
    from agent.diag import run as drun

    todo = drun.targets(result.nodes)
    with progress(len(todo), f"diagnostics --level {dplan.level}", as_json) as prog:
        rep = drun.run_fleet(inv, dplan, dpol, todo, forks, prog)
    return drun.join(result, rep, got, pol, opts)


@app.command()
def facts(
    local: Annotated[bool, typer.Option("--local", help="This node, in-process.")] = False,
    root: Annotated[
        str, typer.Option("--root", help="The node's / (a simulated node's tree).")
    ] = "/",
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    deadline: DeadlineOpt = 60,
    forks: ForksOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """GPU facts: every GPU amdsmi sees, the PCI bus view, host facts (a table per node;
    --json for everything)."""
    from agent.gpu.run import fleet_facts, local_facts

    with errors(as_json):
        from agent.gpu.run import print_facts

        if local:
            f = local_facts(root)
            emit(f, as_json, lambda: print_facts([f], {}, out))
            return
        _, inv = prepare(None, inventory, limit)
        with progress(len(inv.hosts), "facts", as_json) as prog:
            got, failures, _ = fleet_facts(inv, deadline, forks, prog)
        doc = {"nodes": [f.model_dump(mode="json") for f in got], "failed": failures}
        emit(doc, as_json, lambda: print_facts(got, failures, out))
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
    executors: ExecutorsOpt = None,
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
    level: LevelOpt = 1,
    budget: BudgetOpt = None,
    diag_policy: DiagPolicyOpt = None,
    slurm: Annotated[
        bool,
        typer.Option(
            "--slurm",
            help="With --local, as Slurm's HealthCheckProgram or Prolog: drain this node "
            "(reason 'tuner: ...') when it fails, resume it when it passes and tuner drained "
            "it; an administrator's drain is left alone (docs/slurm-gate.md).",
        ),
    ] = False,
    node: Annotated[
        str | None,
        typer.Option(
            "--node", help="With --slurm: this node's Slurm name (default: SLURMD_NODENAME)."
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1,
            max=3600,
            help="With --slurm: seconds the check may take; then it is killed and the node "
            "drained (Slurm kills a HealthCheckProgram at 60 s).",
        ),
    ] = 40.0,
    as_json: JsonOpt = False,
) -> None:
    """The pre-run health gate: per-GPU verdicts and the usable-GPU inventory.

    Exit 0 when the gate passes, 1 when it fails, 2 on bad input."""
    if slurm:
        _slurm_health(
            local, root, policy, min_gpus_per_node, node, timeout, level, facts_files, as_json
        )
        return
    from agent.gpu.gate import GateOptions
    from agent.gpu.policy import load_policy
    from agent.gpu.run import (
        expected_gpus,
        fleet_facts,
        gate,
        load_facts_files,
        print_inventory,
    )

    with errors(as_json):
        if output is not None:
            from agent.paths import check_output_path

            output = str(check_output_path(output))
        pol = load_policy(policy)
        opts = GateOptions(
            min_gpus=min_gpus,
            min_gpus_per_node=min_gpus_per_node,
            max_excluded_nodes=max_excluded_nodes,
        )
        if level > 1 and facts_files:
            raise BadInput(
                "levels 2 and 3 run AMD's tools on the nodes: not with --facts", field="--level"
            )
        dpol, dplan = diag_setup(level, budget, diag_policy)
        failures: dict[str, str] = {}
        expected: dict[str, int] = {}
        if facts_files:
            got = load_facts_files(facts_files)
            order = [f.name for f in got]
        elif local:
            from agent.gpu_local import collect

            got = [collect(root)]
            order = [got[0].name]
        else:
            _, inv = prepare(None, inventory, limit)
            order = [h.name for h in inv.hosts]
            expected = expected_gpus(inv)
            with progress(len(inv.hosts), "check", as_json) as prog:
                got, failures, _ = fleet_facts(inv, deadline, forks, prog)
        result = gate(got, failures, order, pol, opts, expected)
        if dpol is not None and dplan is not None:
            if local:  # this node, no Ansible (agent/diag/local.py)
                from agent.diag.local import diag_local

                result = diag_local(root, result, got, pol, opts, dpol, dplan)
            else:
                result = diag_fleet(inv, result, got, pol, opts, dpol, dplan, forks, as_json)
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
        emit(doc, as_json, lambda: print_inventory(result, out, show_gpus))
        raise typer.Exit(0 if result.gate.passed else 1)


def _slurm_health(
    local: bool,
    root: str,
    policy: str | None,
    min_gpus_per_node: int | None,
    node: str | None,
    timeout: float,
    level: int,
    facts_files: list[str] | None,
    as_json: bool,
) -> None:
    """`tuner check --local --slurm` (agent/slurmgate.py). Exit 0 passed, 1 failed (the node
    drained, or left drained by its administrator), 2 bad input."""
    from agent import slurmgate

    with errors(as_json):
        if not local or facts_files or level != 1:
            raise BadInput(
                "--slurm checks this node at level 1: with --local, without --facts/--level",
                field="--slurm",
            )
        name = slurmgate.node_name(node)
        argv = ["--root", root]
        if policy is not None:
            from agent.gpu.policy import load_policy

            load_policy(policy)  # bad input before anything runs
            argv += ["--policy", str(Path(policy).resolve())]
        if min_gpus_per_node is not None:
            argv += ["--min-gpus-per-node", str(min_gpus_per_node)]
        r = slurmgate.health(name, argv, timeout)
        doc = r.model_dump(mode="json")
        emit(doc, as_json, lambda: out.print(slurmgate.describe(r), markup=False, soft_wrap=True))
        raise typer.Exit(0 if r.passed else 1)


@app.command()
def ready(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
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
    bmc_timeout: BmcTimeoutOpt = BMC_TIMEOUT,
    level: LevelOpt = 1,
    budget: BudgetOpt = None,
    diag_policy: DiagPolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One pre-run answer: verify (OS + BIOS + cross-layer) and the GPU gate (with
    --level 2|3, AMD's test tools too, on the GPUs that pass level 1 on conforming nodes).

    Exit 0 only when the fleet conforms (drifted nodes excluded, or --strict) and the gate
    passes; 1 not ready; 2 bad input."""
    from agent import ready as rd
    from agent.cli.tuning import run_options
    from agent.gpu.gate import GateOptions
    from agent.gpu.policy import load_policy
    from agent.gpu.run import fleet_facts, write_atomic

    with errors(as_json):
        opts = run_options(
            forks=forks, insecure=insecure, ca_bundle=ca_bundle, bmc_timeout=bmc_timeout
        )
        pol = load_policy(policy)
        gopts = GateOptions(
            min_gpus=min_gpus,
            min_gpus_per_node=min_gpus_per_node,
            max_excluded_nodes=max_excluded_nodes,
        )
        dpol, dplan = diag_setup(level, budget, diag_policy)
        prof, inv = prepare(profile, inventory, limit)
        n = len(inv.hosts) * (1 + rd.verify_steps(prof, inv))
        with progress(n, "ready", as_json) as prog:
            opts.progress = prog
            v = rd.verify_fleet(prof, inv, opts)
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
            None
            if dpol is None
            else lambda res: diag_fleet(inv, res, got, pol, gopts, dpol, dplan, forks, as_json),
        )
        if output:
            write_atomic(output, r.gpus)
        emit(r.dump(), as_json, lambda: rd.print_ready(r, out))
        raise typer.Exit(r.exit_code)
