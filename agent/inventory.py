"""Ansible inventories (YAML or INI, any source Ansible reads), validated before use.

Host names and variables come from files users edit: they are untrusted. Every host that a
command will touch is checked here first (names, addresses, `tuner_root`, the BMC
variables, the SSH options that decide host key checking), and a bad one ends the command
with exit 2 before any host is touched. Inventories that would run code are refused: an
executable inventory (unless TUNER_ALLOW_EXECUTABLE_INVENTORY=yes), inventory plugins
that template (`constructed`...), a template in a variable tuner validates, and a lookup
(`lookup(...)`, `query(...)`) in any variable. See docs/security.md.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from agent.errors import BadInput, short
from agent.paths import state_dir

EXECUTORS_GROUP = "tuner_executors"  # agent/executors.py GROUP
HOSTNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}\Z")
ADDRESS = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,252}|\[?[0-9A-Fa-f:.]+\]?)\Z")
BMC_URL = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(/[^\s]*)?\Z")
BMC_AUTH = ("basic", "session")
EXEC_ENV = "TUNER_ALLOW_EXECUTABLE_INVENTORY"
# Inventory plugins that only parse data. `script` (executables) is added with
# TUNER_ALLOW_EXECUTABLE_INVENTORY=yes; `auto` (plugin configs such as `constructed`,
# which evaluates templates while parsing) is never enabled.
SAFE_PLUGINS = ("host_list", "yaml", "ini", "toml")
# A template calling a lookup runs code on the controller the moment it is rendered.
LOOKUP = re.compile(r"\b(lookup|query|q)\s*\(|__")
# Host variables tuner validates or that decide how (and how safely) a host is reached:
# no template allowed, the value is used as written.
CONNECTION_VARS = (
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_connection",
    "ansible_ssh_args",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_host_key_checking",
    "ansible_ssh_host_key_checking",
    "ansible_ssh_executable",
    "ansible_python_interpreter",
)
STRICT = re.compile(r"stricthostkeychecking\s*[= ]\s*[\"']?([A-Za-z-]+)", re.I)
# Variables Ansible makes up for every host (not the inventory's).
MAGIC_VARS = frozenset(
    (
        "ansible_config_file ansible_facts ansible_playbook_python ansible_version group_names "
        "groups inventory_dir inventory_file inventory_hostname inventory_hostname_short "
        "playbook_dir omit hostvars ansible_check_mode ansible_diff_mode ansible_forks "
        "ansible_inventory_sources ansible_run_tags ansible_skip_tags ansible_verbosity "
        "environment"
    ).split()
)
# The largest fleet a `--reboot if-needed` may reset whole without --reboot-all-hosts.
REBOOT_ALL_THRESHOLD = 8


class InventoryHost(BaseModel):
    name: str
    address: str
    groups: list[str]
    root: str = "/"
    sim: bool = False
    vars: dict[str, Any] = {}
    secret_vars: list[str] = []  # names of secret variables set for the host (never values)
    key_file: str | None = None  # ansible_ssh_private_key_file: a path (tuner launch's SSH)


NODE_VENV_PYTHON = "/opt/tuner/venv/bin/python"  # the runtime `tuner provision` makes


def node_python(h: InventoryHost) -> str:
    """The Python that runs tuner's node-side code on a host: host variable tuner_python,
    else the runtime of `tuner provision` under the host's root (docs/provision.md)."""
    py = h.vars.get("tuner_python")
    if isinstance(py, str) and py:
        return py
    return h.root.rstrip("/") + NODE_VENV_PYTHON


class Inventory(BaseModel):
    path: str
    limit: str | None
    hosts: list[InventoryHost]
    total: int = 0  # hosts in the whole inventory (the selection is `hosts`)
    # the inventory group `tuner_executors`: execution nodes, not fleet hosts (agent/executors.py)
    executors: list[InventoryHost] = []

    @property
    def whole_fleet(self) -> bool:
        return len(self.hosts) >= self.total


def _yes(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "yes", "true", "on")


