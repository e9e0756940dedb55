"""Property-based tests (Hypothesis) of every loader and encoder (issue 21, docs/security.md):
whatever the bytes, a loader returns a valid object or raises BadInput (exit 2), nothing else;
whatever the text, an encoder's output reads back, in its consumer's syntax, as exactly the
value it was given (or the encoder refuses with BadInput).

Fixed budget: each test runs at most MAX_EXAMPLES examples, no deadline (the machine is
shared), no example database; with TUNER_FUZZ_PROFILE=ci (.ci/run) the examples are
derandomized (the same every run). The whole file runs in well under 60 s."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import loaders, yamlfile
from agent.errors import BadInput
from agent.export import FORMATS, encode, render

MAX_EXAMPLES = int(os.environ.get("TUNER_FUZZ_EXAMPLES", "100"))
_common: dict[str, Any] = {
    "max_examples": MAX_EXAMPLES,
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("dev", **_common)
settings.register_profile("ci", derandomize=True, **_common)
settings.load_profile(os.environ.get("TUNER_FUZZ_PROFILE", "dev"))

REPORT = json.loads((DATA / "reports" / "mixed.json").read_text())
MLPERF = json.loads((DATA / "reports" / "mlperf-llama2-70b.json").read_text())
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FFF), max_size=40)
JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), TEXT
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)


def _file(tmp: Path, data: bytes, name: str = "f") -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (keys and list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


REPORT_PATHS = _paths(MLPERF)[1:]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


# ------------------------------------------------------------------------- loaders


@given(data=st.binary(max_size=300))
def test_read_text_any_bytes(tmp_path: Path, data: bytes) -> None:
    try:
        text = loaders.read_text(_file(tmp_path, data), 200)
    except BadInput:
        return
    assert text.encode() == data and "\x00" not in text and len(data) <= 200


@given(text=st.text(max_size=200) | st.sampled_from(["a: &x [1]\nb: *x\n", "{a: 1, a: 2}"]))
def test_yaml_loader_any_text(tmp_path: Path, text: str) -> None:
    p = _file(tmp_path, text.encode("utf-8", "surrogatepass"), "p.yml")
    try:
        yamlfile.safe_load(p)
    except BadInput as e:
        assert len(str(e)) <= 2400


@given(
    edits=st.lists(st.tuples(st.sampled_from(REPORT_PATHS), JSON_VALUE), min_size=1, max_size=3),
    seed=st.integers(0, 2**32),
)
def test_report_loader_any_edit_then_every_format(
    tmp_path: Path, edits: list[tuple[tuple[Any, ...], Any]], seed: int
) -> None:
    """A report with random values at random places: refused (BadInput), or loaded and then
    every format renders or refuses, nothing else (no traceback, no syntax from values)."""
    doc = json.loads(json.dumps(MLPERF))
    for path, value in edits:
        try:
            _set(doc, path, value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced the container
    if random.Random(seed).random() < 0.3:
        doc = json.loads(json.dumps(MLPERF))  # and sometimes only the text is damaged
        raw = bytearray(json.dumps(doc).encode())
        raw[random.Random(seed).randrange(len(raw))] = seed % 256
        p = _file(tmp_path, bytes(raw), "r.json")
    else:
        p = _file(tmp_path, json.dumps(doc).encode(), "r.json")
    try:
        inv = loaders.load_report(str(p))
    except BadInput as e:
        assert str(p) in str(e)
        return
    for fmt in FORMATS:
        try:
            render(inv, fmt)
        except BadInput:
            pass


@given(line=st.binary(max_size=200) | JSON_VALUE.map(lambda v: json.dumps(v).encode()))
def test_history_entry_any_line(line: bytes) -> None:
    from agent.cli.fleet import _result_text

    entry = loaders.history_entry(line)
    if entry is not None:
        assert set(entry) == set(loaders.HISTORY_FIELDS)
        _result_text(entry["summary"])  # what `tuner status` does with it


@given(
    fields=st.dictionaries(
        st.sampled_from(["at", "command", "args", "exit_code", "seconds", "summary", "x"]),
        JSON_VALUE,
    )
)
def test_history_entry_any_fields(fields: dict[str, Any]) -> None:
    good = {
        "at": "2026-12-01T10:00:00Z",
        "command": "apply",
        "args": ["apply"],
        "exit_code": 0,
        "seconds": 1.0,
        "summary": {},
    }
    entry = loaders.history_entry(json.dumps({**good, **fields}).encode())
    if entry is not None:
        from agent.cli.fleet import _result_text

        _result_text(entry["summary"])


@given(doc=JSON_VALUE)
def test_facts_loader_any_json(tmp_path: Path, doc: Any) -> None:
    p = _file(tmp_path, json.dumps(doc).encode(), "facts.json")
    try:
        loaders.load_facts(str(p))
    except BadInput:
        pass


# ------------------------------------------------------------------------- encoders


@given(value=st.text(max_size=60))
def test_shell_word_reads_back(value: str) -> None:
    try:
        word = encode.shell_word(value, "f")
    except BadInput:
        assert encode.CONTROL.search(value)
        return
    assert "\n" not in word
    assert shlex.split(word) == [value]


@given(value=st.text(max_size=60))
def test_hostname_accepts_only_names(value: str) -> None:
    try:
        encode.hostname(value, "f")
    except BadInput:
        return
    assert encode.ADDRESS.fullmatch(value) and not value.startswith("-")
    assert not any(c.isspace() or c in "/#,=;'\"$`{}" for c in value)


@given(cells=st.lists(st.text(max_size=20) | st.integers() | st.none(), min_size=1, max_size=5))
def test_csv_line_reads_back(cells: list[Any]) -> None:
    line = encode.csv_line(cells)
    rows = list(csv.reader(io.StringIO(line, newline="")))
    assert len(rows) == 1 and len(rows[0]) == len(cells)
    for got, want in zip(rows[0], cells, strict=True):
        s = "" if want is None else str(want)
        if s.startswith(encode.FORMULA_START):
            assert got.startswith("'")
            got = got[1:]
        assert got == encode._CSV_ESCAPE.sub(encode._visible, s)
        assert not encode._CSV_ESCAPE.search(got)


@given(value=st.text(max_size=40))
def test_prometheus_label_reads_back(value: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = f'm{{a="{encode.prom_label(value)}"}} 1\n'
    fams = list(text_string_to_metric_families(text))
    assert [s.labels["a"] for f in fams for s in f.samples] == [value]


class _UnsafeLoader(yaml.SafeLoader):
    """Reads `!unsafe` as Ansible does: the string, marked."""


_UnsafeLoader.add_constructor(
    "!unsafe", lambda loader, node: ("UNSAFE", loader.construct_scalar(node))
)


@given(value=st.text(max_size=40), key=st.text(min_size=1, max_size=10))
def test_ansible_unsafe_reads_back(value: str, key: str) -> None:
    doc = {"h": {"tuner_reason": encode.ansible_unsafe(value), "n": [encode.ansible_unsafe(key)]}}
    text = yaml.dump(doc, Dumper=encode.AnsibleDumper)
    back = yaml.load(text, Loader=_UnsafeLoader)
    assert back == {"h": {"tuner_reason": ("UNSAFE", value), "n": [("UNSAFE", key)]}}
    as_json = json.loads(json.dumps(encode.ansible_json(doc)))
    assert as_json["h"]["tuner_reason"] == {"__ansible_unsafe": value}


@pytest.mark.parametrize("fmt", ["slurm", "hostfile", "csv", "ansible", "prometheus"])
@given(reason=st.text(max_size=40), serial=st.text(max_size=20))
def test_every_format_any_node_text(fmt: str, reason: str, serial: str) -> None:
    """Node text in a report (not through the loader): each format renders it as data or
    refuses; the Slurm file's lines are the ones tuner writes, whatever the reason."""
    from agent.gpu.gate import GpuInventory

    inv = GpuInventory.model_validate(REPORT)
    inv.nodes[2].reason = reason
    inv.nodes[0].usable[0].serial = serial
    try:
        out = render(inv, fmt)
    except BadInput:
        assert encode.CONTROL.search(reason) and fmt == "slurm"
        return
    if fmt == "slurm":
        assert len(out.splitlines()) == len(
            render(GpuInventory.model_validate(REPORT), fmt).splitlines()
        )
