"""Fleet tables (agent/view.py) on report data files: hosts with the same result share a row
named as a ClusterShell range, only what differs or failed is listed, --detail lists all."""

from __future__ import annotations

import io
import json
from typing import Any

from conftest import DATA
from rich.console import Console

from agent import layers, report
from agent.layers.run import print_report
from agent.view import HostView, Row, _marks, counted, fleet_line, fleet_table, fold, group, n_of


def render(kind: str, detail: bool = False, width: int = 120, **changes: Any) -> str:
    """A report of tests/data/reports/<kind>-64.json as `tuner <kind>` prints it."""
    doc = json.loads((DATA / "reports" / f"{kind}-64.json").read_text())
    doc.update(changes)
    model = {"verify": report.VerifyReport, "apply": report.ApplyReport}[kind]
    r = model.model_validate(doc)
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, highlight=False)
    print_report(r, layers.make("all"), console, detail)
    return buf.getvalue()


def test_fold_ranges_and_plain_names() -> None:
    assert fold([f"node{i:02d}" for i in range(1, 65)]) == "node[01-64]"
    assert fold(["node03", "node01", "node02", "gpu7"]) == "gpu7,node[01-03]"
    # names a node set would read as syntax are listed as they are, never parsed
    assert fold(["a[1]", "b"]) == "a[1],b"
    assert fold([]) == ""


def test_words_never_say_1_hosts() -> None:
    assert n_of(1, "host") == "1 host" and n_of(2, "host") == "2 hosts"
    assert n_of(1, "batch", "batches") == "1 batch"
    assert fleet_line(["ok"]) == "1 host: 1 ok"
    assert counted(["ok"] * 9, "setting") == "9 settings ok"
    assert counted(["changed", "unchanged", "unchanged"], "setting") == (
        "3 settings: 1 changed, 2 unchanged"
    )
    assert counted([], "file") == "no files"
    assert _marks([2, 3, 4, 7, 9, 10]) == "[2-4,7,9-10]"


def test_64_identical_hosts_apply_is_a_handful_of_lines() -> None:
    out = render("apply")
    lines = out.strip().splitlines()
    assert len(lines) <= 18, out  # title, header, one group of 9 settings, the fleet line
    assert "node[01-64] (64)" in out and "9 settings changed" in out
    assert "sysctl.vm.swappiness" in out and "60 -> 10" in out
    assert "64 hosts: 64 changed." in out
    assert "1 hosts" not in out


def test_64_hosts_verify_names_the_drifted_and_their_settings() -> None:
    out = render("verify")
    lines = out.strip().splitlines()
    assert len(lines) <= 30, out
    assert "node[01-16,18-41,43-49,51-64] (61)" in out
    drifted = next(line for line in lines if "node[17,42] (2)" in line)
    assert "drift" in drifted
    row = lines[lines.index(drifted) + 1 :]
    assert any("sysctl.vm.swappiness" in x and "10" in x and "60" in x for x in row[:3])
    assert "Needs attention: node[17,42,50]" in out
    assert "The fleet does NOT conform." in out


def test_error_text_is_a_note_not_a_wide_status_cell() -> None:
    out = render("verify")
    table_lines = [x for x in out.splitlines() if x.startswith(("│", "┃"))]
    assert not any("Connection refused" in x for x in table_lines)
    header = next(x for x in table_lines if "status" in x)
    status_width = len(header.split("┃")[2])
    assert status_width <= len(" unreachable [1] ") + 1, header
    assert any(x.startswith("[1] node50: Failed to connect") for x in out.splitlines())


def test_detail_gives_every_host_and_every_row() -> None:
    out = render("verify", detail=True, width=160)
    for i in range(1, 65):
        assert f"│ node{i:02d} " in out
    # every setting of a conforming host, not only what differs
    assert out.count("sysctl.kernel.nmi_watchdog") >= 63
    assert "node[01-64]" not in out


def test_groups_split_on_any_difference() -> None:
    a = HostView("n1", "changed", "1 setting changed", [Row("changed", ("x", "1 -> 2"))])
    b = HostView("n2", "changed", "1 setting changed", [Row("changed", ("x", "1 -> 2"))])
    c = HostView("n3", "changed", "1 setting changed", [Row("changed", ("x", "1 -> 3"))])
    d = HostView("n4", "failed", notes=["boom"])
    groups = group([a, b, c, d])
    assert [g.hosts for g in groups] == [["n1", "n2"], ["n3"], ["n4"]]
    assert [g.hosts for g in group([a, b], detail=True)] == [["n1"], ["n2"]]


def test_markup_in_host_names_and_values_is_shown_literally() -> None:
    buf = io.StringIO()
    v = HostView("[red]x", "drift", "[bold]s", [Row("drift", ("[b]id", "[i]v"))], notes=["[x]"])
    fleet_table("t", ["setting", "value"], [v], Console(file=buf, width=100), detail=False)
    out = buf.getvalue()
    assert "[red]x" in out and "[b]id" in out and "[i]v" in out and "[x]" in out