def inventory_env() -> dict[str, str]:
    """Ansible settings for reading inventories: the same here and in ansible-playbook."""
    plugins = list(SAFE_PLUGINS) + (["script"] if _yes(EXEC_ENV) else [])
    return {
        "ANSIBLE_INVENTORY_ENABLED": ",".join(plugins),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
    }


def default_inventory(explicit: str | None) -> Path:
    """--inventory, else $TUNER_INVENTORY, else the simulated fleet's inventory if one is up."""
    if explicit is not None:
        if not explicit.strip() or "\x00" in explicit:
            raise BadInput("is empty: name an inventory file", field="--inventory")
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


def _executables(path: Path) -> list[Path]:
    """Files of an inventory source that Ansible's script plugin would run."""
    skip = ("group_vars", "host_vars", "vars_plugins")  # folders Ansible does not parse
    paths = (
        [path]
        if not path.is_dir()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(x in skip or x.startswith(".") for x in p.relative_to(path).parts)
        )
    )
    found = []
    for p in paths:
        try:
            mode = p.stat().st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and mode & 0o111:
            found.append(p)
    return found


def _only_files_and_folders(path: Path) -> None:
    """A FIFO, socket or device where Ansible reads an inventory would make it wait for
    ever (or read a device): refused, naming it (agent/loaders.py)."""
    import stat

    from agent.loaders import file_kind

    candidates = [path]
    if path.is_dir():
        candidates += list(path.rglob("*"))
    base = path if path.is_dir() else path.parent
    for sub in ("group_vars", "host_vars"):
        if (base / sub).is_dir() and base != path:
            candidates += list((base / sub).rglob("*"))
    for p in candidates:
        try:
            mode = p.stat().st_mode
        except OSError:
            continue  # a dangling link: Ansible skips it
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise BadInput(
                f"{p} is {file_kind(mode)}, not an inventory file: refused",
                file=str(p),
                field="--inventory",
            )


def check_source(path: Path) -> None:
    """Refuse, before Ansible reads it, an inventory that would run code."""
    if not path.exists():
        raise BadInput(f"inventory {path} not found", field="--inventory")
    exe = [] if _yes(EXEC_ENV) else _executables(path)
    if exe:
        raise BadInput(
            f"{exe[0]} is executable: Ansible would run it as a dynamic inventory. tuner "
            f"refuses to run inventory code unless {EXEC_ENV}=yes (or chmod -x the file)",
            file=str(path),
            field="--inventory",
        )
    from agent.yamlfile import check_limits

    _only_files_and_folders(path)
    # the files Ansible will parse: the inventory (every file of a folder), and the
    # group_vars/ and host_vars/ beside it
    base = path if path.is_dir() else path.parent
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for sub in ("group_vars", "host_vars"):
        if (base / sub).is_dir() and base != path:
            files += [p for p in (base / sub).rglob("*") if p.is_file()]
    for p in sorted(set(files) - set(_executables(path))):
        check_limits(p)


def split_limit(limit: str) -> list[str]:
    """The terms of a --limit, split as Ansible splits them; a pattern Ansible would read
    differently from how it is written (an unclosed '[' drops the rest) is refused."""
    from ansible.inventory.manager import split_host_pattern

    terms = [t.strip() for t in split_host_pattern(limit)]
    rebuilt_sep = "," if "," in limit else ":"
    if len(terms) > 1 or "," in limit:
        again = rebuilt_sep.join(terms)
    else:
        again = terms[0] if terms else ""
    mixed = len(terms) > 1 and any(split_host_pattern(t) != [t] for t in terms)
    if again != "".join(limit.split()) or any(not t for t in terms) or mixed:
        raise BadInput(
            f"malformed host pattern {short(limit)!r} (Ansible would read it as "
            f"{short(','.join(terms))!r}): write host or group names, globs, ~regex, "
            "separated by ','",
            field="--limit",
        )
    return terms


