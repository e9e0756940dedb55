"""Validated loaders: one per kind of file tuner reads that someone else may have written
(docs/security.md, "Threat model"). Every loader

- opens the file without blocking and reads it only if it is a regular file (a FIFO, a
  device or a socket in its place is bad input, never a hang);
- reads at most a size limit (bigger is refused, never read whole);
- decodes strict UTF-8 and checks types (pydantic in strict mode: "3" is not 3);
- checks what ties the fields together (totals that match their nodes, verdicts that match
  the usable lists, identities that match the inventory);

and reports bad input as BadInput (exit 2) naming the file and the field.

Kinds: `read_regular` (any file, the base of the others, used by agent/yamlfile.py for
profiles, policies and inventories), `load_report` (usable-GPU inventories, `--from` of
export and launch), `check_identities` (a report against the inventory it is used with),
`load_history` (runs/history.jsonl), `load_facts` (facts snapshots, `check --facts`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, short

if TYPE_CHECKING:
    from agent.gpu.gate import GpuInventory
    from agent.gpu.model import NodeFacts

MiB = 1024 * 1024
MAX_REPORT_BYTES = 512 * MiB  # a 10,000-node report is ~60 MiB (bench/export_bench.py)
MAX_FACTS_BYTES = 256 * MiB
MAX_HISTORY_BYTES = 4 * MiB  # read from the end: the file is trimmed at 2 MB when written
MAX_HISTORY_LINE = 64 * 1024

REPORT_SCHEMA = "tuner.gpu-inventory/1"
# The same rules as the inventory (agent/inventory.py: HOSTNAME, ADDRESS): a report is a file
# anyone can edit, and its names and addresses reach other programs.
NODE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}\Z")
ADDRESS = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,252}|\[?[0-9A-Fa-f:.]{2,45}\]?)\Z")
USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}\Z")
BDF = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]\Z")
HIP_UUID = re.compile(r"^GPU-[0-9A-Za-z-]{1,64}\Z")  # what ROCR_VISIBLE_DEVICES accepts
RENDER_NODE = re.compile(r"^/dev/dri/renderD[0-9]{1,6}\Z")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
# Identity strings (serial, UUID, versions): printable, one line.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_GPU_INDEX = 4095


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file, at most `max_bytes` (more is refused). A FIFO, device,
    socket or folder is refused without reading (opened O_NONBLOCK, checked with fstat on
    the descriptor that is read, so a swap between the check and the read cannot hang it).
    `-` is standard input (whatever it is: the user piped it)."""
    name = str(path)
    if name == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise BadInput(f"larger than {_size(max_bytes)}: refused", file="-")
        return data
    if "\x00" in name:
        raise BadInput(f"{what} name contains a NUL byte", file=repr(name))
    try:
        st = os.stat(name)
    except OSError as e:
        raise BadInput(f"cannot read the {what}: {e.strerror or e}", file=name) from e
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"is {file_kind(st.st_mode)}, not a {what}: refused", file=name)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as e:
        raise BadInput(f"cannot read the {what}: {e.strerror or e}", file=name) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"is {file_kind(st.st_mode)}, not a {what}: refused", file=name)
        if st.st_size > max_bytes:
            raise BadInput(f"larger than {_size(max_bytes)}: refused", file=name)
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            b = os.read(fd, min(left, 4 * MiB))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
    except OSError as e:
        raise BadInput(f"cannot read the {what}: {e.strerror or e}", file=name) from e
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # grew while being read
        raise BadInput(f"larger than {_size(max_bytes)}: refused", file=name)
    return data


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // 1024} KiB"


