"""Fleet tables: hosts with the same result share one row, named as ClusterShell ranges.

Every layer's table (OS, BIOS, next the kernel command line) is built the same way: the
layer turns each host into a `HostView` (its status, a one-line summary, the rows that
differ or failed, every row for `--detail`, and its messages), and `fleet_table` prints them:

    hosts              status     setting              before -> after
    node[01-62] (62)   unchanged  9 settings unchanged
    node[03,07] (2)    changed    9 settings: 1 changed, 8 unchanged
                       changed    sysctl.vm.swappiness 60 -> 10

By default hosts whose views are equal (status, summary, rows, messages) are one group, and
only the rows that differ or failed are listed; `detail=True` gives every host its own group
with every row. Messages never go in a cell: they are numbered notes under the table
(`[1] node07: ...`), so a long error does not widen the status column. Pure: no I/O but the
console it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

STYLE = {
    "ok": "green",
    "unchanged": "green",
    "nothing to do": "green",
    "skipped": "dim",
    "changed": "yellow",
    "would change": "yellow",
    "restored": "yellow",
    "would restore": "yellow",
    "removed": "yellow",
    "would remove": "yellow",
    "would reboot": "yellow",
    "missing": "cyan",
    "missing (allowed)": "cyan",
    "drift": "red",
    "mismatch": "red",
    "pending": "cyan",
    "pending reboot": "cyan",
    "not started": "bold red",
    "failed": "bold red",
    "unreachable": "bold red",
    "error": "bold red",
    "broken": "bold red",
    "not installed": "red",
}

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Text as rich shows it literally (host names, values, messages): markup escaped, and
    control characters other than tab and newline (ESC sequences, CR) written as visible
    escapes (`\\x1b`), since Rich passes them to the terminal as they are."""
    from rich.markup import escape as rich_escape

    return rich_escape(visible(text))


def visible(text: str) -> str:
    """Control characters other than tab and newline as visible escapes (`\\x1b`)."""
    return _TERMINAL_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def st(status: str) -> str:
    """A status word, coloured for a table (markup-safe)."""
    s = STYLE.get(status)
    return f"[{s}]{escape(status)}[/]" if s else escape(status)


def n_of(count: int, word: str, plural: str | None = None) -> str:
    """`1 host`, `2 hosts` (never "1 hosts")."""
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def fold(names: Sequence[str]) -> str:
    """Host names as a ClusterShell range (`node[01-64]`); plain names if any cannot be
    folded (a name with characters a node set gives meaning to)."""
    if not names:
        return ""
    if all(_PLAIN_NAME.match(n) for n in names):
        try:
            from ClusterShell.NodeSet import NodeSet

            return str(NodeSet.fromlist(list(names)))
        except Exception:  # noqa: BLE001 - any parse trouble: list them as they are
            pass
    return ",".join(names)


def counted(statuses: Iterable[str], noun: str) -> str:
    """`9 settings unchanged`, `9 settings: 2 changed, 7 unchanged`, `no settings`."""
    by: dict[str, int] = {}
    for s in statuses:
        by[s] = by.get(s, 0) + 1
    total = sum(by.values())
    if total == 0:
        return f"no {noun}s"
    if len(by) == 1:
        return f"{n_of(total, noun)} {next(iter(by))}"
    return f"{n_of(total, noun)}: " + ", ".join(f"{n} {k}" for k, n in by.items())


@dataclass(frozen=True)
class Row:
    """One line under a group: its own status and the layer's cells."""

    status: str
    cells: tuple[str, ...]


@dataclass
class HostView:
    """What one host shows in one layer's table."""

    host: str
    status: str  # the layer's status on this host
    summary: str = ""  # one line: "9 settings unchanged", "Dell pending reboot, reboot needed"
    rows: list[Row] = field(default_factory=list)  # what differs or failed (default view)
    all_rows: list[Row] | None = None  # every row (--detail); None: the same as rows
    notes: list[str] = field(default_factory=list)  # messages (printed as numbered notes)

    def key(self) -> tuple[Any, ...]:
        return (self.status, self.summary, tuple(self.rows), tuple(self.notes))


@dataclass
class Group:
    hosts: list[str]
    view: HostView


def group(views: Sequence[HostView], detail: bool = False) -> list[Group]:
    """Hosts with equal views as one group, in the order their first host comes;
    `detail`: one group per host."""
    if detail:
        return [Group([v.host], v) for v in views]
    out: dict[tuple[Any, ...], Group] = {}
    for v in views:
        k = v.key()
        if k in out:
            out[k].hosts.append(v.host)
        else:
            out[k] = Group([v.host], v)
    return list(out.values())


def fleet_table(
    title: str,
    columns: Sequence[str],
    views: Sequence[HostView],
    console: Any,
    *,
    detail: bool = False,
) -> list[Group]:
    """Print the grouped table (`hosts`, `status`, then the layer's `columns`) and its
    notes; returns the groups (for tests and callers that add a line)."""
    from rich.table import Table

    groups = group(views, detail)
    t = Table(title=title, title_justify="left", show_lines=False)
    t.add_column("hosts", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for c in columns:
        t.add_column(c)
    blanks = ("",) * len(columns)
    notes: dict[str, int] = {}  # note text -> its number
    note_hosts: dict[int, list[str]] = {}
    for g in groups:
        v = g.view
        nums = []
        for text in v.notes:
            num = notes.setdefault(text, len(notes) + 1)
            note_hosts.setdefault(num, []).extend(g.hosts)
            nums.append(num)
        marks = [_marks(nums)] if nums else []
        label = escape(fold(g.hosts))
        if len(g.hosts) > 1:
            label += f" [dim]({len(g.hosts)})[/]"
        status = st(v.status) + ("".join(" " + escape(m) for m in marks))
        rows = (v.all_rows if v.all_rows is not None else v.rows) if detail else v.rows
        first = (escape(v.summary), *blanks[1:]) if columns else ()
        t.add_row(label, status, *first)
        for r in rows:
            cells = tuple(escape(c) for c in r.cells) + blanks[len(r.cells) :]
            t.add_row("", st(r.status), *cells[: len(columns)])
    console.print(t)
    for text, num in notes.items():
        console.print(
            f"[{num}] {fold(sorted(set(note_hosts[num]), key=_order(views)))}: {text}", markup=False
        )
    return groups


def _marks(nums: list[int]) -> str:
    """Note numbers as one short mark: `[1]`, `[2,5]`, `[2-9]` (the status column stays narrow)."""
    nums = sorted(set(nums))
    parts: list[str] = []
    start = prev = nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return "[" + ",".join(parts) + "]"


def _order(views: Sequence[HostView]) -> Any:
    pos = {v.host: i for i, v in enumerate(views)}
    return lambda name: pos.get(name, 0)


def fleet_line(statuses: Sequence[str]) -> str:
    """`64 hosts: 62 ok, 2 drift` (counts in the order first seen; `1 host`)."""
    by: dict[str, int] = {}
    for s in statuses:
        by[s] = by.get(s, 0) + 1
    return f"{n_of(len(statuses), 'host')}: " + ", ".join(f"{n} {k}" for k, n in by.items())
