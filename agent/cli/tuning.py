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
    BatchSizeOpt,
    BmcTimeoutOpt,
    CaBundleOpt,
    DetailOpt,
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
    prof, inv = prepare(profile, inventory, limit)
    if command in ("apply", "rollback") and {"bios", "cmdline"} & set(layers.names(layer)):
        check_reboot_scope(inv, bios_options.reboot, bool(run_kw.get("check")), reboot_all_hosts)
    run = Run(command=command, profile=prof, inv=inv, **run_kw)  # type: ignore[arg-type]
    with progress(len(inv.hosts) * len(picked), command, as_json) as prog:
        run.progress = prog
        r = execute(run, picked)
    r.security = run_security(bios_options.insecure)
    emit(r, as_json, lambda: print_report(r, picked, out, detail))
    raise typer.Exit(r.exit_code)


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
    with errors(as_json):
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

    with errors(as_json):
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
    with errors(as_json):
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