def decode_utf8(data: bytes, file: str) -> str:
    """Strict UTF-8; a NUL byte is refused (no text format tuner reads has one)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BadInput(f"not UTF-8 text (byte {e.start}, line {line})", file=file) from e
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise BadInput(f"contains a NUL byte (line {line}): not a text file", file=file)
    return text


def read_text(path: str | Path, max_bytes: int, what: str = "file") -> str:
    return decode_utf8(read_regular(path, max_bytes, what), str(path))


# ------------------------------------------------------------------------- reports


def load_report(path: str, max_bytes: int = MAX_REPORT_BYTES) -> GpuInventory:
    """A `tuner check --output` / `tuner ready --output` file (or a `ready --json`
    document, which carries one under "gpus"), validated: types (strict), formats of what
    reaches other programs, and consistency (check_report). Exit 2 when not."""
    text = read_text(path, max_bytes, "report")
    with gc_paused():
        return _load_report(path, text)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (then restored as it was). A report becomes
    millions of long-lived objects with no cycles: the collector's passes over them while
    they are built took 2/3 of loading a 10,000-node report (bench/export_bench.py). Nested
    uses keep it paused until the outermost ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load_report(path: str, text: str) -> GpuInventory:
    from pydantic import ValidationError

    from agent.errors import validation_text
    from agent.gpu.gate import GpuInventory

    try:
        # pydantic's own JSON parser (several times faster than json.loads + validate on a
        # 10,000-node report, bench/export_bench.py): the head first, then the whole model
        head = _head_model().model_validate_json(text)
        if isinstance(head.gpus, dict) and head.schema_ != REPORT_SCHEMA:
            text = json.dumps(head.gpus)  # a `tuner ready --json` document carries one
            head = _head_model().model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        what = "not JSON" if err["type"] == "json_invalid" else "not a JSON object"
        raise BadInput(f"{what}: {short(err['msg'], 200)}", file=path) from e
    if head.schema_ != REPORT_SCHEMA:
        got = head.schema_
        raise BadInput(
            f"not a usable-GPU inventory (schema {REPORT_SCHEMA}"
            + (f", got {short(got, 60)!r}" if got is not None else "")
            + "; write one with `tuner check --output FILE` or `tuner ready --output FILE`)",
            file=path,
            field="schema",
        )
    try:
        inv = GpuInventory.model_validate_json(text, strict=True)
    except ValidationError as e:
        field, msg = validation_text(e, GpuInventory)
        raise BadInput(msg, file=path, field=field) from e
    check_report(inv, path)
    return inv


@functools.cache
def _head_model() -> Any:
    """The keys that say what a JSON document is (the rest is skipped while parsing).
    Built on first use: pydantic is not imported by the CLI's start-up (agent.history)."""
    from pydantic import BaseModel, ConfigDict, Field

    class _Head(BaseModel):
        model_config = ConfigDict(extra="ignore", populate_by_name=True)
        schema_: Any = Field(default=None, alias="schema")
        gpus: Any = None

    return _Head


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bad(path: str, field: str, msg: str) -> BadInput:
    return BadInput(msg, file=path, field=field)


def _text(path: str, field: str, v: str | None, pattern: re.Pattern[str] | None = None) -> None:
    if v is None:
        return
    if pattern is not None:
        if not pattern.match(v):
            raise _bad(path, field, f"{short(v, 80)!r} is not allowed here ({pattern.pattern})")
    elif not _plain_ok(v):
        raise _bad(path, field, f"{short(v, 80)!r}: control characters or over 1024 characters")


def _plain_ok(v: str) -> bool:
    return len(v) <= 1024 and not CONTROL.search(v)


class _Seen:
    """Values already checked: a fleet repeats the same PCI addresses, firmware versions and
    models on every node, so each distinct value is checked once (10,000 nodes: ~0.5 s
    instead of ~5 s)."""

    def __init__(self) -> None:
        self.ok: dict[re.Pattern[str] | None, set[str]] = {}

    def check(self, path: str, field: str, v: str | None, pattern: re.Pattern[str] | None) -> None:
        if v is None:
            return
        ok = self.ok.setdefault(pattern, set())
        if v not in ok:
            _text(path, field, v, pattern)
            ok.add(v)


