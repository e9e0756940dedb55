"""Configuration of the simulated BMC fleet (JSON file or dict)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.sim.bmc.personalities import AttrValue, canonical_vendor

FAULT_NAMES: tuple[str, ...] = (
    "down",
    "slow",
    "error500",
    "reject_patch",
    "fail_at_reset",
    "busy",
    "bad_registry",
    "cut_after",
)


class Faults:
    """Faults of one node; thread-safe, changeable at runtime."""

    def __init__(
        self,
        *,
        down: bool = False,
        slow: float = 0.0,
        error500: bool = False,
        reject_patch: bool = False,
        fail_at_reset: bool = False,
        busy: int = 0,
        bad_registry: bool = False,
        cut_after: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self.down = bool(down)
        self.slow = float(slow)
        self.error500 = bool(error500)
        self.reject_patch = bool(reject_patch)
        self.fail_at_reset = bool(fail_at_reset)
        self.busy = int(busy)
        self.bad_registry = bool(bad_registry)
        # the next `cut_after` requests are answered, the one after is handled but never
        # answered, and every later one is dropped: tuner killed (or cut off) at that moment
        self.cut_after = int(cut_after)
        self._cut_left = self.cut_after

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Faults:
        faults = cls()
        for key, value in (data or {}).items():
            faults.set(key, value)
        return faults

    def set(self, name: str, value: Any) -> None:
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; choose one of {FAULT_NAMES}")
        with self._lock:
            if name == "busy":
                n = int(value or 0)
                if n < 0:
                    raise ValueError("fault 'busy' must be >= 0 requests")
                self.busy = n
            elif name == "cut_after":
                n = int(value or 0)
                if n < 0:
                    raise ValueError("fault 'cut_after' must be >= 0 requests")
                self.cut_after = self._cut_left = n
            elif name == "slow":
                v = float(value or 0.0)
                if v < 0:
                    raise ValueError("fault 'slow' must be >= 0 seconds")
                self.slow = v
            else:
                setattr(self, name, bool(value))

    def take_busy(self) -> bool:
        """True (and one less to go) while the next requests are to answer "busy"."""
        with self._lock:
            if self.busy > 0:
                self.busy -= 1
                return True
            return False

    def take_cut(self) -> str:
        """ "pass", "last" (handle, do not answer) or "drop" for the next request."""
        with self._lock:
            if self.cut_after <= 0:
                return "pass"
            self._cut_left -= 1
            if self._cut_left >= 0:
                return "pass"
            return "last" if self._cut_left == -1 else "drop"

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {name: getattr(self, name) for name in FAULT_NAMES}


@dataclass
class NodeConfig:
    """One simulated BMC."""

    name: str
    port: int
    vendor: str
    username: str
    password_file: Path
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    node_root: Path | None = None
    reset_delay: float = 5.0
    request_log: Path | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    bios_build: str | None = None
    initial_attributes: dict[str, AttrValue] = field(default_factory=dict)
    power_state: str = "On"
    captured: Path | None = None  # a capture's bmc/ folder (agent/sim/bmc/captured.py)

    def read_password(self) -> str:
        """The password (first line of password_file, without the newline)."""
        text = self.password_file.read_text(encoding="utf-8")
        lines = text.splitlines()
        return lines[0] if lines else ""


_NODE_KEYS = {
    "name",
    "port",
    "vendor",
    "username",
    "password_file",
    "tls",
    "node_root",
    "reset_delay",
    "request_log",
    "faults",
    "bios_build",
    "initial_attributes",
    "power_state",
    "captured",
}


def _path(value: Any, base: Path | None) -> Path:
    p = Path(os.path.expanduser(str(value)))
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def parse_node(data: Mapping[str, Any], base: Path | None = None) -> NodeConfig:
    unknown = set(data) - _NODE_KEYS
    if unknown:
        raise ValueError(f"unknown node config keys: {sorted(unknown)}")
    for required in ("name", "port", "vendor", "username", "password_file"):
        if required not in data:
            raise ValueError(f"node config is missing {required!r}")
    name = str(data["name"])
    port = int(data["port"])
    if not 0 <= port <= 65535:
        raise ValueError(f"node {name}: port {port} out of range")
    tls_raw = data.get("tls", False)
    tls = False
    cert: Path | None = None
    key: Path | None = None
    if isinstance(tls_raw, Mapping):
        tls = True
        if tls_raw.get("cert") or tls_raw.get("key"):
            if not (tls_raw.get("cert") and tls_raw.get("key")):
                raise ValueError(f"node {name}: tls needs both 'cert' and 'key' (or neither)")
            cert = _path(tls_raw["cert"], base)
            key = _path(tls_raw["key"], base)
    elif tls_raw:
        tls = True
    faults = dict(data.get("faults") or {})
    Faults.from_mapping(faults)  # validate early
    power = str(data.get("power_state", "On"))
    if power not in ("On", "Off"):
        raise ValueError(f"node {name}: power_state must be On or Off")
    delay = float(data.get("reset_delay", 5.0))
    if delay < 0:
        raise ValueError(f"node {name}: reset_delay must be >= 0")
    return NodeConfig(
        name=name,
        port=port,
        vendor=canonical_vendor(str(data["vendor"])),
        username=str(data["username"]),
        password_file=_path(data["password_file"], base),
        tls=tls,
        tls_cert=cert,
        tls_key=key,
        node_root=_path(data["node_root"], base) if data.get("node_root") else None,
        reset_delay=delay,
        request_log=_path(data["request_log"], base) if data.get("request_log") else None,
        faults=faults,
        bios_build=str(data["bios_build"]) if data.get("bios_build") else None,
        initial_attributes=dict(data.get("initial_attributes") or {}),
        power_state=power,
        captured=_path(data["captured"], base) if data.get("captured") else None,
    )


ConfigInput = Mapping[str, Any] | Sequence[NodeConfig] | str | os.PathLike[str]


def load_config(config: ConfigInput) -> list[NodeConfig]:
    """Parse a fleet config: a dict ``{"nodes": [...]}``, a JSON file path, or NodeConfigs.

    Relative paths in a config file are resolved against the file's directory.
    """
    base: Path | None = None
    if isinstance(config, str | os.PathLike):
        path = Path(config)
        base = path.resolve().parent
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    else:
        data = config
    if isinstance(data, Mapping):
        unknown = set(data) - {"nodes"}
        if unknown:
            raise ValueError(f"unknown top-level config keys: {sorted(unknown)}")
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list):
            raise ValueError("config needs a 'nodes' list")
        nodes = [parse_node(n, base) for n in raw_nodes]
    else:
        nodes = []
        for item in data:
            if isinstance(item, NodeConfig):
                nodes.append(item)
            else:
                nodes.append(parse_node(item, base))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError("node names must be unique")
    ports = [n.port for n in nodes if n.port]
    if len(set(ports)) != len(ports):
        raise ValueError("node ports must be unique")
    return nodes
