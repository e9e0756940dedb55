"""`tuner capture`: one read-only bundle per node (docs/capture.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.common import app, emit, errors, out, prepare
from agent.cli.options import (
    BmcTimeoutOpt,
    CaBundleOpt,
    DeadlineOpt,
    ExecutorsOpt,
    ForksOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    LimitOpt,
)
from agent.cli.progress import progress
from agent.errors import BadInput


@app.command()
def capture(
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Folder to write one bundle per node in."
        ),
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="This node, in-process.")] = False,
    root: Annotated[str, typer.Option("--root", help="The node's / (with --local).")] = "/",
    name: Annotated[
        str | None,
        typer.Option("--name", help="The node's name (with --local; default: hostname)."),
    ] = None,
    archive: Annotated[
        bool, typer.Option("--archive", help="Write each bundle as NAME.tar.gz, not a folder.")
    ] = False,
    redact: Annotated[
        bool,
        typer.Option(
            "--redact-serials",
            help="Replace serials, UUIDs and MACs by tokens (the same value, the same token).",
        ),
    ] = False,
    read: Annotated[
        list[str] | None,
        typer.Option(
            "--read", metavar="BUNDLE", help="Check a bundle against its manifest and summarise it."
        ),
    ] = None,
    bmc_url: Annotated[
        str | None, typer.Option("--bmc-url", metavar="URL", help="This node's BMC (with --local).")
    ] = None,
    bmc_username: Annotated[
        str | None,
        typer.Option("--bmc-username", metavar="USER", help="BMC user (with --bmc-url)."),
    ] = None,
    bmc_password_file: Annotated[
        str | None,
        typer.Option(
            "--bmc-password-file",
            metavar="FILE",
            help="File whose first line is the BMC password (else $TUNER_BMC_PASSWORD).",
        ),
    ] = None,
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    executors: ExecutorsOpt = None,
    deadline: DeadlineOpt = 120,
    forks: ForksOpt = None,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    bmc_timeout: BmcTimeoutOpt = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Capture nodes for triage and for the simulator: /proc and /sys subsets, versions,
    amdgpu kernel log lines, every amdsmi answer, the BMC's BIOS resources. Read only.

    Exit 0 when every node was captured, 1 when a node could not be, 2 on bad input (a
    bundle that --read finds unusable included)."""
    with errors(as_json):
        if read:
            _read(read, as_json)
            return
        if output is None:
            raise BadInput("say where to write the bundles", field="--output")
        from agent.capture import run

        out_dir = Path(output).expanduser()
        if local:
            bmc = _local_bmc(bmc_url, bmc_username, bmc_password_file, insecure, ca_bundle)
            if bmc is not None:
                bmc.timeout = bmc_timeout
            host = name or (os.uname().nodename if root == "/" else Path(root).name)
            if not Path(root).is_dir():
                raise BadInput(f"{root} is not a folder", field="--root")
            run.check_targets(out_dir, [host], archive)
            pieces = [run.capture_local(root, host, None, bmc)]
            failures: dict[str, str] = {}
        else:
            if bmc_url or bmc_username or bmc_password_file or name:
                raise BadInput(
                    "--bmc-url, --bmc-username, --bmc-password-file and --name go with "
                    "--local; for the fleet the inventory names each host's BMC",
                    field="--bmc-url",
                )
            _, inv = prepare(None, inventory, limit)
            run.check_targets(out_dir, [h.name for h in inv.hosts], archive)
            opts: dict[str, Any] = {
                "tuner_bmc_insecure": insecure,
                "tuner_bmc_timeout": bmc_timeout,
            }
            if ca_bundle:
                opts["tuner_bmc_ca_bundle"] = str(Path(ca_bundle).resolve())
            with progress(len(inv.hosts), "capture", as_json) as prog:
                pieces, failures, _ = run.capture_fleet(inv, deadline, forks, prog, opts)
        bundles = run.build(pieces, redact)
        written = []
        for p in pieces:
            from agent.capture.bundle import write_bundle

            files = bundles[p.host]
            path = write_bundle(out_dir, p.host, files, archive)
            written.append(
                {
                    "host": p.host,
                    "bundle": str(path),
                    "files": len(files),
                    "bytes": sum(len(d) for d in files.values()),
                    "archive_bytes": path.stat().st_size if archive else None,
                    "seconds": round(p.seconds, 3),
                    "not_read": len(p.not_read),
                }
            )
        doc = {"bundles": written, "failed": failures, "redacted": redact}
        emit(doc, as_json, lambda: _print(written, failures))
        raise typer.Exit(1 if failures else 0)


def _local_bmc(
    url: str | None, user: str | None, pw_file: str | None, insecure: bool, ca: str | None
) -> Any:
    from agent.capture.run import BmcTarget

    if url is None:
        if user or pw_file:
            raise BadInput(
                "--bmc-username and --bmc-password-file need --bmc-url", field="--bmc-url"
            )
        return None
    from agent.inventory import redact_url

    if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
        raise BadInput(
            f"{redact_url(url)}: put no credentials in the URL (use --bmc-username and "
            "--bmc-password-file or TUNER_BMC_PASSWORD)",
            field="--bmc-url",
        )
    if not user:
        raise BadInput("--bmc-url needs --bmc-username", field="--bmc-username")
    if pw_file:
        try:
            password = Path(pw_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError) as e:
            raise BadInput(f"cannot read a password from it: {e}", file=pw_file) from None
    else:
        password = os.environ.pop("TUNER_BMC_PASSWORD", "")
        if not password:
            raise BadInput(
                "no BMC password: --bmc-password-file or TUNER_BMC_PASSWORD",
                field="--bmc-password-file",
            )
    if insecure and ca:
        raise BadInput("--insecure and --ca-bundle exclude each other", field="--insecure")
    return BmcTarget(url, user, password, verify=not insecure, ca_bundle=ca)


def _read(paths: list[str], as_json: bool) -> None:
    from agent.capture.bundle import read_bundle

    bundles = [read_bundle(p) for p in paths]  # all checked before anything is printed
    docs: list[dict[str, Any]] = [
        {
            "bundle": b.path,
            "host": b.host,
            "created_at": b.manifest.get("created_at"),
            "tuner_version": b.manifest.get("tuner_version"),
            "redacted": b.manifest.get("redacted"),
            "read": b.manifest.get("read"),
            "files": len(b.files),
            "not_read": b.manifest.get("not_read") or {},
        }
        for b in bundles
    ]

    def human() -> None:
        for d in docs:
            out.print(
                f"{d['bundle']}: {d['host']}, taken {d['created_at']} by tuner "
                f"{d['tuner_version']}; {d['files']} files match the manifest"
                + (" (serials redacted)" if d["redacted"] else "")
            )
            r = d["read"] or {}
            out.print(
                f"  read: {r.get('node_files', 0)} node files, {r.get('amdsmi_calls', 0)} amdsmi "
                f"calls, {r.get('bmc_resources', 0)} BMC resources"
            )
            for p, why in list(d["not_read"].items())[:20]:
                out.print(f"  not read: {p}: {why}")

    emit({"bundles": docs}, as_json, human)


def _print(written: list[dict[str, Any]], failures: dict[str, str]) -> None:
    for w in written:
        size = w["archive_bytes"] or w["bytes"]
        out.print(
            f"{w['host']}: {w['bundle']} ({w['files']} files, {size / 1024:.0f} KiB, "
            f"{w['seconds']:.1f} s)"
            + (f"; {w['not_read']} not read (see its README)" if w["not_read"] else "")
        )
    for h, why in failures.items():
        out.print(f"{h}: not captured: {why}")