def _select(im: Any, limit: str) -> list[Any]:
    """The hosts a --limit selects; every term must be valid and match a host or group."""
    from ansible.errors import AnsibleError

    terms = split_limit(limit)
    plus: list[Any] = []
    both: list[set[str]] = []
    minus: set[str] = set()
    for t in terms:
        body = t[1:] if t[:1] in ("!", "&") else t
        if not body:
            raise BadInput(f"empty term in {short(limit)!r}", field="--limit")
        if body.startswith("@"):
            raise BadInput(
                f"limit files ({short(body)}) are not supported: name the hosts",
                field="--limit",
            )
        if body.startswith("~"):
            try:
                re.compile(body[1:])
            except re.error as e:
                raise BadInput(
                    f"{short(body)!r} is not a valid regular expression: {e}", field="--limit"
                ) from e
            if not body[1:]:
                raise BadInput("'~' needs a regular expression after it", field="--limit")
        try:
            hosts = im.get_hosts(body)
        except AnsibleError as e:
            raise BadInput(f"{short(body)!r}: {str(e).splitlines()[0]}", field="--limit") from e
        if not hosts:
            raise BadInput(
                f"{short(body)!r} matches no host or group of the inventory", field="--limit"
            )
        names = {h.name for h in hosts}
        if t[0] == "!":
            minus |= names
        elif t[0] == "&":
            both.append(names)
        else:
            plus.extend(h for h in hosts if h not in plus)
    chosen = [h for h in plus if h.name not in minus and all(h.name in b for b in both)]
    try:
        im.subset(limit)
        ansible_view = {h.name for h in im.get_hosts()}
    except AnsibleError as e:
        raise BadInput(f"{str(e).splitlines()[0]}", field="--limit") from e
    if ansible_view != {h.name for h in chosen}:
        raise BadInput(
            f"{short(limit)!r}: Ansible would select other hosts than its terms name "
            f"({len(ansible_view)} against {len(chosen)}); write the hosts plainly",
            field="--limit",
        )
    return chosen


def load_inventory(path: Path, limit: str | None = None) -> Inventory:
    if limit is not None and (not limit.strip() or "\x00" in limit):
        raise BadInput("--limit is empty", field="--limit")
    check_source(path)
    os.environ.update(inventory_env())
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import combine_vars
    from ansible.vars.plugins import get_vars_from_inventory_sources

    # Ansible reads its settings once, at import: make sure this process uses these.
    C.INVENTORY_ENABLED = inventory_env()["ANSIBLE_INVENTORY_ENABLED"].split(",")
    C.HOST_PATTERN_MISMATCH = "ignore"  # tuner says which term matched nothing

    try:
        loader = DataLoader()
        im = InventoryManager(loader=loader, sources=[str(path)])
        total = len(im.get_hosts())
        hosts = _select(im, limit) if limit else im.get_hosts()
    except BadInput:
        raise
    except AnsibleError as e:
        msg = short(str(e).splitlines()[0], 300)
        raise BadInput(f"not a usable Ansible inventory: {msg}", file=str(path)) from e
    except Exception as e:  # Ansible's parsers raise many kinds of errors on bad files
        raise BadInput(
            f"not a usable Ansible inventory: {short(str(e), 300)}", file=str(path)
        ) from e
    if not hosts and limit:
        raise BadInput(
            f"{short(limit)!r} selects no host (each term matches, together they leave none)",
            field="--limit",
        )
    if not hosts:
        raise BadInput("the inventory has no hosts", file=str(path))
    out = []
    for h in hosts:
        # The variables Ansible will use for the host: the inventory's, then group_vars/
        # and host_vars/ beside it (raw, not templated), in Ansible's order of precedence.
        try:
            groups = sorted(h.get_groups(), key=lambda g: (g.depth, g.priority, g.name))
            hv: dict[str, Any] = {}
            for g in groups:
                hv = combine_vars(hv, g.get_vars())
            hv = combine_vars(
                hv, get_vars_from_inventory_sources(loader, [str(path)], groups, "task")
            )
            hv = combine_vars(hv, h.get_vars())
            hv = combine_vars(hv, get_vars_from_inventory_sources(loader, [str(path)], [h], "task"))
            hv = {k: v for k, v in hv.items() if k not in MAGIC_VARS}
        except Exception as e:
            raise BadInput(
                f"host {h.name!r}: its variables cannot be read: {short(str(e), 300)}",
                file=str(path),
            ) from e
        out.append(_validate_host(path, h.name, [g.name for g in h.get_groups()], hv))
    g = im.groups.get(EXECUTORS_GROUP)
    ex_hosts = list(g.get_hosts()) if g is not None else []
    execs: list[InventoryHost] = []
    if ex_hosts:  # execution nodes are not fleet hosts: never tuned, never counted
        names = {h.name for h in ex_hosts}
        out = [h for h in out if h.name not in names]
        total -= len(names)
        gv = _plain(g.get_vars()) if g is not None else {}
        execs = [
            _validate_host(path, h.name, [EXECUTORS_GROUP], {**gv, **_plain(h.get_vars())})
            for h in ex_hosts
        ]
        if not out:
            raise BadInput(
                f"the selection has only execution nodes ({EXECUTORS_GROUP})", file=str(path)
            )
    return Inventory(path=str(path.resolve()), limit=limit, hosts=out, total=total, executors=execs)