def check_report(inv: GpuInventory, path: str) -> None:
    """What ties a report's fields together, as tuner's gate writes them (agent/gpu/gate.py).
    A hand-edited report that breaks one is refused: an excluded GPU cannot be put back into
    a usable list, a count cannot disagree with its nodes, a node cannot have two names."""
    if not TIMESTAMP.match(inv.generated_at):
        raise _bad(path, "generated_at", "not a UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    if inv.gate.passed != (not inv.gate.reasons):
        raise _bad(path, "gate.passed", "passed must be true exactly when gate.reasons is empty")
    seen: set[str] = set()
    values = _Seen()
    usable_total = excluded_total = usable_nodes = 0
    for i, n in enumerate(inv.nodes):
        at = f"nodes.{i}"
        if not NODE_NAME.match(n.name):
            raise _bad(
                path,
                f"{at}.name",
                f"node name {short(n.name, 80)!r} is not a host name (letters, digits, '.', "
                "'-', '_')",
            )
        if n.name in seen:
            raise _bad(path, f"{at}.name", f"node {n.name!r} appears twice")
        seen.add(n.name)
        values.check(path, f"{at}.address", n.address, ADDRESS)
        values.check(path, f"{at}.user", n.user, USER)
        if n.port is not None and not 1 <= n.port <= 65535:
            raise _bad(path, f"{at}.port", f"{n.port} is not a TCP port (1-65535)")
        _check_node_gpus(inv, i, path, values)
        usable_total += len(n.usable)
        excluded_total += len(n.excluded)
        usable_nodes += 1 if n.usable else 0
    totals = (
        ("nodes_total", inv.nodes_total, len(inv.nodes)),
        ("nodes_usable", inv.nodes_usable, usable_nodes),
        ("nodes_excluded", inv.nodes_excluded, len(inv.nodes) - usable_nodes),
        ("usable_gpus", inv.usable_gpus, usable_total),
        ("excluded_gpus", inv.excluded_gpus, excluded_total),
    )
    for field, said, counted in totals:
        if said != counted:
            raise _bad(path, field, f"says {said}, its nodes give {counted}")
    if inv.installed_gpus < usable_total + excluded_total:
        raise _bad(
            path,
            "installed_gpus",
            f"says {inv.installed_gpus}, fewer than the usable and excluded GPUs of its nodes "
            f"({usable_total + excluded_total})",
        )
    if inv.unknown_gpus < 0:
        raise _bad(path, "unknown_gpus", "must not be negative")


_IDENTITY = ("uuid", "serial", "market_name", "vbios_version", "driver_version")
_FORMATS = (("bdf", BDF), ("hip_uuid", HIP_UUID), ("render_node", RENDER_NODE))


def _check_node_gpus(inv: GpuInventory, i: int, path: str, values: _Seen) -> None:
    n = inv.nodes[i]
    at = f"nodes.{i}"
    want = (
        ("ok",)
        if n.usable and not n.excluded
        else ("degraded",)
        if n.usable
        else ("excluded", "failed")
    )
    if n.status not in want:
        what = f"{len(n.usable)} usable and {len(n.excluded)} excluded GPUs"
        raise _bad(path, f"{at}.status", f"{n.status!r} does not fit {what} ({'/'.join(want)})")
    keys: dict[str, str] = {}  # identity -> "usable"/"excluded"
    indices: set[int] = set()
    plain = values.ok.setdefault(None, set())
    formats = [(f, p, values.ok.setdefault(p, set())) for f, p in _FORMATS]
    for side, gpus in (("usable", n.usable), ("excluded", n.excluded)):
        for j, g in enumerate(gpus):
            gat = f"{at}.{side}.{j}"
            if g.index is not None and not 0 <= g.index <= MAX_GPU_INDEX:
                raise _bad(path, f"{gat}.index", f"{g.index} is not a GPU index (0-4095)")
            for f, pattern, ok in formats:
                v = getattr(g, f)
                if v is not None and v not in ok:
                    values.check(path, f"{gat}.{f}", v, pattern)
            for f in _IDENTITY:
                v = getattr(g, f)
                if v is not None and v not in plain:
                    values.check(path, f"{gat}.{f}", v, None)
            fw = g.firmware
            if fw and not (plain.issuperset(fw) and plain.issuperset(fw.values())):
                for k, fv in fw.items():
                    values.check(path, f"{gat}.firmware", k, None)
                    values.check(path, f"{gat}.firmware.{short(k, 40)}", fv, None)
            if side == "usable":
                if g.index is not None:
                    if g.index in indices:
                        raise _bad(path, f"{gat}.index", f"GPU index {g.index} is usable twice")
                    indices.add(g.index)
                blocking = [c.check for c in g.checks if c.blocks]
                if blocking:
                    raise _bad(
                        path,
                        f"{gat}.checks",
                        f"a usable GPU cannot have a failed check ({', '.join(blocking[:5])})",
                    )
            for key in _gpu_keys(g.index if side == "usable" else None, g.bdf, g.uuid, g.hip_uuid):
                if key in keys:
                    raise _bad(
                        path,
                        f"{gat}",
                        f"GPU {key.split(':', 1)[1]} is listed twice ({keys[key]} and {side})",
                    )
                keys[key] = side
    for j, view in enumerate(n.gpus):  # the per-GPU view must agree with the lists
        side = "excluded" if view.verdict == "excluded" else "usable"
        if view.bdf:
            listed = keys.get(f"bdf:{view.bdf.lower()}", side)
            if listed != side and not (side == "usable" and not n.usable):
                raise _bad(
                    path,
                    f"{at}.gpus.{j}.verdict",
                    f"GPU {view.bdf} is {view.verdict!r} here but in the {listed} list",
                )
        values.check(path, f"{at}.gpus.{j}.bdf", view.bdf, BDF)
        values.check(path, f"{at}.gpus.{j}.render_node", view.render_node, RENDER_NODE)


def _gpu_keys(index: int | None, bdf: str | None, uuid: str | None, hip: str | None) -> list[str]:
    out = []
    if index is not None:
        out.append(f"index:{index}")
    if bdf:
        out.append(f"bdf:{bdf.lower()}")
    if uuid:
        out.append(f"uuid:{uuid}")
    if hip:
        out.append(f"hip_uuid:{hip}")
    return out


def check_identities(inv: GpuInventory, hosts: list[Any], path: str) -> None:
    """Every node of the report that is in the inventory has the inventory's address, port
    and user (attach_addresses copied them): a report cannot send a launch's ranks, or an
    export's consumers, to another machine than the inventory names."""
    by_name = {h.name: h for h in hosts}
    for i, n in enumerate(inv.nodes):
        h = by_name.get(n.name)
        if h is None:
            continue
        port = h.vars.get("ansible_port")
        want = {
            "address": h.address,
            "port": int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
            "user": h.vars.get("ansible_user")
            if isinstance(h.vars.get("ansible_user"), str)
            else None,
        }
        for field, v in want.items():
            have = getattr(n, field)
            if have is not None and have != v:
                raise _bad(
                    path,
                    f"nodes.{i}.{field}",
                    f"node {n.name}: {field} {short(str(have), 80)!r} is not the inventory's "
                    f"({short(str(v), 80)!r}): the report was changed or is for another "
                    "inventory",
                )


# ------------------------------------------------------------------------- run history


HISTORY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "at": str,
    "command": str,
    "args": list,
    "exit_code": int,
    "seconds": (int, float),
    "summary": dict,
}


