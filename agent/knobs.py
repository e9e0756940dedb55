"""OS knobs: read, compare, write, save originals, roll back -- on one host, under its root.

This module is the host side of tuner. It uses the standard library only, because Ansible
ships it to every host as module_utils (``playbooks/module_utils/tuner_knobs.py`` is a link
to this file) next to the ``tuner_os`` module. One implementation of each knob serves apply,
verify and rollback:

* ``observe`` reads a knob's files and returns their raw content and normalized value;
* ``plan`` compares with the wanted value and yields the file writes that would converge;
* ``apply`` saves the originals (once, atomically) and then writes;
* ``verify`` re-reads and compares;
* ``rollback`` writes the saved originals back.

Every path is a host-absolute path (``/proc/sys/...``) resolved under the host root (``/`` on a
real node, a node tree in the simulator); a path that would leave the root is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

STATE_DIR = "/var/lib/tuner"  # tuner's own record on each host (originals, history, lock)
ORIGINALS = STATE_DIR + "/originals.json"
APPLIED = STATE_DIR + "/applied.json"  # the settings the last apply wanted (the node agent's)
AGENT_RESULT = STATE_DIR + "/agent.json"  # the node agent's last run (verify shows it)
LOCK = STATE_DIR + "/lock"
SYSCTL_DROPIN = "/etc/sysctl.d/90-tuner.conf"
TMPFILES_DROPIN = "/etc/tmpfiles.d/tuner.conf"
TMP_MARK = ".tuner-tmp"

THP_DIR = "/sys/kernel/mm/transparent_hugepage"
CPU_DIR = "/sys/devices/system/cpu"

SYSCTL_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9 _.:,+\-\[\]]*$")
SAFE_STATE = re.compile(r"^[A-Za-z0-9_-]+$")

# The knob kinds a setting spec (a dict sent by the controller) may name.
KINDS = ("sysctl", "selection", "governor", "cpuidle")
# What a spec may hold: the same rules as the profile it came from (agent/profiles.py uses
# these), so a record on a node (applied.json) can name nothing a profile could not.
GOVERNORS = ("performance", "powersave", "ondemand", "conservative", "schedutil", "userspace")
THP_VALUES = {
    "enabled": ("always", "madvise", "never"),
    "defrag": ("always", "defer", "defer+madvise", "madvise", "never"),
}
# Ranges the kernel accepts for the sysctls tuner knows; others need a plain safe value.
KNOWN_SYSCTLS: dict[str, tuple[int, int]] = {
    "kernel.numa_balancing": (0, 3),
    "kernel.nmi_watchdog": (0, 1),
    "kernel.randomize_va_space": (0, 2),
    "vm.swappiness": (0, 200),
    "vm.zone_reclaim_mode": (0, 7),
}
MAX_VALUE = 256
MAX_SETTINGS = 4096
RECORD_LIMIT = 4 << 20  # bytes: the largest record tuner reads from /var/lib/tuner


class KnobError(Exception):
    """A knob could not be read or written on this host (reported as `failed`)."""


class PathEscape(KnobError):
    """A path resolved outside the host root."""


def spec_problem(spec: Any) -> str:
    """What is wrong with a setting spec ('' when nothing): only the settings a profile can
    make (agent/profiles.py `os_settings`), each with exactly its fields, a value a profile
    allows, and an id that matches; so the files a spec reaches are the knob's own under
    /proc/sys and /sys (a sysctl name cannot hold '/' or '..', a value no '|' or '/')."""
    if not isinstance(spec, dict):
        return "must be an object"
    kind = spec.get("kind")
    if kind not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}"
    value = spec.get("value")
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        return "value must be text (at most 256 characters)"
    keys = {"sysctl": "name", "selection": "path", "governor": None, "cpuidle": "state"}[kind]
    allowed = {"id", "kind", "value"} | ({keys} if keys else set())
    if set(spec) != allowed:
        return f"a {kind} setting has exactly the fields {', '.join(sorted(allowed))}"
    if kind == "sysctl":
        name = spec["name"]
        if not isinstance(name, str) or not SYSCTL_NAME.fullmatch(name) or len(name) > 200:
            return f"not a sysctl name: {str(name)[:80]!r}"
        if spec["id"] != f"sysctl.{name}":
            return f"id must be sysctl.{name}"
        if not SAFE_VALUE.fullmatch(value) or value.startswith("|"):
            return f"{name}: value {value[:80]!r} is not allowed (plain words only)"
        if name in KNOWN_SYSCTLS:
            lo, hi = KNOWN_SYSCTLS[name]
            if not value.isdigit() or not lo <= int(value) <= hi:
                return f"{name} must be an integer from {lo} to {hi}"
    elif kind == "selection":
        path = spec["path"]
        key = path[len(THP_DIR) + 1 :] if isinstance(path, str) and path.startswith(THP_DIR) else ""
        if path != f"{THP_DIR}/{key}" or key not in THP_VALUES:
            return f"path must be {THP_DIR}/enabled or /defrag, got {str(path)[:120]!r}"
        if spec["id"] != f"thp.{key}":
            return f"id must be thp.{key}"
        if value not in THP_VALUES[key]:
            return f"thp.{key} must be one of {', '.join(THP_VALUES[key])}"
    elif kind == "governor":
        if spec["id"] != "cpu.governor":
            return "id must be cpu.governor"
        if value not in GOVERNORS:
            return f"governor must be one of {', '.join(GOVERNORS)}"
    else:
        state = spec["state"]
        if not isinstance(state, str) or not SAFE_STATE.fullmatch(state) or len(state) > 64:
            return f"not an idle state name: {str(state)[:80]!r}"
        if spec["id"] != f"cpuidle.{state}":
            return f"id must be cpuidle.{state}"
        if value != "disabled":
            return "an idle state setting's value is 'disabled'"
    return ""


def specs_problem(specs: Any) -> str:
    """What is wrong with a list of setting specs ('' when nothing)."""
    if not isinstance(specs, list):
        return "settings must be a list"
    if len(specs) > MAX_SETTINGS:
        return f"more than {MAX_SETTINGS} settings"
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        problem = spec_problem(spec)
        if problem:
            return f"settings[{i}]: {problem}"
        if spec["id"] in seen:
            return f"settings[{i}]: {spec['id']} appears twice"
        seen.add(spec["id"])
    return ""


def read_record(path: str, shown: str, limit: int = RECORD_LIMIT) -> Any:
    """A JSON record tuner wrote (under /var/lib/tuner), read as untrusted: a regular file
    (never a FIFO or device: opened non-blocking, never through a link at its place), at
    most `limit` bytes, UTF-8, JSON. Anything else is a KnobError naming the file."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise KnobError(f"cannot read {shown}: {e.strerror or e}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KnobError(f"{shown} is not a regular file: not a record tuner wrote")
        if st.st_size > limit:
            raise KnobError(f"{shown} is larger than {limit} bytes: not a record tuner wrote")
        chunks = []
        left = limit + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
    except OSError as e:
        raise KnobError(f"cannot read {shown}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > limit:
        raise KnobError(f"{shown} is larger than {limit} bytes: not a record tuner wrote")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise KnobError(f"{shown} is not JSON tuner wrote: {str(e)[:120]}") from e


@dataclass
class Host:
    """Where the host's files are, and whether its kernel files are simulated."""

    root: str = "/"
    sim_kernel: bool = False  # plain files stand for sysfs: render what the kernel would show

    def __post_init__(self) -> None:
        self._real_root = os.path.realpath(self.root)
        # folder -> its resolved path (symlinks followed): kept for the life of this object,
        # so a long-lived caller (the node agent) makes a new Host per pass
        self._dirs: dict[str, str] = {}

    def path(self, host_path: str) -> str:
        if not host_path.startswith("/") or "\x00" in host_path:
            raise PathEscape(f"not an absolute path: {host_path!r}")
        parts = [p for p in host_path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise PathEscape(f"path leaves the host root: {host_path!r}")
        root = self._real_root
        real = os.path.join(root, *parts)
        if root == "/":
            return real
        # Resolve the folder once (cached: a node has a few hundred), then the last part.
        parent, name = os.path.split(real)
        rparent = self._dirs.get(parent)
        if rparent is None:
            rparent = self._dirs[parent] = os.path.realpath(parent)
        last = os.path.join(rparent, name)
        resolved = os.path.realpath(last) if os.path.islink(last) else last
        if resolved != root and not resolved.startswith(root + os.sep):
            raise PathEscape(f"path leaves the host root: {host_path!r}")
        return real

    def exists(self, host_path: str) -> bool:
        return os.path.exists(self.path(host_path))

    def read(self, host_path: str) -> str:
        """A file's text. Only regular files (sysfs and procfs attributes are): a FIFO or
        device planted in a file's place is refused at once, never waited on."""
        import stat

        try:
            fd = os.open(self.path(host_path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise KnobError(f"cannot read {host_path}: not a regular file")
                return f.read()
        except OSError as e:
            raise KnobError(f"cannot read {host_path}: {e.strerror}") from e

    def glob(self, pattern: str) -> list[str]:
        """Host paths matching a glob pattern (sorted naturally by number)."""
        root = self.path("/")
        found = glob.glob(self.path(pattern))
        out = ["/" + os.path.relpath(p, root) for p in found]
        return sorted(out, key=_natural)

    def write_kernel(self, host_path: str, raw: str) -> None:
        """Write a kernel attribute (sysfs/procfs): one write of the whole value."""
        real = self.path(host_path)
        if not os.path.exists(real):
            raise KnobError(f"cannot write {host_path}: it does not exist")
        try:
            # a kernel attribute is written in place (no rename in sysfs/procfs); the path
            # was resolved under the root above
            with open(real, "w", encoding="utf-8") as f:  # one-writer: kernel attribute
                f.write(raw)
        except OSError as e:
            raise KnobError(f"cannot write {host_path}: {e.strerror}") from e

    def write_file(self, host_path: str, content: str, created_dirs: list[str]) -> None:
        """Write a regular file atomically (write_atomic: an exclusive temp file in the same
        folder, fsync, rename)."""
        real = self.path(host_path)
        self._makedirs(os.path.dirname(host_path), created_dirs)
        try:
            write_atomic(real, content)
        except OSError as e:
            raise KnobError(f"cannot write {host_path}: {e.strerror or e}") from e

    def remove_file(self, host_path: str) -> None:
        real = self.path(host_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(real)
            _fsync_dir(os.path.dirname(real))

    def _makedirs(self, host_dir: str, created: list[str]) -> None:
        missing: list[str] = []
        d = host_dir
        while d not in ("", "/") and not os.path.isdir(self.path(d)):
            missing.append(d)
            d = os.path.dirname(d)
        for m in reversed(missing):
            os.mkdir(self.path(m), 0o755)
            created.append(m)


def write_atomic(path: str, data: str | bytes, mode: int = 0o644) -> None:
    """tuner's one way to write a file (controller and node side; docs/security.md).

    The content goes to a temp file beside `path` created exclusively (O_CREAT|O_EXCL,
    O_NOFOLLOW, an unpredictable name ending in TMP_MARK), never through an existing file or
    link; it is fsynced, renamed over `path` (a link at `path` is replaced, not followed) and
    the folder fsynced. A reader sees the old file or the new one; on any failure (a full
    disk) the temp file is removed and `path` is untouched."""
    parent = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for _ in range(16):
        tmp = os.path.join(parent, f".{base[:120]}.{secrets.token_hex(8)}{TMP_MARK}")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 16 collisions of 64 random bits
        raise OSError(f"cannot create a temp file beside {path}")
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(parent)


def _natural(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# Observing knobs: a knob is one or more files; each file has raw content and a value.


@dataclass
class FileState:
    path: str
    raw: str  # the content as read
    value: str  # normalized value
    wanted: str  # the normalized value the setting asks for
    write: str  # what to write to get `wanted` (kernel attributes) or the file content
    style: str = "kernel"  # kernel (sysfs/procfs attribute) or file (regular file)
    options: list[str] = field(default_factory=list)  # for selection files

    @property
    def differs(self) -> bool:
        return self.value != self.wanted


@dataclass
class Observation:
    id: str
    wanted: str
    files: list[FileState]
    missing: bool = False
    error: str | None = None

    @property
    def actual(self) -> str | None:
        if self.missing or self.error:
            return None
        return summarize([f.value for f in self.files])

    @property
    def differs(self) -> bool:
        return any(f.differs for f in self.files)


def summarize(values: list[str]) -> str:
    """One value when all files agree, else counts: `performance x250, schedutil x6`."""
    if not values:
        return ""
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    if len(counts) == 1:
        return values[0]
    return ", ".join(f"{v} x{n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def normalize(raw: str) -> str:
    return " ".join(raw.split())


def parse_selection(raw: str) -> tuple[str, list[str]]:
    """`always [madvise] never` -> ("madvise", [always, madvise, never])."""
    words = raw.split()
    options = [w.strip("[]") for w in words]
    chosen = [w.strip("[]") for w in words if w.startswith("[") and w.endswith("]")]
    if chosen:
        return chosen[0], options
    return normalize(raw), options


def render_selection(value: str, options: list[str]) -> str:
    return " ".join(f"[{o}]" if o == value else o for o in options) + "\n"


def observe(host: Host, spec: dict[str, Any]) -> Observation:
    kind = spec["kind"]
    sid = spec["id"]
    wanted = str(spec["value"])
    try:
        if kind == "sysctl":
            name = spec["name"]
            if not SYSCTL_NAME.fullmatch(name):
                raise KnobError(f"not a sysctl name: {name!r}")
            path = "/proc/sys/" + name.replace(".", "/")
            if not host.exists(path):
                return Observation(sid, wanted, [], missing=True)
            raw = host.read(path)
            w = normalize(wanted)
            return Observation(sid, wanted, [FileState(path, raw, normalize(raw), w, w + "\n")])
        if kind == "selection":
            path = spec["path"]
            if not host.exists(path):
                return Observation(sid, wanted, [], missing=True)
            raw = host.read(path)
            value, options = parse_selection(raw)
            if wanted not in options:
                raise KnobError(
                    f"{path} does not offer {wanted!r} on this host (offers: {', '.join(options)})"
                )
            f = FileState(path, raw, value, wanted, wanted, options=options)
            return Observation(sid, wanted, [f])
        if kind == "governor":
            paths = host.glob(CPU_DIR + "/cpu[0-9]*/cpufreq/scaling_governor")
            if not paths:
                return Observation(sid, wanted, [], missing=True)
            files = []
            for p in paths:
                raw = host.read(p)
                avail_path = os.path.dirname(p) + "/scaling_available_governors"
                # Only a CPU that must change needs the governor to be available.
                if normalize(raw) != wanted and host.exists(avail_path):
                    avail = host.read(avail_path).split()
                    if wanted not in avail:
                        cpu = p.split("/")[5]
                        raise KnobError(
                            f"governor {wanted!r} is not available on {cpu} "
                            f"(available: {', '.join(avail)})"
                        )
                files.append(FileState(p, raw, normalize(raw), wanted, wanted + "\n"))
            return Observation(sid, wanted, files)
        if kind == "cpuidle":
            state = spec["state"]
            if not SAFE_STATE.fullmatch(state):
                raise KnobError(f"not an idle state name: {state!r}")
            want_disable = "1" if wanted == "disabled" else "0"
            files = []
            for name_path in host.glob(CPU_DIR + "/cpu[0-9]*/cpuidle/state[0-9]*/name"):
                if host.read(name_path).strip() != state:
                    continue
                p = os.path.dirname(name_path) + "/disable"
                raw = host.read(p)
                value = "disabled" if raw.strip() == "1" else "enabled"
                files.append(FileState(p, raw, value, wanted, want_disable + "\n"))
            if not files:
                return Observation(sid, wanted, [], missing=True)
            return Observation(sid, wanted, files)
        raise KnobError(f"unknown knob kind {kind!r}")
    except KnobError as e:
        return Observation(sid, wanted, [], error=str(e))


def observe_file(host: Host, sid: str, path: str, content: str | None) -> Observation:
    """A regular file tuner owns: wanted content (None: the file should not exist)."""
    try:
        real = host.path(path)
        if os.path.exists(real):
            raw = host.read(path)
            value = "present" if content is None else ("as wanted" if raw == content else "differs")
        else:
            raw, value = "", "absent"
        wanted = "absent" if content is None else "as wanted"
        f = FileState(path, raw, value, wanted, content or "", style="file")
        return Observation(sid, wanted, [f])
    except KnobError as e:
        return Observation(sid, "as wanted", [], error=str(e))


def host_facts(host: Host) -> dict[str, Any]:
    """What the OS shows of decisions BIOS makes: sockets, NUMA nodes, threads per core."""
    cpus = host.glob(CPU_DIR + "/cpu[0-9]*/topology/physical_package_id")
    sockets: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for p in cpus:
        try:
            pkg = host.read(p).strip()
            core = host.read(os.path.dirname(p) + "/core_id").strip()
        except KnobError:
            continue
        sockets.add(pkg)
        cores.add((pkg, core))
    nodes = host.glob("/sys/devices/system/node/node[0-9]*")
    return {
        "logical_cpus": len(cpus),
        "sockets": len(sockets),
        "cores": len(cores),
        "threads_per_core": (len(cpus) // len(cores)) if cores else None,
        "numa_nodes": len(nodes),
    }


# ---------------------------------------------------------------------------------------
# Persistence across reboot: a sysctl.d drop-in and a tmpfiles.d entry for sysfs settings.


def persistence(specs: list[dict[str, Any]], obs: dict[str, Observation]) -> dict[str, str]:
    """The persistence files' content for the settings this host has."""
    sysctl_lines: list[str] = []
    tmp_lines: list[str] = []
    for spec in specs:
        o = obs.get(spec["id"])
        if o is None or o.missing or o.error:
            continue
        kind = spec["kind"]
        if kind == "sysctl":
            sysctl_lines.append(f"{spec['name']} = {normalize(str(spec['value']))}")
        elif kind == "selection":
            tmp_lines.append(f"w {spec['path']} - - - - {spec['value']}")
        elif kind == "governor":
            tmp_lines.append(f"w {CPU_DIR}/cpu*/cpufreq/scaling_governor - - - - {spec['value']}")
        elif kind == "cpuidle":
            # tmpfiles.d matches by path, not by state name: one line per state index.
            idx = sorted({f.path.split("/")[7] for f in o.files}, key=_natural)
            val = "1" if spec["value"] == "disabled" else "0"
            tmp_lines += [f"w {CPU_DIR}/cpu*/cpuidle/{i}/disable - - - - {val}" for i in idx]
    head = "# Written by tuner. Rolled back by `tuner rollback`.\n"
    out: dict[str, str] = {}
    if sysctl_lines:
        out[SYSCTL_DROPIN] = head + "\n".join(sysctl_lines) + "\n"
    if tmp_lines:
        out[TMPFILES_DROPIN] = head + "\n".join(tmp_lines) + "\n"
    return out


# ---------------------------------------------------------------------------------------
# Originals: saved on the host before the first write, merged (first value wins).


def load_originals(host: Host) -> dict[str, Any] | None:
    real = host.path(ORIGINALS)
    if not os.path.lexists(real):
        return None
    data: dict[str, Any] = read_record(real, f"{ORIGINALS} ({real})")
    problem = _originals_problem(data)
    if problem:
        raise KnobError(
            f"{ORIGINALS} ({real}) is not a record tuner wrote: {problem}; nothing was "
            "changed (move the file away to start a new record)"
        )
    return data


def _originals_problem(data: Any) -> str:
    """What is wrong with the shape of an originals record ('' when nothing)."""
    if not isinstance(data, dict):
        return f"a JSON object is expected, found {type(data).__name__}"
    files = data.get("files")
    if not isinstance(files, dict):
        return "'files' must be an object of path: entry"
    if not isinstance(data.get("dirs", []), list):
        return "'dirs' must be a list"
    for path, e in files.items():
        where = f"files[{path[:80]!r}]"
        if not isinstance(e, dict) or e.get("style") not in ("file", "kernel"):
            return f"{where} must be an object with style 'file' or 'kernel'"
        if not isinstance(e.get("order", 0), int):
            return f"{where}.order must be a number"
        if e["style"] == "file":
            if not isinstance(e.get("exists"), bool):
                return f"{where}.exists must be true or false"
            if e["exists"] and not isinstance(e.get("raw"), str):
                return f"{where}.raw must be text"
        elif not isinstance(e.get("raw"), str) or not isinstance(e.get("write"), str):
            return f"{where}.raw and .write must be text"
    return ""


def save_originals(host: Host, data: dict[str, Any]) -> None:
    created: list[str] = []
    host.write_file(ORIGINALS, json.dumps(data, indent=1, sort_keys=True) + "\n", created)


LOCK_WAIT = 300.0  # seconds a run waits for another run's lock on the host, by default


class LockBusy(KnobError):
    """Another run held the host's lock past the deadline."""


def _holder(fd: int) -> str:
    """Who holds the lock: what the holder wrote into the lock file."""
    try:
        raw = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        info = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return "unknown"
    if not isinstance(info, dict):
        return "unknown"
    since = info.get("since")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {when}"


def lock_holder(host: Host) -> str | None:
    """Who holds tuner's lock on this host right now (pid, host, since), or None when free.

    Probes with a shared lock that is never waited for, so it takes nothing from a run."""
    try:
        fd = os.open(host.path(LOCK), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def waiting_words(holder: str, timeout: float, what: str = "this host") -> str:
    """What a run waiting on another run's lock says: whose, and when it gives up."""
    until = time.strftime("%H:%M:%S", time.gmtime(time.time() + timeout))
    return (
        f"waiting for another tuner run's lock on {what} (held by {holder}); gives up at "
        f"{until} UTC (--lock-timeout {timeout:g} s)"
    )


@contextlib.contextmanager
def locked(host: Host, create: bool = True, timeout: float | None = None) -> Iterator[None]:
    """Hold tuner's lock on this host (a killed run's leftover process finishes first).

    Waits at most `timeout` seconds (default LOCK_WAIT) for another run, then fails naming
    the holder (its process id, host name and start time, which it writes into the lock)."""
    real = host.path(LOCK)
    if not os.path.exists(real):
        if not create:  # nothing of tuner's is here, and a dry run must not create it
            yield
            return
        host._makedirs(STATE_DIR, [])
    waited = LOCK_WAIT if timeout is None else timeout

    def busy(holder: str) -> Exception:
        return LockBusy(
            f"another tuner run holds {LOCK} ({holder}); waited {waited:g} s (--lock-timeout)"
        )

    with hold_flock(real, waited, busy):
        yield


@contextlib.contextmanager
def hold_flock(
    path: str,
    timeout: float,
    busy: Callable[[str], Exception],
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created 0600), writing {pid, host, since} into it
    for whoever waits; wait at most `timeout` seconds, telling `on_wait` the holder once, then
    raise busy(holder). The one lock of tuner's host lock and of its per-BMC lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait is not None and not told:
                    on_wait(_holder(fd))
                    told = True
                if time.monotonic() >= deadline:
                    raise busy(_holder(fd)) from None
                time.sleep(0.1)
        try:
            me = {"pid": os.getpid(), "host": os.uname().nodename, "since": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError:
            pass  # a read-only lock file still locks
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def clean_temp_files(host: Host, check: bool) -> list[str]:
    """Remove temp files a killed run left beside the files tuner writes."""
    found: list[str] = []
    for d in {os.path.dirname(SYSCTL_DROPIN), os.path.dirname(TMPFILES_DROPIN), STATE_DIR}:
        found += host.glob(d + "/.*" + TMP_MARK)
    if not check:
        for p in found:
            host.remove_file(p)
    return found


# ---------------------------------------------------------------------------------------
# The three operations. Results are plain dicts (JSON), one per setting.


def _result(o: Observation, status: str, after: str | None, message: str = "") -> dict[str, Any]:
    return {
        "id": o.id,
        "wanted": o.wanted,
        "before": o.actual,
        "after": after,
        "status": status,
        "message": message or (o.error or ""),
    }


def observe_all(host: Host, specs: list[dict[str, Any]], persist: bool) -> list[Observation]:
    obs = [observe(host, s) for s in specs]
    if persist:
        files = persistence(specs, {o.id: o for o in obs})
        for path, sid in ((SYSCTL_DROPIN, "persist.sysctl"), (TMPFILES_DROPIN, "persist.tmpfiles")):
            obs.append(observe_file(host, sid, path, files.get(path)))
    return obs


def apply(
    host: Host,
    specs: list[dict[str, Any]],
    persist: bool,
    check: bool,
    lock_timeout: float | None = None,
    record: bool = False,
) -> list[dict[str, Any]]:
    """Converge the host to `specs`. `record`: also keep them in APPLIED for the node agent."""
    _check_specs(specs)
    with locked(host, create=not check, timeout=lock_timeout):
        clean_temp_files(host, check)
        obs = observe_all(host, specs, persist)
        todo = [o for o in obs if not o.missing and not o.error and o.differs]
        if check:
            return [_planned(o, "would change" if o in todo else None) for o in obs]
        if todo:
            _remember(host, todo)
        results = []
        created: list[str] = []
        for o in obs:
            if o not in todo:
                results.append(_planned(o, None))
                continue
            try:
                for f in o.files:
                    if not f.differs:
                        continue
                    if f.style == "file":
                        if f.wanted == "absent":
                            host.remove_file(f.path)
                        else:
                            host.write_file(f.path, f.write, created)
                    else:
                        _write_kernel(host, f, f.write)
            except KnobError as e:
                results.append(_result(o, "failed", None, str(e)))
                continue
            again = _reobserve(host, o, specs, persist)
            if again.differs or again.error:
                msg = (
                    again.error or f"'{o.id}' = '{again.actual}', expected '{o.wanted}' after write"
                )
                results.append(_result(o, "failed", again.actual, msg))
            else:
                results.append(_result(o, "changed", again.actual))
        if created:
            _remember_dirs(host, created)
        if record:
            save_applied(host, specs, persist)
        return results


def _planned(o: Observation, status: str | None) -> dict[str, Any]:
    if o.error:
        return _result(o, "failed", None)
    if o.missing:
        return _result(o, "missing", None, "not present on this host")
    if status:
        return _result(o, status, o.wanted)
    return _result(o, "unchanged", o.actual)


def _reobserve(
    host: Host, o: Observation, specs: list[dict[str, Any]], persist: bool
) -> Observation:
    for s in specs:
        if s["id"] == o.id:
            return observe(host, s)
    f = o.files[0]
    return observe_file(host, o.id, f.path, None if f.wanted == "absent" else f.write)


def _write_kernel(host: Host, f: FileState, value: str) -> None:
    """Write a kernel attribute; in the simulator, render what the kernel would then show."""
    if f.options and host.sim_kernel:
        host.write_kernel(f.path, render_selection(value.strip(), f.options))
    else:
        host.write_kernel(f.path, value)


def _remember(host: Host, todo: list[Observation]) -> None:
    data = load_originals(host) or {"version": 1, "saved": time.time(), "files": {}, "dirs": []}
    files = data["files"]
    changed = False
    for o in todo:
        for f in o.files:
            if f.path in files:
                continue  # the first original wins: a second apply keeps it
            if f.style == "file":
                entry = {"style": "file", "exists": f.value != "absent", "raw": f.raw}
            else:
                value = parse_selection(f.raw)[0] if f.options else f.raw
                entry = {"style": "kernel", "raw": f.raw, "write": value, "options": f.options}
            entry["order"] = len(files)
            files[f.path] = entry
            changed = True
    if changed:
        save_originals(host, data)


def _remember_dirs(host: Host, created: list[str]) -> None:
    data = load_originals(host)
    if data is None:
        return
    data["dirs"] = list(dict.fromkeys(data.get("dirs", []) + created))
    save_originals(host, data)


def _check_specs(specs: list[dict[str, Any]]) -> None:
    """Settings that a profile could not make are refused before anything is read."""
    problem = specs_problem(specs)
    if problem:
        raise KnobError(f"refused, nothing changed: {problem}")


def verify(host: Host, specs: list[dict[str, Any]], persist: bool) -> list[dict[str, Any]]:
    _check_specs(specs)
    out = []
    for o in observe_all(host, specs, persist):
        if o.error:
            status, msg = "failed", f"failed to read: {o.error}"
        elif o.missing:
            status, msg = "missing", "not present on this host"
        elif o.differs:
            bad = [f.path for f in o.files if f.differs]
            status = "drift"
            msg = f"'{o.id}' = '{o.actual}', expected '{o.wanted}'" + (
                f" ({len(bad)} of {len(o.files)} files differ, e.g. {bad[0]})"
                if len(o.files) > 1
                else ""
            )
        else:
            status, msg = "ok", ""
        out.append(
            {"id": o.id, "wanted": o.wanted, "actual": o.actual, "status": status, "message": msg}
        )
    return out


def rollback(host: Host, check: bool, lock_timeout: float | None = None) -> list[dict[str, Any]]:
    with locked(host, create=False, timeout=lock_timeout):
        stale = clean_temp_files(host, check)
        data = load_originals(host)
        results: list[dict[str, Any]] = [
            {
                "path": p,
                "status": "would remove" if check else "removed",
                "message": "temp file of a killed run",
            }
            for p in stale
        ]
        if data is None:
            if not check and host.exists(APPLIED):
                host.remove_file(APPLIED)
            return results
        # Entries another layer saved (the kernel command line: `layer: cmdline`, restored
        # and regenerated by agent/bootloader.py) stay in the record for that layer.
        others = {p: e for p, e in data["files"].items() if e.get("layer", "os") != "os"}
        mine = {p: e for p, e in data["files"].items() if p not in others}
        entries = sorted(mine.items(), key=lambda kv: -int(kv[1].get("order", 0)))
        failed = False
        for path, e in entries:
            try:
                current = host.read(path) if host.exists(path) else None
                if e["style"] == "file":
                    if not e["exists"]:
                        todo = current is not None
                        if todo and not check:
                            host.remove_file(path)
                    else:
                        todo = current != e["raw"]
                        if todo and not check:
                            host.write_file(path, e["raw"], [])
                elif current is None:
                    # A kernel attribute that is gone (a CPU that SMT-off or a reboot took
                    # away): there is nothing to restore.
                    results.append(
                        {"path": path, "status": "gone", "message": "no longer on this host"}
                    )
                    continue
                else:
                    todo = current != e["raw"]
                    if todo and not check:
                        f = FileState(path, current, "", "", "", options=e.get("options") or [])
                        _write_kernel(host, f, e["write"])
                status = ("would restore" if check else "restored") if todo else "unchanged"
                results.append({"path": path, "status": status, "message": ""})
            except KnobError as err:
                failed = True
                results.append({"path": path, "status": "failed", "message": str(err)})
        if check or failed:
            return results
        for d in sorted(data.get("dirs", []), key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(host.path(d))
        host.remove_file(APPLIED)  # nothing is wanted any more: the node agent stands down
        if others:  # keep what another layer still has to restore
            save_originals(host, {**data, "files": others})
            return results
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        hist = host.path(f"{STATE_DIR}/history")
        os.makedirs(hist, exist_ok=True)
        os.replace(host.path(ORIGINALS), os.path.join(hist, f"originals-rolled-back-{stamp}.json"))
        return results


# ---------------------------------------------------------------------------------------
# The record of wanted settings (APPLIED): what `tuner apply` last converged this host to.
# The node agent (agent/nodeagent.py) re-applies it at boot and on udev events, through the
# same `apply` as above; rollback removes it.


def save_applied(host: Host, specs: list[dict[str, Any]], persist: bool) -> None:
    """Keep the wanted settings on the host (atomically), for the node agent."""
    problem = specs_problem(specs)
    if problem:
        raise KnobError(f"not recorded in {APPLIED}: {problem}")
    data = {
        "version": 1,
        "saved": time.time(),
        "persist": persist,
        "sim_kernel": host.sim_kernel,
        "settings": specs,
    }
    host.write_file(APPLIED, json.dumps(data, indent=1, sort_keys=True) + "\n", [])


def load_applied(host: Host) -> dict[str, Any] | None:
    """The wanted settings tuner recorded on this host; None when there are none."""
    real = host.path(APPLIED)
    if not os.path.lexists(real):
        return None
    data = read_record(real, f"{APPLIED} ({real})")
    problem = _applied_problem(data)
    if problem:
        raise KnobError(f"{APPLIED} ({real}) is not a record tuner wrote: {problem}")
    return data  # type: ignore[no-any-return]


def _applied_problem(data: Any) -> str:
    """As strict as the profile the record came from: only the fields save_applied writes,
    only settings a profile can make (spec_problem)."""
    if not isinstance(data, dict):
        return f"a JSON object is expected, found {type(data).__name__}"
    extra = sorted(set(data) - {"version", "saved", "persist", "sim_kernel", "settings"})
    if extra:
        return f"unknown field {extra[0][:80]!r}"
    if type(data.get("version")) is not int or data["version"] != 1:
        return "'version' must be 1"
    if not isinstance(data.get("saved", 0), int | float) or isinstance(data.get("saved"), bool):
        return "'saved' must be a time"
    for k in ("persist", "sim_kernel"):
        if not isinstance(data.get(k, False), bool):
            return f"'{k}' must be true or false"
    return specs_problem(data.get("settings"))


def load_agent_result(host: Host) -> dict[str, Any] | None:
    """The node agent's last result (a short summary for verify), None when it never ran."""
    real = host.path(AGENT_RESULT)
    if not os.path.lexists(real):
        return None
    try:
        data = read_record(real, AGENT_RESULT)
    except KnobError as e:
        return {"error": str(e)}
    if not isinstance(data, dict):
        return {"error": f"{AGENT_RESULT} is not a JSON object"}
    keep = ["time", "trigger", "status", "changed", "failed", "conformant", "gpu_facts_stale"]
    keep.append("message")
    return {k: data[k] for k in keep if k in data}