def _lookups(v: Any, depth: int = 0) -> bool:
    if isinstance(v, str):
        return _templated(v) and bool(LOOKUP.search(v))
    if depth > 32:
        return False
    if isinstance(v, dict):
        return any(_lookups(k, depth + 1) or _lookups(x, depth + 1) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return any(_lookups(x, depth + 1) for x in v)
    return False


def _validate_host(path: Path, name: str, groups: list[str], hv: dict[str, Any]) -> InventoryHost:
    where = f"host {name!r}"

    def bad(field: str, msg: str) -> BadInput:
        return BadInput(f"{where}: {msg}", file=str(path), field=field)

    if not HOSTNAME.match(name) and not ADDRESS.match(name):
        raise BadInput(
            f"{where}: not a valid host name (letters, digits, '.', '-', '_')", file=str(path)
        )
    for k, v in hv.items():
        if not isinstance(k, str):
            continue
        validated = k.startswith(("tuner_", "bmc_")) or k in CONNECTION_VARS
        if validated and _templated(v):
            raise bad(
                k,
                f"{k} is a template ({short(v)!r}): tuner uses this variable as written, "
                "so it must be a plain value",
            )
        if _lookups(v):
            raise bad(
                k,
                f"{k} calls a lookup or reaches Python internals ({short(v)!r}): refused, "
                "an inventory must not run code on the controller",
            )
    address = hv.get("ansible_host", name)
    if not isinstance(address, str) or not ADDRESS.match(address):
        raise bad(
            "ansible_host", f"ansible_host {short(address)!r} is not a host name or IP address"
        )
    root = hv.get("tuner_root", "/")
    if (
        not isinstance(root, str)
        or not root.startswith("/")
        or "\x00" in root
        or ".." in root.split("/")
    ):
        raise bad(
            "tuner_root", f"tuner_root must be an absolute path without '..', got {short(root)!r}"
        )
    sim = hv.get("tuner_sim", False)
    if not isinstance(sim, bool):
        raise bad("tuner_sim", f"tuner_sim must be true or false, got {short(sim)!r}")
    become = hv.get("tuner_become", False)
    bools = ("true", "false", "yes", "no", "1", "0", "on", "off")
    if not isinstance(become, bool) and str(become).strip().lower() not in bools:
        raise bad("tuner_become", f"tuner_become must be true or false, got {short(become)!r}")
    py = hv.get("tuner_python")
    if py is not None and (not isinstance(py, str) or not py.startswith("/") or "\x00" in py):
        raise bad("tuner_python", f"tuner_python must be an absolute path, got {short(py)!r}")
    _check_ssh(hv, bad)
    _check_bmc(hv, bad)
    safe_vars = {k: v for k, v in hv.items() if isinstance(k, str) and not _secret(k)}
    secret_vars = sorted(k for k in hv if isinstance(k, str) and _secret(k))
    return InventoryHost(
        name=name,
        address=str(address),
        groups=sorted(groups),
        root=str(root),
        sim=bool(sim),
        vars=_plain(safe_vars),
        secret_vars=secret_vars,
        key_file=_key_file(hv),
    )


def _plain(v: Any) -> Any:
    """Ansible's tagged values as plain JSON-able data (vaulted values left out)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if not _vaulted(x)}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def _vaulted(v: Any) -> bool:
    return type(v).__name__ in ("AnsibleVaultEncryptedUnicode", "EncryptedString")


def _check_ssh(hv: dict[str, Any], bad: Any) -> None:
    """The inventory's SSH options must not switch host key checking off (tuner puts
    StrictHostKeyChecking=yes first on ssh's command line; the opt-out is
    TUNER_SSH_HOST_KEY_CHECKING=no)."""
    from agent.hostkeys import HOST_KEYS_ENV, host_keys_checked

    if not host_keys_checked():
        return
    for k in ("ansible_host_key_checking", "ansible_ssh_host_key_checking"):
        v = hv.get(k)
        if v is not None and str(v).strip().lower() not in ("true", "yes", "1", "on"):
            raise bad(
                k,
                f"{k} is {short(v)!r}: tuner verifies SSH host keys (opt out for a whole "
                f"run with {HOST_KEYS_ENV}=no)",
            )
    for k in ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args"):
        v = hv.get(k)
        if v is None:
            continue
        if not isinstance(v, str):
            raise bad(k, f"{k} must be a string")
        weak = [m for m in STRICT.findall(v) if m.lower() not in ("yes", "true")]
        if weak:
            raise bad(
                k,
                f"{k} sets StrictHostKeyChecking={weak[0]}: tuner verifies SSH host keys "
                f"(opt out for a whole run with {HOST_KEYS_ENV}=no)",
            )
        if k == "ansible_ssh_args" and not STRICT.search(v):
            raise bad(
                k,
                "ansible_ssh_args replaces tuner's SSH options, its host key check "
                "included: add '-o StrictHostKeyChecking=yes' to it",
            )


def redact_url(url: str) -> str:
    """A URL with its user:password@ part replaced, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" in parts.netloc:
        return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
    return url


