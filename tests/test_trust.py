"""Trust boundaries (issue 21, docs/security.md "Threat model"): one validated loader per input
kind, one encoder per consumer. Each class of attack against the loaders (bad bytes, wrong
types, FIFOs, a hand-edited report) and the encoders (node text that would become syntax) is
tried here; the exports are read back by their real consumers (bash, ansible-playbook,
ansible-inventory, promtool when installed). Pure: report files, no fleet."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, run_tuner

from agent import history, loaders
from agent.errors import BadInput
from agent.export import encode, render
from agent.gpu.gate import GpuInventory

MLPERF = DATA / "reports" / "mlperf-llama2-70b.json"
MIXED = DATA / "reports" / "mixed.json"
BIN = Path(sys.executable).parent


def clean_exit(r: Any, *words: str, rc: int = 2) -> None:
    assert r.rc == rc, (r.rc, r.out, r.err)
    assert "Traceback" not in r.out + r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


def report(src: Path = MLPERF) -> dict[str, Any]:
    return copy.deepcopy(json.loads(src.read_text()))


def save(tmp: Path, doc: Any, name: str = "r.json") -> Path:
    p = tmp / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def refused(path: Path, *words: str) -> BadInput:
    with pytest.raises(BadInput) as e:
        loaders.load_report(str(path))
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    return e.value


def fifo(tmp: Path, name: str) -> Path:
    p = tmp / name
    os.mkfifo(p, 0o600)
    return p


# ------------------------------------------------------------------------- any file


def test_read_regular_refuses_what_is_not_a_file(tmp_path: Path) -> None:
    f = fifo(tmp_path, "pipe")
    t = time.monotonic()
    for path, word in ((f, "FIFO"), (Path("/dev/null"), "character device"), (tmp_path, "folder")):
        with pytest.raises(BadInput, match=word):
            loaders.read_regular(path, 1024, "report")
    assert time.monotonic() - t < 2  # refused without waiting for a writer
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(BadInput, match="larger than 1 KiB"):
        loaders.read_regular(big, 1024)
    bad = tmp_path / "bad"
    bad.write_bytes(b"ok\n\xff\xfe")
    with pytest.raises(BadInput, match="not UTF-8 text .*line 2"):
        loaders.read_text(bad, 1024)
    nul = tmp_path / "nul"
    nul.write_bytes(b"a\nb\x00")
    with pytest.raises(BadInput, match="NUL byte .line 2"):
        loaders.read_text(nul, 1024)
    with pytest.raises(BadInput, match="NUL"):
        loaders.read_regular("a\x00b", 10)


# ------------------------------------------------------------------------- reports


def test_report_bad_bytes_types_and_fifos_exit_2(tmp_path: Path) -> None:
    cases: list[tuple[Path, str]] = [
        (save(tmp_path, b"\xff\xfe{}".decode("latin-1"), "latin.json"), "not JSON"),
        (save(tmp_path, "{" * 100_000, "deep.json"), "not JSON"),
        (save(tmp_path, [1, 2], "list.json"), "not a JSON object"),
    ]
    (tmp_path / "bytes.json").write_bytes(b'{"schema": "\xff"}')
    cases.append((tmp_path / "bytes.json", "not UTF-8"))
    d = report()
    d["usable_gpus"] = "87"  # strict types: a string is not a count
    cases.append((save(tmp_path, d, "str.json"), "usable_gpus"))
    d = report()
    d["nodes"][0]["usable"][0]["index"] = True
    cases.append((save(tmp_path, d, "bool.json"), "nodes.0.usable.0.index"))
    d = report()
    d["nodes"][0]["usable"][0]["render_node"] = "/dev/dri/renderD128\nscontrol delete"
    cases.append((save(tmp_path, d, "nl.json"), "nodes.0.usable.0.render_node"))
    d = report()
    d["nodes"][1]["usable"][2]["serial"] = "ab\x1b]0;pwned\x07"
    cases.append((save(tmp_path, d, "esc.json"), "nodes.1.usable.2.serial"))
    for path, word in cases:
        refused(path, str(path), word)
    # through the CLI: export and launch, a FIFO included; no traceback, no hang
    for path, word in [*cases[:1], (fifo(tmp_path, "fifo.json"), "FIFO")]:
        r = run_tuner("export", "--from", str(path), "-f", "csv", state=tmp_path / "s", timeout=30)
        clean_exit(r, str(path), word)
        r = run_tuner(
            "launch",
            "--from",
            str(path),
            "--dry-run",
            "--",
            "true",
            state=tmp_path / "s",
            timeout=30,
        )
        clean_exit(r, str(path), word)


def _node07(d: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in d["nodes"] if n["name"] == "node07")


def test_hand_edited_report_cannot_make_an_excluded_gpu_usable(tmp_path: Path) -> None:
    # node07 has 7 usable GPUs and one excluded (12 uncorrectable ECC errors)
    d = report()
    n = _node07(d)
    n["usable"].append(n["excluded"][0])  # copied into the usable list, failed check and all
    refused(save(tmp_path, d), "nodes.6.usable.7.checks", "failed check")
    n["usable"][-1] = {**n["excluded"][0], "checks": []}  # and without its check
    refused(save(tmp_path, d), "listed twice")
    d = report()
    n = _node07(d)
    n["usable"].append(n["excluded"].pop())  # moved, its failed check still with it
    refused(save(tmp_path, d), "nodes.6.status")
    n["status"] = "ok"
    refused(save(tmp_path, d), "nodes.6.usable.7.checks", "failed check")
    n["usable"][-1]["checks"] = []
    n["gpus"] = [{"index": 5, "bdf": n["usable"][-1]["bdf"], "verdict": "excluded"}]
    refused(save(tmp_path, d), "nodes.6.gpus.0.verdict")
    n["gpus"] = []
    refused(save(tmp_path, d), "usable_gpus", "says 87, its nodes give 88")
    d["usable_gpus"], d["excluded_gpus"] = 88, 0
    loaders.load_report(str(save(tmp_path, d)))  # consistent: only --recheck can tell
    # the same through the CLI: exit 2, nothing written
    d = report()
    _node07(d)["usable"].append({**_node07(d)["excluded"][0], "checks": []})
    out = tmp_path / "hosts"
    r = run_tuner(
        "export",
        "--from",
        str(save(tmp_path, d)),
        "-f",
        "hostfile",
        "-o",
        str(out),
        state=tmp_path / "s",
    )
    clean_exit(r, "listed twice")
    assert not out.exists()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.update(nodes_total=12), ["nodes_total", "says 12, its nodes give 11"]),
        (lambda d: d.update(nodes_usable=10), ["nodes_usable"]),
        (lambda d: d.update(installed_gpus=3), ["installed_gpus"]),
        (lambda d: d["gate"].update(passed=False), ["gate.passed"]),
        (lambda d: d.update(schema="tuner.gpu-inventory/9"), ["schema", "got"]),
        (lambda d: d["nodes"][1].update(name="node01"), ["nodes.1.name", "appears twice"]),
        (lambda d: d["nodes"][1].update(name="-oProxyCommand=x"), ["nodes.1.name"]),
        (lambda d: d["nodes"][1].update(address="a b"), ["nodes.1.address"]),
        (lambda d: d["nodes"][1].update(port=70000), ["nodes.1.port"]),
        (lambda d: d["nodes"][1].update(status="failed"), ["nodes.1.status"]),
        (lambda d: d["nodes"][1]["usable"][1].update(index=0), ["usable twice"]),
        (lambda d: d["nodes"][1]["usable"][1].update(hip_uuid="GPU-1,2"), ["hip_uuid"]),
    ],
)
def test_report_consistency(tmp_path: Path, edit: Any, words: list[str]) -> None:
    d = report()
    edit(d)
    refused(save(tmp_path, d), *words)


def _inventory(tmp: Path, d: dict[str, Any]) -> Path:
    lines = ["[all]"] + [
        f"{n['name']} ansible_host={n['address']} ansible_port={n['port']} ansible_user={n['user']}"
        for n in d["nodes"]
    ]
    p = tmp / "inv.ini"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_report_cannot_point_the_head_elsewhere(tmp_path: Path) -> None:
    from agent.inventory import load_inventory

    d = report()
    inv_file = _inventory(tmp_path, d)
    hosts = load_inventory(inv_file).hosts
    loaders.check_identities(loaders.load_report(str(MLPERF)), hosts, str(MLPERF))
    d["nodes"][0]["address"] = "10.66.6.6"  # node01 is the head (most usable GPUs, first)
    edited = save(tmp_path, d)
    with pytest.raises(BadInput, match="nodes.0.address.*10.66.6.6.*not the inventory's"):
        loaders.check_identities(loaders.load_report(str(edited)), hosts, str(edited))
    r = run_tuner(
        "launch",
        "--from",
        str(edited),
        "-i",
        str(inv_file),
        "--dry-run",
        "--json",
        "--",
        "true",
        state=tmp_path / "s",
    )
    clean_exit(r, "nodes.0.address", "not the inventory's")
    ok = run_tuner(
        "launch",
        "--from",
        str(MLPERF),
        "-i",
        str(inv_file),
        "--dry-run",
        "--json",
        "--",
        "true",
        state=tmp_path / "s",
    )
    assert ok.rc == 0, ok.err
    assert json.loads(ok.out)["head_address"] == "127.0.0.1"


# ------------------------------------------------------------------------- run history


def test_history_is_validated(tmp_path: Path) -> None:
    f = history.history_file(tmp_path)
    f.parent.mkdir(parents=True)
    good = {
        "at": "2026-12-01T10:00:00Z",
        "command": "apply",
        "args": ["apply", "[bold red]x[/]"],
        "exit_code": 0,
        "seconds": 1.5,
        "summary": {"hosts": 2, "by_status": {"ok": 2}},
    }
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({**good, "exit_code": "0"}),
        json.dumps({**good, "args": ["a\x1b[2J"]}),
        json.dumps({**good, "summary": {"by_status": [1]}}),
        json.dumps({**good, "seconds": None}),
        "\xff",
    ]
    f.write_text("\n".join([json.dumps(good), *bad]) + "\n", errors="surrogateescape")
    entries, skipped = loaders.load_history(f, 10)
    assert entries == [good] and skipped == len(bad)
    # status shows the words as text, not markup; a FIFO in the file's place: exit 2, no hang
    r = run_tuner("status", state=tmp_path, timeout=30)
    assert r.rc == 0 and "[bold red]x[/]" in r.out, (r.out, r.err)
    assert f"{len(bad)} lines skipped" in r.out
    r = run_tuner("status", "--json", state=tmp_path, timeout=30)
    assert json.loads(r.out)["runs_skipped"] == len(bad)
    f.unlink()
    os.mkfifo(f)
    r = run_tuner("status", state=tmp_path, timeout=30)
    clean_exit(r, "history.jsonl", "FIFO")
    t = threading.Thread(target=history.record, args=(tmp_path, ["apply"], 0, 1.0, {}))
    t.start()
    t.join(5)
    assert not t.is_alive()  # recording into a FIFO neither blocks nor fails the command


# ------------------------------------------------------------------------- YAML, facts, BMC


def test_yaml_inputs_bad_bytes_and_fifos(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_bytes(b"name: b\nos: {}\x00\n")
    (tmp_path / "a.yml").write_text("name: a\ninclude: [b.yml]\n")
    (tmp_path / "c.yml").write_text('name: c\ninclude: ["x\\0.yml"]\n')
    fifo(tmp_path, "f.yml")
    for prof, words in (
        ("a.yml", ["b.yml", "line 2", "U+0000"]),
        ("c.yml", ["include", "control characters", "\\x00"]),
        ("f.yml", ["f.yml"]),
    ):
        r = run_tuner("profiles", "show", str(tmp_path / prof), state=tmp_path / "s", timeout=30)
        clean_exit(r, *words)
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "a.yml").write_text("name: a\n")
    fifo(d, "f.yml")
    r = run_tuner(  # profiles list reads every file of the folder: f.yml is a FIFO
        "profiles",
        "list",
        state=tmp_path / "s",
        timeout=30,
        env={**os.environ, "TUNER_PROFILES_DIR": str(d)},
    )
    clean_exit(r, "f.yml", "FIFO")
    pol = fifo(tmp_path, "policy.yml")
    r = run_tuner(
        "check", "--facts", str(MIXED), "--policy", str(pol), state=tmp_path / "s", timeout=30
    )
    clean_exit(r, "policy.yml")


def test_inventory_fifo_is_refused(tmp_path: Path) -> None:
    from agent.inventory import load_inventory

    inv = fifo(tmp_path, "inv.yml")
    with pytest.raises(BadInput, match="FIFO"):
        load_inventory(inv)
    folder = tmp_path / "inv"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.ini").write_text("[all]\nn1 ansible_host=127.0.0.1\n")
    assert [h.name for h in load_inventory(folder).hosts] == ["n1"]
    fifo(folder / "group_vars", "all.yml")
    with pytest.raises(BadInput, match="all.yml is a FIFO"):
        load_inventory(folder)


def test_facts_files_are_validated(tmp_path: Path) -> None:
    for content, words in (
        (None, ["FIFO"]),
        ('{"nodes": {"a": 1}}', ["nodes", "list"]),
        ('{"nodes": [{"name": "a b"}]}', ["nodes.0"]),
    ):
        p = tmp_path / f"facts{len(words)}{content is None}.json"
        if content is None:
            os.mkfifo(p)
        else:
            p.write_text(content)
        with pytest.raises(BadInput) as e:
            loaders.load_facts(str(p))
        for w in words:
            assert w in str(e.value), (w, str(e.value))


def test_plain_http_bmc_is_refused_unless_allowed(tmp_path: Path, capsys: Any) -> None:
    from agent.inventory import load_inventory
    from agent.layers.bios import bmc_hosts

    pw = tmp_path / "pw"
    pw.write_text("x")
    base = (
        f"n1 ansible_host=127.0.0.1 bmc_url=http://10.0.0.9 bmc_username=u bmc_password_file={pw}"
    )
    inv = tmp_path / "inv.ini"
    inv.write_text(f"[all]\n{base}\n")
    with pytest.raises(BadInput, match="plain HTTP.*bmc_allow_http"):
        load_inventory(inv)
    r = run_tuner("apply", "-p", "inference", "-i", str(inv), "--check", state=tmp_path / "s")
    clean_exit(r, "bmc_url", "plain HTTP", "clear text")
    inv.write_text(f"[all]\n{base} bmc_allow_http=maybe\n")
    with pytest.raises(BadInput, match="bmc_allow_http must be true or false"):
        load_inventory(inv)
    inv.write_text(f"[all]\n{base} bmc_allow_http=true\n")
    hosts, _ = bmc_hosts(load_inventory(inv))
    assert [h.name for h in hosts] == ["n1"]
    assert "n1 crosses the network in clear text" in capsys.readouterr().err


# ------------------------------------------------------------------------- encoders


HOSTILE = "x'; touch CANARY; echo '{{ lookup('pipe', 'touch CANARY2') }}' $(touch CANARY3) `id`"


def hostile_report(tmp: Path) -> Path:
    d = report(MIXED)
    d["nodes"][2]["reason"] = HOSTILE + "\nscontrol delete partition=all\n"
    d["nodes"][3]["reason"] = '=HYPERLINK("http://x")\t"quoted", a\\b'
    d["nodes"][0]["usable"][0]["serial"] = "=cmd|' /C calc'!A0"
    d["nodes"][0]["usable"][1]["market_name"] = 'MI355X "OAM" \\ {{ 7*7 }}'
    return save(tmp, d, "hostile.json")


def test_slurm_export_is_data_for_bash(tmp_path: Path) -> None:
    src = hostile_report(tmp_path)
    out = tmp_path / "slurm.sh"
    r = run_tuner("export", "--from", str(src), "-f", "slurm", "-o", str(out), state=tmp_path / "s")
    assert r.rc == 0, r.err
    script = f'set -eu; . {out}; printf "%s\\n" "$USABLE_NODES" "$EXCLUDED_NODES"; ' + (
        "scontrol() { printf '<%s>' \"$@\"; echo; }; tuner_drain"
    )
    p = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert not list(tmp_path.glob("CANARY*"))
    lines = p.stdout.splitlines()
    assert lines[:2] == ["node[01-02]", "node[03-04]"]
    assert len(lines) == 4  # one line per drain: the reason's newline did not start a command
    assert "<Reason=tuner: " + HOSTILE + " scontrol delete partition=all>" in lines[2]
    # a control character that is not whitespace: refused, nothing written
    d = report(MIXED)
    d["nodes"][2]["reason"] = "bad \x1b[31m red"
    out2 = tmp_path / "s2.sh"
    r = run_tuner(
        "export",
        "--from",
        str(save(tmp_path, d)),
        "-f",
        "slurm",
        "-o",
        str(out2),
        state=tmp_path / "s",
    )
    clean_exit(r, "node node03: reason", "U+001B")
    assert not out2.exists()


def test_slurm_and_hostfile_refuse_names_and_devices() -> None:
    inv = GpuInventory.model_validate_json(MLPERF.read_text())  # not through the loader
    bad = inv.model_copy(deep=True)
    bad.nodes[0].usable[0].render_node = "/dev/dri/renderD128\nrm -rf /"
    with pytest.raises(BadInput, match="render_node"):
        render(bad, "slurm")
    bad = inv.model_copy(deep=True)
    bad.nodes[0].name = "node01 slots=999\nevil"
    for fmt in ("slurm", "hostfile", "ansible"):
        with pytest.raises(BadInput, match="not a host name"):
            render(bad, fmt)


@pytest.mark.parametrize("as_json", [False, True])
def test_ansible_export_never_runs_node_text(tmp_path: Path, as_json: bool) -> None:
    src = hostile_report(tmp_path)
    out = tmp_path / ("inv.json" if as_json else "inv.yml")
    r = run_tuner(
        "export", "--from", str(src), "-f", "ansible", "-o", str(out), state=tmp_path / "s"
    )
    assert r.rc == 0, r.err
    assert out.read_text().startswith("{") == as_json  # *.json: the JSON form
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: node03:node01\n  gather_facts: false\n  connection: local\n  tasks:\n"
        "    - debug: {msg: '{{ tuner_reason }}|{{ tuner_usable_gpu_uuids }}'}\n"
    )
    env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml", "ANSIBLE_NOCOLOR": "1"}
    p = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(out), str(play)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert not list(tmp_path.glob("CANARY*"))
    assert "lookup('pipe', 'touch CANARY2')" in p.stdout  # shown as text
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(out), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    hv = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert hv["node01"]["ansible_host"] == "127.0.0.1"
    assert "touch CANARY2" in json.dumps(hv["node03"]["tuner_reason"])


def test_csv_export_cells_stay_cells(tmp_path: Path) -> None:
    src = hostile_report(tmp_path)
    d = json.loads(src.read_text())
    d["nodes"][2]["reason"] = "a\x1b[2Jb\x00c\u2028d\re"
    r = run_tuner(
        "export",
        "--from",
        str(save(tmp_path, d)),
        "-f",
        "csv",
        "-o",
        str(tmp_path / "o.csv"),
        state=tmp_path / "s",
    )
    assert r.rc == 0, r.err
    text = (tmp_path / "o.csv").read_bytes().decode()
    assert not any(c in text for c in "\x1b\x00\u2028")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + 16 + 1 + 8 and all(len(x) == 14 for x in rows)
    by = {(x[0], x[2]): x for x in rows}
    assert by[("node01", "0")][4] == "'=cmd|' /C calc'!A0"
    assert by[("node03", "")][13] == "a\\x1b[2Jb\\x00c\\u2028d\re"


def test_prometheus_labels_escaped(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    inv = GpuInventory.model_validate_json(MLPERF.read_text())  # the encoder on its own
    hostile = 'a"b\\c\nd} 1\nevil_metric 1'
    inv.nodes[0].usable[0].serial = hostile
    inv.nodes[6].excluded[0].checks[0].check = hostile
    text = render(inv, "prometheus")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert "evil_metric" not in fams
    assert hostile in {s.labels["serial"] for s in fams["tuner_gpu_usable"].samples}
    assert hostile in {s.labels["check"] for s in fams["tuner_gpu_check_failed"].samples}
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package (.ci/run installs it)
        p = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert "error" not in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
        assert p.returncode in (0, 3), p.stdout + p.stderr  # 3: lint warnings only


def test_encoders_directly() -> None:
    assert encode.shell_word("a b'c", "f") == "'a b'\"'\"'c'"
    for bad in ("a\nb", "a\x00", "\x1b[0m", "a\u2028b", "\x85"):
        with pytest.raises(BadInput, match="control character"):
            encode.shell_word(bad, "f")
    assert encode.csv_cell("-1") == "'-1"
    assert encode.csv_cell('a"b') == '"a""b"'
    assert encode.csv_cell("a\x07") == '"a\\x07"'
    assert encode.prom_label('a"\\\n') == 'a\\"\\\\\\n'
    assert encode.ansible_json(encode.ansible_unsafe({"a": ["{{x}}", 1]})) == {
        "a": [{"__ansible_unsafe": "{{x}}"}, 1]
    }
    for bad in ("a b", "-x", "a/b", "", "a\n"):
        with pytest.raises(BadInput):
            encode.hostname(bad, "f")
    # terminal tables (agent/view.py): no escape sequence reaches the terminal
    from agent.view import escape

    assert escape("a\x1b[2J\rb\n") == "a\\x1b[2J\\x0db\n"
    # ... nor from any other line the CLI prints (agent/cli/common.py out/err)
    import io

    from agent.cli.common import _LazyConsole

    buf = io.StringIO()
    console = _LazyConsole(file=buf, highlight=False)
    console.print("node03: a\x1b]0;pwned\x07 \rb", markup=False)
    assert "\x1b" not in buf.getvalue() and "\r" not in buf.getvalue()
    assert "a\\x1b]0;pwned\\x07 \\x0db" in buf.getvalue()


def test_history_trim_keeps_the_newest_valid_entries(tmp_path: Path) -> None:
    f = history.history_file(tmp_path)
    f.parent.mkdir(parents=True)
    entry = {
        "at": "2026-12-01T10:00:00Z",
        "command": "apply",
        "args": ["apply", "x" * 200],
        "exit_code": 0,
        "seconds": 1.0,
        "summary": {},
    }
    lines = [json.dumps({**entry, "exit_code": i % 3}) for i in range(8000)]  # > 2 MB
    f.write_text("\n".join(lines) + "\nnot json\n")
    history.record(tmp_path, ["verify"], 1, 2.0, {})
    kept = f.read_text().splitlines()
    assert len(kept) == history.KEEP
    assert json.loads(kept[-1])["command"] == "verify"
    assert json.loads(kept[0]) == json.loads(lines[-(history.KEEP - 1)])


def test_ready_document_carries_a_report(tmp_path: Path) -> None:
    doc = {"schema": "tuner.ready/1", "passed": True, "hosts": [], "gpus": report(MIXED)}
    inv = loaders.load_report(str(save(tmp_path, doc)))
    assert inv.usable_gpus == 16
    doc["gpus"]["nodes"][0]["usable"] = []  # the carried report is checked the same way
    refused(save(tmp_path, doc), "nodes.0.status")
