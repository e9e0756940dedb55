"""`tuner apply|verify|rollback`: the layers (kernel command line, BIOS, OS)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agent.cli.common import (
    app,
    emit,
    err,
    errors,
    out,
    prepare,
)
from agent.cli.options import (
    BMC_TIMEOUT,
    LOCK_TIMEOUT_S,
    RESET_TIMEOUT,
    AllowBootCriticalOpt,
    BatchSizeOpt,
    BmcTimeoutOpt,
    CaBundleOpt,
    DetailOpt,
    ExecutorsOpt,
    ForksOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    LayerOpt,
    LimitOpt,
    LockTimeoutOpt,
    MaxFailedOpt,
    ProfileOpt,
    RebootAllOpt,
    RebootOpt,
    ResetTimeoutOpt,
)
from agent.cli.progress import progress


def _warn_insecure(insecure: bool, ca_bundle: str | None) -> None:
    """Checks shared by the commands that talk to BMCs (docs/security.md)."""
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


def run_options(
    *,
    forks: int | None = None,
    lock_timeout: float | None = None,
    reboot: str = "never",
    reset_timeout: float = RESET_TIMEOUT,
    insecure: bool = False,
    ca_bundle: str | None = None,
    bmc_timeout: float = BMC_TIMEOUT,
    allow_boot_critical: list[str] | None = None,
) -> Any:
    """The run's options (a layers.base.RunOptions) from the command's flags, the secrets
    taken out of the environment first, each layer's own options validated."""
    from agent import layers
    from agent.layers.base import RunOptions

    flags: dict[str, Any] = {
        "insecure": insecure,
        "ca_bundle": ca_bundle,
        "bmc_timeout": bmc_timeout,
        "reset_timeout": reset_timeout,
        "allow_boot_critical": list(allow_boot_critical or []),
    }
    opts = RunOptions(
        forks=forks,
        lock_timeout=lock_timeout,
        reboot=reboot,
        reboot_timeout=reset_timeout,
        layers={cls.name: cls.from_cli(flags) for cls in layers.classes()},
    )
    # The BMC password leaves the environment before any Ansible run records it, whatever
    # the layers (ansible-runner writes the environment into each run's artifacts).
    opts.credentials.take(*layers.secrets())
    opts.check()
    _warn_insecure(insecure, ca_bundle)
    return opts


def _layers_run(
    command: str,
    layer: str,
    profile: str | None,
    inventory: str | None,
    limit: str | None,
    options: Any,
    as_json: bool,
    *,
    reboot_all_hosts: bool = False,
    detail: bool = False,
    **run_kw: Any,
) -> None:
    """Validate, run the selected layers (agent/layers/run.py), print, exit with the code."""
    from agent import layers
    from agent.inventory import check_reboot_scope
    from agent.layers.base import Run
    from agent.layers.run import execute, print_report

    picked = layers.make(layer, options.layers)
    prof, inv = prepare(profile, inventory, limit)
    if command in ("apply", "rollback") and any(p.reboot != "none" for p in picked):
        check_reboot_scope(inv, options.reboot, bool(run_kw.get("check")), reboot_all_hosts)
    run = Run(command=command, profile=prof, inv=inv, options=options, **run_kw)  # type: ignore[arg-type]
    with progress(len(inv.hosts) * len(picked), command, as_json) as prog:
        run.progress = prog
        r = execute(run, picked)
    emit(r, as_json, lambda: print_report(r, picked, out, detail))
    raise typer.Exit(r.exit_code)


@app.command()
def apply(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
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
    bmc_timeout: BmcTimeoutOpt = BMC_TIMEOUT,
    reset_timeout: ResetTimeoutOpt = RESET_TIMEOUT,
    reboot_all_hosts: RebootAllOpt = False,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT_S,
    allow_boot_critical: AllowBootCriticalOpt = None,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a profile: BIOS through each host's BMC (Redfish), then OS (through Ansible)."""
    with errors(as_json):
        opts = run_options(
            forks=forks,
            lock_timeout=lock_timeout,
            reboot=reboot,
            reset_timeout=reset_timeout,
            insecure=insecure,
            ca_bundle=ca_bundle,
            bmc_timeout=bmc_timeout,
            allow_boot_critical=allow_boot_critical,
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
            batch_size=batch_size,
            max_failed=max_failed,
            reboot_all_hosts=reboot_all_hosts,
            detail=detail,
        )


@app.command()
def verify(
    profile: ProfileOpt,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    forks: ForksOpt = None,
    layer: LayerOpt = "all",
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = BMC_TIMEOUT,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare every host's OS and BIOS with a profile, and the OS with the BIOS.

    Exit 0 only if all conform; `pending` (BIOS values set, waiting for a reset) exits 1."""
    with errors(as_json):
        opts = run_options(
            forks=forks, insecure=insecure, ca_bundle=ca_bundle, bmc_timeout=bmc_timeout
        )
        _layers_run("verify", layer, profile, inventory, limit, opts, as_json, detail=detail)


@app.command()
def rollback(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would be restored.")] = False,
    forks: ForksOpt = None,
    layer: LayerOpt = "all",
    reboot: RebootOpt = "never",
    batch_size: BatchSizeOpt = None,
    max_failed: MaxFailedOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = BMC_TIMEOUT,
    reset_timeout: ResetTimeoutOpt = RESET_TIMEOUT,
    reboot_all_hosts: RebootAllOpt = False,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT_S,
    detail: DetailOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore the values each host had before tuner first wrote to it (OS files, BIOS).

    BIOS values restored without --reboot if-needed are pending until the next reboot."""
    with errors(as_json):
        opts = run_options(
            forks=forks,
            lock_timeout=lock_timeout,
            reboot=reboot,
            reset_timeout=reset_timeout,
            insecure=insecure,
            ca_bundle=ca_bundle,
            bmc_timeout=bmc_timeout,
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
            batch_size=batch_size,
            max_failed=max_failed,
            reboot_all_hosts=reboot_all_hosts,
            detail=detail,
        )