def check_ca_bundle(path: str, field: str, bad: Any = None) -> str:
    """A CA bundle must be a readable PEM file with at least one certificate."""

    def fail(msg: str) -> BadInput:
        return bad(field, msg) if bad else BadInput(msg, field=field)

    if _templated(path):  # handed to Ansible, which would render it
        raise fail(f"{field} {short(path)!r} looks like a template: name the file plainly")
    p = Path(path)
    if not p.is_file() or not os.access(p, os.R_OK):
        raise fail(f"{field} {short(path)} is not a readable file")
    try:
        ctx = ssl.create_default_context(cafile=str(p))
    except (ssl.SSLError, ValueError, OSError) as e:
        raise fail(
            f"{field} {short(path)} is not a PEM bundle of CA certificates "
            f"(-----BEGIN CERTIFICATE----- blocks): {short(str(e), 120)}"
        ) from e
    if not ctx.get_ca_certs():
        raise fail(f"{field} {short(path)} holds no CA certificate")
    return str(p.resolve())


def bmc_allows_http(hv: dict[str, Any], bad: Any = None) -> bool:
    """The host's explicit `bmc_allow_http` (a boolean; INI inventories give words)."""
    v = hv.get("bmc_allow_http", False)
    if isinstance(v, str) and v.lower() in ("true", "yes", "false", "no"):
        v = v.lower() in ("true", "yes")
    if not isinstance(v, bool):
        if bad is not None:
            raise bad("bmc_allow_http", f"bmc_allow_http must be true or false, got {short(v)!r}")
        return False
    return v


