"""The fast paths of reading and exporting a report (issue 20; docs/performance.md): the
report loader with the cyclic collector paused gives the same model and refuses the same
bad input as with it running, and the directly written Ansible YAML reads back (PyYAML's
loaders, pure and libyaml) as exactly what PyYAML's own dumper writes. Pure: data files."""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA

from agent import loaders
from agent.errors import BadInput
from agent.export import ansible
from agent.export.encode import AnsibleDumper, Unsafe, yaml_block, yaml_str

MLPERF = DATA / "reports" / "mlperf-llama2-70b.json"
MIXED = DATA / "reports" / "mixed.json"

# Strings a node could put in a reason: quotes, escapes, every kind of line break and
# control character, non-BMP characters, YAML's own syntax and words.
NASTY = [
    "",
    "ok",
    "yes",
    "No",
    "null",
    "~",
    "123",
    "0x1f",
    "1e3",
    "2026-12-02",
    ".inf",
    "-",
    "- a",
    "a: b",
    "#x",
    "{{ lookup('pipe', 'id') }}",
    'it\'s "quoted" \\ back',
    "line\nbreak\r\n\ttab",
    "\x00\x07\x1b[31m\x7f\x85\x9f",
    "\u2028\u2029\ufeff\ufffe",
    "héllo ☃ \U0001f600",
    "  leading and trailing  ",
    "!unsafe 'x'",
    "&anchor *alias",
    "_plain.name-1",
]


class _Loader(yaml.SafeLoader):
    pass


class _CLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


for _L in (_Loader, _CLoader):
    _L.add_constructor("!unsafe", lambda loader, node: ("unsafe", loader.construct_scalar(node)))


def _both(text: str) -> Iterator[Any]:
    for loader in (_Loader, _CLoader):
        yield yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader subclasses


def _pyyaml(doc: Any) -> Any:
    return yaml.load(yaml.dump(doc, Dumper=AnsibleDumper, sort_keys=False), Loader=_Loader)  # noqa: S506


def test_yaml_block_reads_back_as_pyyaml_dumps_it() -> None:
    doc = {
        "all": {
            "hosts": {
                f"h{i}": {
                    "plain": s,
                    "marked": Unsafe(s),
                    "list": [Unsafe(s), s, 1, True, None],
                    "n": -3,
                    "empty": [],
                    "none": {},
                }
                for i, s in enumerate(NASTY)
            },
            "children": {"g": {"hosts": {"h0": None, "yes": None, "123": None}}},
        }
    }
    want = _pyyaml(doc)
    for got in _both(yaml_block(doc)):
        assert got == want
    for s in NASTY:
        for got in _both(f"k: {yaml_str(s)}\n"):
            assert got == {"k": s}, s


def test_ansible_render_reads_back_as_before() -> None:
    for src in (MLPERF, MIXED):
        inv = loaders.load_report(str(src))
        text = ansible.render(inv)
        doc = {
            "all": {
                "hosts": {n.name: ansible.hostvars(n) for n in inv.nodes},
                "vars": {
                    "tuner_gate_passed": inv.gate.passed,
                    "tuner_usable_gpus_total": inv.usable_gpus,
                },
                "children": {
                    g: {"hosts": {h: None for h in hs}} for g, hs in ansible.groups(inv).items()
                },
            }
        }
        want = _pyyaml(doc)
        for got in _both(text):
            assert got == want


def _full_load(path: str) -> Any:
    """The loader with the collector running (what load_report did before)."""
    text = loaders.read_text(path, loaders.MAX_REPORT_BYTES, "report")
    assert gc.isenabled()
    return loaders._load_report(path, text)


def _edits() -> list[tuple[str, Any]]:
    base = json.loads(MLPERF.read_text())

    def edit(f: Any) -> Any:
        d = copy.deepcopy(base)
        f(d)
        return d

    return [
        ("not json", "{"),
        ("list", []),
        ("schema", edit(lambda d: d.update(schema="other/1"))),
        ("string count", edit(lambda d: d.update(usable_gpus="8"))),
        ("total", edit(lambda d: d.update(usable_gpus=d["usable_gpus"] + 1))),
        ("name", edit(lambda d: d["nodes"][0].update(name="a b"))),
        ("twice", edit(lambda d: d["nodes"][1].update(name=d["nodes"][0]["name"]))),
        ("bdf", edit(lambda d: d["nodes"][0]["usable"][0].update(bdf="zz"))),
        ("fw", edit(lambda d: d["nodes"][0]["usable"][0]["firmware"].update(PM="a\nb"))),
        ("status", edit(lambda d: d["nodes"][0].update(status="failed"))),
    ]


@pytest.mark.parametrize("case", [c for c, _ in _edits()])
def test_paused_loader_refuses_what_the_full_loader_refuses(tmp_path: Path, case: str) -> None:
    doc = dict(_edits())[case]
    p = tmp_path / "r.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(BadInput) as full:
        _full_load(str(p))
    with pytest.raises(BadInput) as fast:
        loaders.load_report(str(p))
    assert str(fast.value) == str(full.value)
    assert gc.isenabled()  # restored after a refusal


def test_paused_loader_gives_the_same_report() -> None:
    for src in (MLPERF, MIXED):
        assert loaders.load_report(str(src)) == _full_load(str(src))
        assert gc.isenabled()
    gc.disable()
    try:
        with loaders.gc_paused():
            loaders.load_report(str(MLPERF))
        assert not gc.isenabled()  # an outer pause is kept
    finally:
        gc.enable()
