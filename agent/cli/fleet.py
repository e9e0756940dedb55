"""`tuner export|launch|status`: the usable-GPU inventory where it is consumed."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from agent.cli.common import (
    app,
    emit,
    err,
    errors,
    out,
    plural,
    state_folder,
)
from agent.cli.options import (
    DeadlineOpt,
    InventoryOpt,
    JsonOpt,
    StateDirOpt,
)
from agent.cli.progress import progress
from agent.errors import BadInput


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

    with errors(as_json):
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
        from agent.loaders import gc_paused

        written: list[str] = []
        with gc_paused():  # no cycles to free; the collector's passes cost (docs/performance.md)
            inv = ex.load_report(from_)
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
            emit(doc, as_json, lambda: err.print(f"wrote {', '.join(written)}"))


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
    gate_policy: Annotated[
        str | None,
        typer.Option(
            "--gate-policy",
            help="Health policy of the recheck (default: the report's, if one of tuner's).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each node's command and environment only.")
    ] = False,
    template: Annotated[
        str | None,
        typer.Option("--template", help="probe, vllm, sglang, or a YAML file (docs/launch.md)."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            metavar="ssh|slurm|k8s",
            help="ssh: tuner starts the nodes; slurm: an sbatch script; k8s: manifests "
            "(--k8s-form).",
        ),
    ] = "ssh",
    k8s_form: Annotated[
        str,
        typer.Option(
            "--k8s-form",
            metavar="lws|job",
            help="k8s: a LeaderWorkerSet, or where LWS is not installed an Indexed Job, a head "
            "Job and a headless Service.",
        ),
    ] = "lws",
    image: Annotated[
        str | None, typer.Option("--image", help="k8s: the container image to run.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="k8s: the namespace of the manifests.")
    ] = None,
    tp: Annotated[
        int | None,
        typer.Option("--tp", help="Tensor parallel size (default: COMMAND's, else 1)."),
    ] = None,
    pp: Annotated[
        int | None,
        typer.Option("--pp", help="Pipeline parallel size (default: COMMAND's, else 1)."),
    ] = None,
    ep: Annotated[
        int | None,
        typer.Option("--ep", help="Expert parallel size (default: COMMAND's, else 1: off)."),
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

    with errors(as_json):
        if backend == "k8s" and not dry_run:
            raise BadInput(
                "tuner writes the manifests and does not apply them: use --dry-run and pipe "
                "them to kubectl apply -f -",
                field="--backend",
            )
        plan, targets = lr.prepare(
            from_,
            command or [],
            head=head,
            port=port,
            policy=policy,
            template=template,
            inventory=inventory,
            probe_deadline=probe_deadline,
            tp=tp,
            pp=pp,
            ep=ep,
            backend=backend,
            k8s_form=k8s_form,
        )
        if recheck and not dry_run:
            with progress(plan.num_nodes, "recheck", as_json) as prog:
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
                    gate_policy=gate_policy,
                    tp=tp,
                    pp=pp,
                    ep=ep,
                    backend=backend,
                    k8s_form=k8s_form,
                )
        if backend != "ssh":
            _launch_scheduled(plan, backend, image, namespace, dry_run, as_json, k8s_form)
            return
        if dry_run:
            emit(plan, as_json, lambda: lr.print_plan(plan, out))
            return
        lr.check_ports_free(plan.head_address, plan.port)
        report = lr.execute(plan, targets, lr.log_dir(), lr.echo_to(err if as_json else out))
        emit(report, as_json, lambda: lr.print_report(report, out))
        raise typer.Exit(report.exit_code)


def _launch_scheduled(
    plan: Any,
    backend: str,
    image: str | None,
    namespace: str | None,
    dry_run: bool,
    as_json: bool,
    k8s_form: str = "lws",
) -> None:
    """--backend slurm|k8s: the plan rendered for the scheduler (agent/launch/backends.py)."""
    import re

    from agent.errors import BadInput
    from agent.launch import backends
    from agent.launch import run as lr

    if backend == "k8s":
        if not image or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}", image):
            raise BadInput("give the container image (--image REGISTRY/NAME:TAG)", field="--image")
        if namespace is not None and not re.fullmatch(
            r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace
        ):
            raise BadInput(
                f"{namespace!r} is not a namespace name (RFC 1123 label)", field="--namespace"
            )
        docs = backends.k8s_manifests(plan, image, namespace, k8s_form)
        if as_json:
            emit(
                {
                    "command": "launch",
                    "backend": "k8s",
                    "form": k8s_form,
                    "plan": plan.model_dump(),
                    "manifests": docs,
                },
                True,
                lambda: None,
            )
        else:
            out.print(
                backends.k8s_yaml(docs), markup=False, highlight=False, soft_wrap=True, end=""
            )
        return
    script = backends.slurm_script(plan)
    if dry_run:
        if as_json:
            emit(
                {
                    "command": "launch",
                    "backend": "slurm",
                    "plan": plan.model_dump(),
                    "script": script,
                },
                True,
                lambda: None,
            )
        else:
            out.print(script, markup=False, highlight=False, soft_wrap=True, end="")
        return
    logs = lr.log_dir()
    job = lr.submit_slurm(script, logs / "slurm-%j.out")
    names = [n.name for n in plan.nodes]
    (err if as_json else out).print(
        f"submitted Slurm job {job} on {len(names)} nodes; following it (Ctrl-C cancels it)",
        markup=False,
    )
    end = lr.follow_slurm(job)
    output = logs / f"slurm-{job}.out"
    doc = {"command": "launch", "backend": "slurm", **end, "nodes": names, "output": str(output)}
    doc["probe"] = lr.probe_result(output)
    said = f"Slurm job {job}: {end['state']} (exit {end.get('exit_code', '?')}); output {output}"
    emit(doc, as_json, lambda: out.print(said, markup=False))
    if end.get("interrupted"):
        raise typer.Exit(130)
    raise typer.Exit(0 if end["state"] == "COMPLETED" else 1)


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

    with errors(as_json):
        sd = state_folder(state_dir)
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
        }
        doc["runs"], doc["runs_skipped"] = history.recent_and_skipped(sd, runs)

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
                    f"{plural(fleet['nodes'], 'node')} ({fleet['connection']}, "
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
            if doc["runs_skipped"]:
                out.print(
                    f"run history: {plural(doc['runs_skipped'], 'line')} skipped (not an "
                    "entry: bad JSON or wrong types)"
                )
            if not doc["runs"]:
                out.print("runs: none yet")
                return
            t = Table(title=f"last {plural(len(doc['runs']), 'run')} (newest first)")
            for c in ("when (UTC)", "command", "exit", "took", "result"):
                t.add_column(c)
            from rich.text import Text

            for r in doc["runs"]:  # the history is a file: its words are text, not markup
                rc = r.get("exit_code")
                t.add_row(
                    Text(str(r.get("at", "")).replace("T", " ").rstrip("Z")),
                    Text(" ".join(str(a) for a in r.get("args", [])) or str(r.get("command"))),
                    f"[green]{rc}[/]" if rc == 0 else f"[red]{rc}[/]",
                    f"{r.get('seconds', 0):.1f} s",
                    Text(_result_text(r.get("summary") or {})),
                )
            out.print(t)

        emit(doc, as_json, human)


def _result_text(s: dict[str, Any]) -> str:
    if "by_status" in s:
        return ", ".join(f"{n} {k}" for k, n in sorted(s["by_status"].items()))
    return ", ".join(f"{k} {v}" for k, v in s.items() if v is not None)