def _check_bmc(hv: dict[str, Any], bad: Any) -> None:
    """Every BMC variable, before any layer runs (the BIOS layer uses them as they are)."""
    url = hv.get("bmc_url")
    if url is not None:
        if not isinstance(url, str):
            raise bad("bmc_url", "bmc_url must be an http(s):// URL of the BMC")
        netloc = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else url
        if "@" in netloc:
            raise bad(
                "bmc_url",
                f"bmc_url {redact_url(url)!r} carries credentials: put the user in "
                "bmc_username and the password in bmc_password (vault), bmc_password_file "
                "or TUNER_BMC_PASSWORD",
            )
        if not BMC_URL.match(url) or len(url) > 2000:
            raise bad(
                "bmc_url", f"bmc_url must be an http(s):// URL of the BMC, got {short(url)!r}"
            )
        if url.lower().startswith("http://") and not bmc_allows_http(hv, bad):
            raise bad(
                "bmc_url",
                f"bmc_url {short(redact_url(url))!r} is plain HTTP: the BMC password would "
                "cross the network in clear text (Basic auth sends it with every request, "
                "session auth in its login). Use https://, or set bmc_allow_http: true for "
                "this host (a lab BMC on a network nobody else can read)",
            )
    if "bmc_address" in hv and url is None:
        # older docs said bmc_address: a host written that way would silently get no BIOS work
        raise bad(
            "bmc_address",
            f"bmc_address is not a tuner variable; give the BMC as "
            f"bmc_url: https://{short(hv['bmc_address'], 80)} (its Redfish service)",
        )
    system = hv.get("bmc_system")
    if system is not None:
        if not isinstance(system, str) or not re.fullmatch(r"[A-Za-z0-9._\-/]{1,200}", system):
            raise bad(
                "bmc_system",
                "bmc_system must be a System Id or URI of the BMC "
                f"(letters, digits, '.', '-', '_', '/'), got {short(system)!r}",
            )
    auth = hv.get("bmc_auth")
    if auth is not None and auth not in BMC_AUTH:
        raise bad("bmc_auth", f"bmc_auth must be basic or session, got {short(auth)!r}")
    user = hv.get("bmc_username")
    if user is not None and (not isinstance(user, str) or not user or "\n" in user):
        raise bad("bmc_username", "bmc_username must be a non-empty string")
    pw_file = hv.get("bmc_password_file")
    if pw_file is not None:
        p = Path(str(pw_file))
        if not isinstance(pw_file, str) or not p.is_file() or not os.access(p, os.R_OK):
            raise bad(
                "bmc_password_file",
                f"bmc_password_file {short(pw_file)} is not a readable file",
            )
    ca = hv.get("bmc_ca_bundle")
    if ca is not None:
        if not isinstance(ca, str):
            raise bad("bmc_ca_bundle", "bmc_ca_bundle must be a file path")
        check_ca_bundle(ca, "bmc_ca_bundle", bad)


def _key_file(hv: dict[str, Any]) -> str | None:
    for k in ("ansible_ssh_private_key_file", "ansible_private_key_file"):
        v = hv.get(k)
        if isinstance(v, str) and v and not _templated(v):
            return v
    return None


def _secret(key: str) -> bool:
    k = key.lower()
    if k.endswith("password_file"):
        return False  # a path (bmc_password_file), not the secret itself
    return any(w in k for w in ("pass", "secret", "token", "key_file", "private_key"))


def check_reboot_scope(inv: Inventory, reboot: str, check: bool, allowed: bool) -> None:
    """A --reboot run that selects every host of a fleet larger than REBOOT_ALL_THRESHOLD
    (a typo in --limit, a forgotten one) asks for --reboot-all-hosts."""
    if reboot == "never" or check or allowed:
        return
    if inv.whole_fleet and len(inv.hosts) > REBOOT_ALL_THRESHOLD:
        raise BadInput(
            f"--reboot {reboot} would select all {len(inv.hosts)} hosts of the inventory: "
            "narrow it with --limit, or pass --reboot-all-hosts to reset the whole fleet "
            "(in batches)",
            field="--reboot",
        )