def load_history(path: Path, n: int) -> tuple[list[dict[str, Any]], int]:
    """The last `n` entries of a history file, newest first, and how many lines were
    skipped because they are not entries (bad JSON, wrong types, control characters in a
    word). Only the last MAX_HISTORY_BYTES are read. A missing file is no history; a
    FIFO, device or folder in its place is bad input."""
    name = str(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return [], 0
    except OSError as e:
        raise BadInput(f"cannot read the run history: {e.strerror or e}", file=name) from e
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"is {file_kind(st.st_mode)}, not a run history: refused", file=name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise BadInput(f"cannot read the run history: {e.strerror or e}", file=name) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"is {file_kind(st.st_mode)}, not a run history: refused", file=name)
        start = max(st.st_size - MAX_HISTORY_BYTES, 0)
        os.lseek(fd, start, os.SEEK_SET)
        data = os.read(fd, MAX_HISTORY_BYTES)
    except OSError as e:
        raise BadInput(f"cannot read the run history: {e.strerror or e}", file=name) from e
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first one is cut
    out: list[dict[str, Any]] = []
    skipped = 0
    for raw in reversed(lines):
        if len(out) >= n:
            break
        if not raw.strip():
            continue
        entry = history_entry(raw)
        if entry is None:
            skipped += 1
        else:
            out.append(entry)
    return out, skipped


