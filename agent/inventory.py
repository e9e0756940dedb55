"""Ansible inventories (YAML or INI, any source Ansible reads), validated before use.

Host names and variables come from files users edit: they are untrusted. Every host that a
command will touch is checked here first (names, addresses, `tuner_root`), and a bad one
ends the command with exit 2 before any host is touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.errors import BadInput
from agent.paths import state_dir

HOSTNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$")
ADDRESS = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,252}|\[?[0-9A-Fa-f:.]+\]?)$")


class InventoryHost(BaseModel):
    name: str
    address: str
    groups: list[str]
    root: str = "/"
    sim: bool = False
    vars: dict[str, Any] = {}
    secret_vars: list[str] = []  # names of secret variables set for the host (never values)


class Inventory(BaseModel):
    path: str
    limit: str | None
    hosts: list[InventoryHost]


def default_inventory(explicit: str | None) -> Path:
    """--inventory, else $TUNER_INVENTORY, else the simulated fleet's inventory if one is up."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TUNER_INVENTORY")
    if env:
        return Path(env)
    sim = state_dir() / "sim" / "inventory.yml"
    if sim.is_file():
        return sim
    raise BadInput(
        "no inventory: pass --inventory FILE, set TUNER_INVENTORY, or start a simulated fleet "
        "with `tuner sim up`",
        field="--inventory",
    )


def _templated(v: Any) -> bool:
    return isinstance(v, str) and ("{{" in v or "{%" in v)


def load_inventory(path: Path, limit: str | None = None) -> Inventory:
    if not path.exists():
        raise BadInput(f"inventory {path} not found", field="--inventory")
    if limit is not None and (not limit.strip() or "\x00" in limit):
        raise BadInput("--limit is empty", field="--limit")
    os.environ["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"
    os.environ["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "True"
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import combine_vars

    try:
        im = InventoryManager(loader=DataLoader(), sources=[str(path)])
        if limit:
            im.subset(limit)
        hosts = im.get_hosts()
    except AnsibleError as e:
        msg = str(e).splitlines()[0]
        raise BadInput(f"not a usable Ansible inventory: {msg}", file=str(path)) from e
    except Exception as e:  # Ansible's parsers raise many kinds of errors on bad files
        raise BadInput(f"not a usable Ansible inventory: {e}", file=str(path)) from e
    if not hosts:
        what = f"no host matches --limit {limit!r}" if limit else "the inventory has no hosts"
        raise BadInput(what, file=str(path), field="--limit" if limit else None)
    out = []
    for h in hosts:
        hv: dict[str, Any] = {}
        for g in sorted(h.get_groups(), key=lambda g: (g.depth, g.priority, g.name)):
            hv = combine_vars(hv, g.get_vars())
        hv = combine_vars(hv, h.get_vars())
        out.append(_validate_host(path, h.name, [g.name for g in h.get_groups()], hv))
    return Inventory(path=str(path.resolve()), limit=limit, hosts=out)


def _validate_host(path: Path, name: str, groups: list[str], hv: dict[str, Any]) -> InventoryHost:
    where = f"host {name!r}"
    if not HOSTNAME.match(name) and not ADDRESS.match(name):
        raise BadInput(
            f"{where}: not a valid host name (letters, digits, '.', '-', '_')", file=str(path)
        )
    address = hv.get("ansible_host", name)
    if not _templated(address) and (not isinstance(address, str) or not ADDRESS.match(address)):
        raise BadInput(
            f"{where}: ansible_host {address!r} is not a host name or IP address", file=str(path)
        )
    root = hv.get("tuner_root", "/")
    if not _templated(root):
        if (
            not isinstance(root, str)
            or not root.startswith("/")
            or "\x00" in root
            or ".." in root.split("/")
        ):
            raise BadInput(
                f"{where}: tuner_root must be an absolute path without '..', got {root!r}",
                file=str(path),
            )
    if "bmc_address" in hv and "bmc_url" not in hv:
        # older docs said bmc_address: a host written that way would silently get no BIOS work
        raise BadInput(
            f"{where}: bmc_address is not a tuner variable; give the BMC as "
            f"bmc_url: https://{hv['bmc_address']} (its Redfish service)",
            file=str(path),
            field="bmc_address",
        )
    system = hv.get("bmc_system")
    if system is not None and not _templated(system):
        if not isinstance(system, str) or not re.fullmatch(r"[A-Za-z0-9._\-/]{1,200}", system):
            raise BadInput(
                f"{where}: bmc_system must be a System Id or URI of the BMC "
                f"(letters, digits, '.', '-', '_', '/'), got {system!r}",
                file=str(path),
                field="bmc_system",
            )
    sim = hv.get("tuner_sim", False)
    if not isinstance(sim, bool) and not _templated(sim):
        raise BadInput(f"{where}: tuner_sim must be true or false, got {sim!r}", file=str(path))
    safe_vars = {k: v for k, v in hv.items() if not _secret(k)}
    secret_vars = sorted(k for k in hv if _secret(k))
    return InventoryHost(
        name=name,
        address=str(address),
        groups=sorted(groups),
        root=str(root),
        sim=bool(sim),
        vars=safe_vars,
        secret_vars=secret_vars,
    )


def _secret(key: str) -> bool:
    k = key.lower()
    if k.endswith("password_file"):
        return False  # a path (bmc_password_file), not the secret itself
    return any(w in k for w in ("pass", "secret", "token", "key_file", "private_key"))
