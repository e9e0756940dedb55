"""The arguments and results of tuner's Ansible modules, typed once.

Stdlib only: shipped to the modules as `playbooks/module_utils/tuner_modargs.py` (a
symlink), and read by the layers (agent/layers/) that run them. Each module has one
`Module` definition here: its arguments (name, Ansible type, default, choices) generate the
module's `argument_spec` (`spec()`), the layer builds its extra vars from the same names and
defaults (`ARGS.default(name)`, `ARGS.check(values)`), and the playbooks pass an argument only
when tuner sets it (`| default(omit)`), so every default is defined here and nowhere else.
Results are `TypedDict`s: what the module returns and what the layer reads.

A new layer's module defines its own `Module` the same way, in its own files.
"""

from __future__ import annotations

from typing import Any, TypedDict

_MISSING: Any = object()


class Arg:
    """One module argument, as Ansible's argument_spec says it. (Plain classes, not
    dataclasses: the CLI imports this module at start-up for its defaults.)"""

    __slots__ = ("type", "default", "required", "choices", "elements", "no_log", "help")

    def __init__(
        self,
        type: str,  # str | bool | int | float | path | list | dict
        default: Any = _MISSING,
        required: bool = False,
        choices: tuple[str, ...] | None = None,
        elements: str | None = None,
        no_log: bool | None = None,
        help: str = "",
    ) -> None:
        self.type = type
        self.default = default
        self.required = required
        self.choices = choices
        self.elements = elements
        self.no_log = no_log
        self.help = help

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.required:
            out["required"] = True
        if self.default is not _MISSING:
            out["default"] = _copy(self.default)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.elements is not None:
            out["elements"] = self.elements
        if self.no_log is not None:
            out["no_log"] = self.no_log
        return out


def _copy(v: Any) -> Any:
    return type(v)(v) if isinstance(v, (dict, list)) else v  # noqa: UP038 (old Pythons)


class Module:
    """An Ansible module's arguments: `spec()` is its argument_spec."""

    __slots__ = ("name", "args")

    def __init__(self, name: str, args: dict[str, Arg]) -> None:
        self.name = name
        self.args = args

    def spec(self) -> dict[str, dict[str, Any]]:
        return {k: a.spec() for k, a in self.args.items()}

    def default(self, name: str) -> Any:
        d = self.args[name].default
        if d is _MISSING:
            raise KeyError(f"{self.name}: {name} has no default")
        return _copy(d)

    def check(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values a layer sends: every name must be an argument, every choice allowed
        (a programming error otherwise: a typo must not reach a host as an unknown key)."""
        for k, v in values.items():
            a = self.args.get(k)
            if a is None:
                raise ValueError(f"{self.name}: no argument {k!r}")
            if a.choices is not None and v not in a.choices:
                raise ValueError(f"{self.name}: {k} must be one of {a.choices}, got {v!r}")
        return values


LOCK_TIMEOUT = 300.0  # seconds a run waits for another run's lock on a host (--lock-timeout)
REBOOT_TIMEOUT = 1200.0  # seconds a node may take to boot after a reset or reboot
MODES = ("apply", "verify", "rollback")

# ---------------------------------------------------------------------------- tuner_os

TUNER_OS = Module(
    "tuner_os",
    {
        "mode": Arg("str", required=True, choices=MODES),
        "root": Arg("path", "/", help="the host root (tuner_root)"),
        "sim_kernel": Arg("bool", False, help="kernel attribute files are plain files"),
        "settings": Arg("list", [], elements="dict", help="knob specs (Profile.os_settings)"),
        "persist": Arg("bool", True, help="write the sysctl.d / tmpfiles.d drop-ins"),
        "lock_timeout": Arg("float", LOCK_TIMEOUT),
    },
)


class OsResult(TypedDict, total=False):
    """tuner_os's result: one entry per setting (apply, verify) or file (rollback)."""

    changed: bool
    results: list[dict[str, Any]]
    facts: dict[str, Any]  # verify: the topology the OS shows (+ `agent`: its last result)
    msg: str


# ----------------------------------------------------------------------- tuner_cmdline

TUNER_CMDLINE = Module(
    "tuner_cmdline",
    {
        "mode": Arg("str", required=True, choices=MODES),
        "root": Arg("path", "/"),
        "sim": Arg("bool", False, help="a simulated node: only its own update-grub runs"),
        "add": Arg("list", [], elements="str"),
        "remove": Arg("list", [], elements="str"),
        "lock_timeout": Arg("float", LOCK_TIMEOUT),
    },
)


class CmdlineResult(TypedDict, total=False):
    """tuner_cmdline's `facts` (agent/bootloader.py's result)."""

    status: str  # apply: unchanged | changed | would change | failed; verify: ok | pending |
    # drift | failed; rollback: nothing to do | would restore | restored | failed
    message: str
    tool: str
    config: str  # as wanted | differs
    booted: str  # /proc/cmdline
    off: list[str]  # +param not booted yet, -param still booted
    pending: bool  # configured, not booted: waits for a reboot
    files: list[dict[str, Any]]  # rollback: the bootloader files restored
    bad_input: bool


# -------------------------------------------------------------------------- tuner_bios

BIOS_MODES = ("plan", "apply", "verify", "restore")
REBOOT = ("never", "if-needed")

TUNER_BIOS = Module(
    "tuner_bios",
    {
        "mode": Arg("str", required=True, choices=BIOS_MODES),
        "url": Arg("str", required=True),
        "username": Arg("str", required=True),
        "password": Arg("str", no_log=True),
        "password_file": Arg("path", no_log=False),
        "auth": Arg("str", "basic", choices=("basic", "session")),
        "system": Arg("str"),
        "validate_certs": Arg("bool", True),
        "ca_bundle": Arg("path"),
        "timeout": Arg("float", 30.0, help="seconds to wait for a BMC answer"),
        "reset_timeout": Arg("float", REBOOT_TIMEOUT, help="seconds a node may take to boot"),
        "poll_interval": Arg("float", 2.0),
        "reboot": Arg("str", "never", choices=REBOOT),
        "reset_type": Arg("str", "GracefulRestart"),
        "also_reset": Arg("bool", False),
        "settings": Arg("dict", {}),
        "host": Arg("str"),
        "record_dir": Arg("path"),
        "stage_dir": Arg("path"),
    },
)


class BiosResult(TypedDict, total=False):
    """tuner_bios's result: per attribute `results`, the host's BIOS in `facts`."""

    changed: bool
    results: list[dict[str, Any]]
    facts: dict[str, Any]  # status, vendor, bmc_vendor, registry, reboot, topology, ...
    msg: str