def history_entry(raw: bytes) -> dict[str, Any] | None:
    """One history line as an entry, or None when it is not one."""
    if len(raw) > MAX_HISTORY_LINE:
        return None
    try:
        entry = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    for k, t in HISTORY_FIELDS.items():
        v = entry.get(k)
        if not isinstance(v, t) or isinstance(v, bool):
            return None
    if not all(isinstance(a, str) and not CONTROL.search(a) for a in entry["args"]):
        return None
    if not TIMESTAMP.match(entry["at"]) or len(entry["command"]) > 100:
        return None
    if CONTROL.search(entry["command"]) or not _summary_ok(entry["summary"]):
        return None
    return {k: entry[k] for k in HISTORY_FIELDS}


def _summary_ok(s: dict[Any, Any]) -> bool:
    """A summary as agent.history.summarize writes it: short names, numbers or short words,
    `by_status` a mapping of statuses to counts."""
    for k, v in s.items():
        if not isinstance(k, str) or len(k) > 40 or CONTROL.search(k):
            return False
        if k == "by_status":
            if not isinstance(v, dict) or not all(
                isinstance(a, str)
                and len(a) <= 40
                and not CONTROL.search(a)
                and isinstance(b, int)
                and not isinstance(b, bool)
                for a, b in v.items()
            ):
                return False
        elif isinstance(v, str):
            if len(v) > 200 or CONTROL.search(v):
                return False
        elif not (v is None or isinstance(v, int | float)):
            return False
    return True


# ------------------------------------------------------------------------- node facts


def load_facts(path: str, max_bytes: int = MAX_FACTS_BYTES) -> list[NodeFacts]:
    """A facts snapshot (`tuner facts --json`, one node or {"nodes": [...]}), validated."""
    from pydantic import ValidationError

    from agent.errors import validation_text
    from agent.gpu.model import NodeFacts

    text = read_text(path, max_bytes, "facts snapshot")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError as e:  # the same words as every other reader's (agent/cli/common.py)
        raise BadInput("input nested too deeply to read", file=path) from e
    except ValueError as e:
        raise BadInput(f"not JSON: {short(str(e), 200)}", file=path) from e
    docs = data.get("nodes") if isinstance(data, dict) and "nodes" in data else [data]
    if not isinstance(docs, list):
        raise BadInput("`nodes` must be a list of node facts", file=path, field="nodes")
    out = []
    names: set[str] = set()
    for i, d in enumerate(docs):
        try:
            f = NodeFacts.model_validate(d)
        except ValidationError as e:
            field, msg = validation_text(e, NodeFacts)
            raise BadInput(
                f"not a facts snapshot: {msg}", file=path, field=f"nodes.{i}.{field}"
            ) from e
        if not NODE_NAME.match(f.name):
            raise BadInput(
                f"node name {short(f.name, 80)!r} is not a host name",
                file=path,
                field=f"nodes.{i}.name",
            )
        if f.name in names:
            raise BadInput(f"node {f.name!r} appears twice", file=path, field=f"nodes.{i}.name")
        names.add(f.name)
        out.append(f)
    return out
