"""Option types shared by the commands (typer `Annotated` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

from agent import layers
from agent.modargs import LOCK_TIMEOUT, REBOOT_TIMEOUT, TUNER_BIOS

# Defaults of the options below: the modules' own (agent/modargs.py), defined there once.
BMC_TIMEOUT: float = TUNER_BIOS.default("timeout")
RESET_TIMEOUT: float = REBOOT_TIMEOUT
LOCK_TIMEOUT_S: float = LOCK_TIMEOUT

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


def _executors(value: str | None) -> str | None:
    """--executors (or TUNER_EXECUTORS): validated before anything runs, then used by every
    Ansible run of the command (agent/executors.py)."""
    from agent import executors
    from agent.errors import BadInput

    try:
        names = executors.parse(value)
        if names:
            executors.check_settings()
    except BadInput as e:
        raise typer.BadParameter(str(e)) from None
    executors.use(names)
    return value


ExecutorsOpt = Annotated[
    str | None,
    typer.Option(
        "--executors",
        envvar="TUNER_EXECUTORS",
        callback=_executors,
        help="Execution nodes (comma-separated ssh destinations) that run ansible-runner's "
        "worker: the hosts are sharded over them, one report (docs/scale.md).",
    ),
]
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
        help=f"{', '.join(layers.words()[:-1])} or all: the layers to work on (agent/layers/; "
        "each host runs them in the layers' order).",
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


RebootAllOpt = Annotated[
    bool,
    typer.Option(
        "--reboot-all-hosts",
        help="Allow --reboot if-needed to select every host of a fleet larger than 8.",
    ),
]


DeadlineOpt = Annotated[
    float,
    typer.Option("--deadline", min=1, max=3600, help="Seconds a node may take (then it fails)."),
]
AllowBootCriticalOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-boot-critical",
        help="Let the profile add or remove this boot-critical kernel parameter (init, "
        "rd.break, systemd.unit, root, ...: they change what boots or open a shell); a name "
        "or one exact name=value; repeat for more (docs/kernel-cmdline.md).",
    ),
]
