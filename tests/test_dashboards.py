"""The Grafana dashboards (dashboards/*.json) against what tuner really writes.

Every PromQL expression names only metrics present in a real export (`tuner export
--format prometheus` of the lab-captured report) or a real node-agent textfile (the agent
run once on a simulated node tree); Prometheus's own parser (`promtool check rules`) accepts
every expression; `promtool check metrics` accepts both files; each dashboard has the
structure Grafana loads (ids, grid positions, datasource references, targets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from prometheus_client.parser import text_string_to_metric_families

from agent import knobs
from agent.export import load_report
from agent.export import prometheus as prom
from agent.profiles import load_profile
from agent.sim.nodetree import Topology, build_node

DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
LAB = REPO / "tests/data/reports/lab"
TEXTFILE_DIR = "var/lib/prometheus/node-exporter"
# PromQL words that are not metric names
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}


def _promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None and os.environ.get("CI"):
        pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus)")
    return found


@pytest.fixture(scope="module")
def export_text() -> str:
    return prom.render(load_report(str(LAB / "llama2-70b-check.json")))


@pytest.fixture(scope="module")
def agent_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The node agent's textfile, written by the agent itself after an apply and a gate."""
    root = tmp_path_factory.mktemp("agent") / "node"
    build_node(root, "node07", Topology(sockets=1, cores_per_socket=2))
    (root / TEXTFILE_DIR).mkdir(parents=True)
    knobs.apply(
        knobs.Host(str(root), sim_kernel=True),
        load_profile("inference").os_settings(),
        True,
        check=False,
        record=True,
    )
    # the record `tuner check` sends a node that runs the agent (agent/gpu/run.py: record_gate)
    gate = {"time": 1796000000.0, "passed": True, "status": "degraded",
            "reason": "1 GPU(s) excluded", "usable_gpus": 7, "fleet_gate_passed": True,
            "facts_time": 1796000000.0}  # fmt: skip
    (root / "var/lib/tuner/gate.json").write_text(json.dumps(gate))
    r = subprocess.run(
        [sys.executable, "-m", "agent.nodeagent", "run", "--once", "--events", "none",
         "--root", str(root)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return (root / TEXTFILE_DIR / "tuner.prom").read_text()


def _names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def exprs(dash: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers that are not functions,
    keywords, label names (in braces or grouping clauses), strings or durations."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range durations
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, rest = m.group(0), e[m.end() :].lstrip()
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def test_metric_name_parser() -> None:
    got = metric_names(
        'avg by (family) (label_replace(tuner_setting_conformant, "family", "$1", "setting", '
        '"([^.]+).*")) + rate(x_total{a="b"}[5m]) unless on(instance) tuner_gate_known == 1'
    )
    assert got == {"tuner_setting_conformant", "x_total", "tuner_gate_known"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    d = json.loads(path.read_text())
    for key in ("uid", "title", "schemaVersion", "version", "panels", "templating", "time"):
        assert key in d, key
    assert isinstance(d["schemaVersion"], int) and isinstance(d["version"], int)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"])
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["type"] in {"stat", "timeseries", "table", "bargauge", "gauge", "text"}
        g = p["gridPos"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0
        assert g["x"] + g["w"] <= 24, p["title"]  # Grafana's grid has 24 columns
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"]


def test_every_query_names_metrics_tuner_writes(export_text: str, agent_text: str) -> None:
    exported, agent = _names(export_text), _names(agent_text)
    assert "tuner_gpu_check_failed" in exported  # node07's GPU: one failed check
    assert "tuner_gate_usable_gpus" in agent  # the gate record reached the textfile
    real = exported | agent
    seen: set[str] = set()
    for path in DASHBOARDS:
        own = exported if "fleet" in path.name else agent
        for title, expr in exprs(json.loads(path.read_text())):
            names = metric_names(expr)
            assert names, f"{path.name}: {title}: no metric in {expr!r}"
            assert names <= real, f"{path.name}: {title}: {sorted(names - real)} not written"
            assert names & own, f"{path.name}: {title}: no metric of its own source"
            seen |= names
    # the dashboards cover the fleet numbers, the excluded GPUs and the agent's conformance
    for m in ("tuner_fleet_gpus", "tuner_gpu_check_failed", "tuner_setting_conformant"):
        assert m in seen
    assert {"tuner_gate_timestamp_seconds", "tuner_gate_passed"} <= seen


def test_promtool_accepts_queries_and_files(
    export_text: str, agent_text: str, tmp_path: Path
) -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus; CI installs it)")
    rules = {"groups": [{"name": "dashboards", "rules": []}]}
    for path in DASHBOARDS:
        for k, (_title, expr) in enumerate(exprs(json.loads(path.read_text()))):
            name = f"dashboard:{path.stem.replace('-', '_')}:{k}"
            rules["groups"][0]["rules"].append({"record": name, "expr": expr})
    f = tmp_path / "rules.yml"
    f.write_text(json.dumps(rules))  # JSON is YAML
    r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for text in (export_text, agent_text):
        r = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_dashboards_answer_the_operators_questions() -> None:
    titles = {p["title"] for path in DASHBOARDS for p in json.loads(path.read_text())["panels"]}
    for wanted in (
        "Fleet GPUs over time",  # fleet usable GPUs over time
        "Excluded GPUs with reasons",
        "OS conformance by setting family",  # conformance per layer (the agent: OS)
        "Last gate per node",
    ):
        assert wanted in titles, wanted
