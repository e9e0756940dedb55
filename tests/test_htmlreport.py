"""`tuner report` (agent/htmlreport/): the HTML page from lab-captured reports.

Pure parts on tests/data/reports/lab (what the grid, the link matrices, the conformance and
the changes hold); the CLI (exit codes, --json); hostile strings render as text; the page
has no external reference; and a real headless browser (Debian's chromium) renders the
87-GPU scenario: node07's GPU is shown excluded with its reason, a screenshot is kept under
tmp/artifacts/ (not committed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, run_tuner

from agent.errors import BadInput
from agent.htmlreport import build
from agent.htmlreport.model import layer_counts, summary
from agent.htmlreport.render import render

LAB = REPO / "tests/data/reports/lab"
CHECK = str(LAB / "llama2-70b-check.json")
HEALTHY = str(LAB / "healthy-11-check.json")
VERIFY_OK = str(LAB / "llama2-70b-verify-ok.json")
DRIFT = str(LAB / "llama2-70b-verify-drift.json")
READY = str(LAB / "llama2-70b-ready.json")
GPTOSS = str(LAB / "gpt-oss-120b-check.json")
ECC = "gpu.ecc.uncorrectable: 12 uncorrectable ECC errors (UMC 12), max 0"
ARTIFACTS = Path(os.environ.get("TUNER_TEST_ARTIFACTS", REPO / "tmp/artifacts"))


def _cell(fleet, node: str, index: int):  # type: ignore[no-untyped-def]
    n = next(n for n in fleet.nodes if n.name == node)
    return next(c for c in n.cells if c.index == index)


# ------------------------------------------------------------------------------- the model


def test_87_gpus_node07_excluded_with_reason() -> None:
    f = build([CHECK])
    cells = [c for n in f.nodes for c in n.cells]
    assert len(f.nodes) == 11 and len(cells) == 88
    assert sum(c.verdict == "usable" for c in cells) == 87
    c = _cell(f, "node07", 5)
    assert (c.verdict, c.bdf, c.reasons) == ("excluded", "0000:95:00.0", [ECC])
    assert c.xgmi == "UUUUUXUU" and c.hotspot_c is not None
    s = summary(f)
    assert s["totals"]["usable_gpus"] == 87
    assert s["excluded"] == [
        {
            "node": "node07",
            "index": 5,
            "bdf": "0000:95:00.0",
            "verdict": "excluded",
            "reasons": [ECC],
        }
    ]
    assert s["excluded_by_check"] == {"gpu.ecc.uncorrectable": 1}
    assert s["tuning"] is None and s["changes"] is None


def test_since_the_last_good_run_one_gpu_lost() -> None:
    f = build([CHECK], [HEALTHY])
    assert [(c.what, c.node, c.item, c.before, c.now, c.reason) for c in f.changes] == [
        ("gpu lost", "node07", "GPU 5 (0000:95:00.0)", "usable", "excluded", ECC)
    ]
    assert f.totals_before is not None and f.totals_before["usable_gpus"] == 88
    # and back: the GPU regained
    back = build([HEALTHY], [CHECK])
    assert [(c.what, c.node) for c in back.changes] == [("gpu regained", "node07")]


def test_conformance_per_layer_and_a_drifted_setting() -> None:
    f = build([CHECK, DRIFT], [CHECK, VERIFY_OK])
    assert f.layers == ["cmdline", "bios", "os"]
    counts = layer_counts(f)
    assert counts["os"] == {"drift": 1, "ok": 10}
    assert counts["bios"] == {"ok": 11} and counts["cmdline"] == {"ok": 11}
    assert [(c.what, c.node, c.item, c.before, c.now) for c in f.changes] == [
        ("setting drifted", "node03", "os sysctl.kernel.numa_balancing", "0", "1 (drift)")
    ]
    node03 = next(n for n in f.nodes if n.name == "node03")
    assert node03.tuning == "drift" and "numa_balancing is '1'" in node03.tuning_reason
    bad = summary(f)["tuning"]["not_conforming"]
    assert [(b["host"], b["layer"], b["item"]) for b in bad] == [
        ("node03", "os", "sysctl.kernel.numa_balancing")
    ]


def test_ready_report_gives_gpus_and_verify() -> None:
    f = build([READY])
    assert f.totals["usable_gpus"] == 79 and f.tuning_command == "ready"
    node03 = next(n for n in f.nodes if n.name == "node03")
    assert node03.tuning == "drift" and {c.verdict for c in node03.cells} == {"excluded"}
    assert "node.conforms" in node03.cells[0].reasons[0]
    assert layer_counts(f) == {"verify": {"drift": 1, "ok": 10}}


def test_xgmi_matrices_of_degraded_nodes() -> None:
    f = build([GPTOSS])
    assert {n.name for n in f.nodes if n.links_degraded} == {"node04", "node10"}
    page = render(f)
    mats = re.findall(r'<div data-xgmi-node="([^"]+)">(.*?)</table></div>', page, re.S)
    assert [m[0] for m in mats] == ["node04", "node10"]
    node10 = dict(mats)["node10"]
    assert node10.count('class="D"') == 14  # GPU 7 to its 7 peers, and each peer to it
    node04 = dict(mats)["node04"]
    assert node04.count('class="D"') == 7 and node04.count('class="Q"') == 7  # the gone GPU


# ------------------------------------------------------------------------- safety of the page


def _no_external_reference(page: str) -> None:
    low = page.lower()
    for bad in ("http://", "https://", "src=", "href=", "url(", "@import", "<script", "<link"):
        assert bad not in low, bad
    assert "<iframe" not in low and "<object" not in low and "<embed" not in low


def test_page_has_no_external_reference() -> None:
    page = render(build([CHECK, DRIFT], [HEALTHY, VERIFY_OK]))
    _no_external_reference(page)
    assert "default-src 'none'" in page  # and the browser may load nothing anyway


def _hostile(tmp_path: Path) -> tuple[Path, Path]:
    inv = json.loads(Path(CHECK).read_text())
    node = inv["nodes"][6]
    node["reason"] = '<script>alert("reason")</script>'
    chk = node["excluded"][0]["checks"][0]
    chk["message"] = '<img src=x onerror=alert(1)>" onmouseover="alert(2)'
    node["gpus"][5]["problems"] = ["</div><script>alert(3)</script>"]
    inv["fleet"]["warnings"] = ["<marquee>moving</marquee> & <u>co</u>"]
    inv["summary"] = "<script>alert(4)</script>"
    a = tmp_path / "hostile-check.json"
    a.write_text(json.dumps(inv))
    ver = json.loads(Path(DRIFT).read_text())
    ver["hosts"][2]["host"] = "<script>alert(5)</script>"
    s = next(s for s in ver["hosts"][2]["settings"] if s["status"] == "drift")
    s["actual"] = '"><script>alert(6)</script>'
    b = tmp_path / "hostile-verify.json"
    b.write_text(json.dumps(ver))
    return a, b


def test_node_strings_render_as_text(tmp_path: Path) -> None:
    a, b = _hostile(tmp_path)
    r = run_tuner("report", "--from", str(a), "--from", str(b), "--html", "-", state=tmp_path)
    assert r.rc == 0, r.err
    page = r.out
    dom = _Dom()
    dom.feed(page)
    _dom_safe(dom)
    assert "<img" not in page and "<marquee>" not in page and 'onmouseover="' not in page
    assert "&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(5)&lt;/script&gt;" in page  # the host name, as text
    assert "&quot;&gt;&lt;script&gt;alert(6)&lt;/script&gt;" in page


def test_hostname_in_an_inventory_must_be_a_host_name(tmp_path: Path) -> None:
    inv = json.loads(Path(CHECK).read_text())
    inv["nodes"][0]["name"] = "<b>x</b>"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(inv))
    r = run_tuner("report", "--from", str(p), "--html", str(tmp_path / "x.html"), state=tmp_path)
    assert r.rc == 2 and "nodes.0.name" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "x.html").exists()


# ----------------------------------------------------------------------------------- the CLI


def test_cli_writes_the_page_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "sub/fleet.html"
    r = run_tuner(
        "report", "--from", CHECK, "--from", DRIFT, "--since", HEALTHY, "--since", VERIFY_OK,
        "--html", str(out), "--title", "rack <7>", "--refresh", "60", "--json", state=tmp_path,
    )  # fmt: skip
    assert r.rc == 0, r.err
    doc = r.json()
    assert doc["html"] == str(out) and doc["bytes"] == len(out.read_bytes())
    assert [c["what"] for c in doc["changes"]] == ["gpu lost", "setting drifted"]
    assert doc["tuning"]["by_layer"]["os"] == {"drift": 1, "ok": 10}
    page = out.read_text()
    assert "<title>rack &lt;7&gt;</title>" in page and page.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="refresh" content="60">' in page and "page written 20" in page
    assert not list(out.parent.glob(".fleet.html.*"))  # atomic: no temp file left


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--from", "nope.json", "--html", "x.html"], None),
        (["--from", CHECK, "--from", HEALTHY, "--html", "x.html"], "--from"),
        (["--from", CHECK, "--since", READY, "--since", HEALTHY, "--html", "x.html"], "--since"),
        (["--from", CHECK, "--html", "-", "--json"], "--html"),
        (["--from", CHECK, "--html", "report.json"], "--html"),
        (["--from", CHECK, "--html", "."], "--html"),
        (["--from", str(REPO / "pyproject.toml"), "--html", "x.html"], None),
        (["--from", "/dev/zero", "--html", "x.html"], None),
        (["--from", str(REPO / "tests"), "--html", "x.html"], None),
        (["--from", str(REPO / "tests/data/reports/mixed.json"), "--since", "pyproject.toml",
          "--html", "x.html"], None),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2(args: list[str], field: str | None, tmp_path: Path) -> None:
    args = [str(tmp_path / a) if a in ("x.html", "report.json") else a for a in args]
    args = [str(tmp_path) if a == "." else a for a in args]
    r = run_tuner("report", *args, "--json", state=tmp_path)
    assert r.rc == 2, (r.out, r.err)
    doc = json.loads(r.out)
    assert "Traceback" not in r.err and doc["error"]
    if field:
        assert doc["field"] == field, doc
    assert not (tmp_path / "x.html").exists()


def test_cli_needs_html_or_json(tmp_path: Path) -> None:
    r = run_tuner("report", "--from", CHECK, state=tmp_path)
    assert r.rc == 2 and "--html" in r.err and "Traceback" not in r.err
    r = run_tuner("report", "--from", CHECK, "--json", state=tmp_path)
    assert r.rc == 0 and r.json()["totals"]["usable_gpus"] == 87 and "html" not in r.json()


def test_rollback_report_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "rb.json"
    p.write_text(json.dumps({"command": "rollback", "hosts": []}))
    with pytest.raises(BadInput, match="rollback report"):
        build([str(p)])


# ------------------------------------------------------------------------- a real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed here (apt-get install chromium; CI installs it)")


def _browse(page: Path, tmp_path: Path, shot: Path | None) -> str:
    """The DOM as chromium rendered it (and a screenshot): one browser start."""
    browser = _chromium()
    assert browser is not None
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-features=Translate,MediaRouter,OptimizationHints",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1500",
        "--dump-dom",
    ]  # fmt: skip
    if shot is not None:
        cmd.append(f"--screenshot={shot}")
    home = tmp_path / "home"  # chromium's caches and config stay in the test's folder
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home), XDG_CACHE_HOME=str(home))
    r = subprocess.run([*cmd, page.as_uri()], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class _Dom(HTMLParser):
    """Elements with their attributes and the text inside each GPU cell / table row."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[str] = []
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "tr":
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.append(" ".join(self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row.append(data)


def _dom_safe(dom: _Dom) -> None:
    """No element a report string could have smuggled in, no attribute that loads or runs."""
    tags = {t for t, _ in dom.elements}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "marquee", "u"}
    attrs = {k for _, a in dom.elements for k in a}
    assert not {k for k in attrs if k.startswith("on") or k in ("src", "href", "style")}, attrs


def test_chromium_shows_node07_gpu_excluded_with_its_reason(tmp_path: Path) -> None:
    _chromium()
    page = tmp_path / "fleet.html"  # the CLI's own path is tested above; in-process here
    page.write_text(render(build([CHECK, DRIFT], [HEALTHY]), written_at="2026-12-02T04:30:00Z"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-mlperf-llama2-70b.png"
    shot.unlink(missing_ok=True)
    start = time.monotonic()
    dom_text = _browse(page, tmp_path, shot)
    took = time.monotonic() - start
    dom = _Dom()
    dom.feed(dom_text)
    cells = [a for t, a in dom.elements if t == "div" and "g" in (a.get("class") or "").split()]
    assert len(cells) == 88
    out = [a for a in cells if a.get("data-verdict") != "usable"]
    assert len(out) == 1
    gpu = out[0]
    assert (gpu["data-node"], gpu["data-gpu"], gpu["data-verdict"]) == ("node07", "5", "excluded")
    assert gpu["class"] == "g excluded"
    assert ECC in (gpu["title"] or "") and "node07 GPU 5 0000:95:00.0: excluded" in gpu["title"]
    # the excluded GPUs table and the changes, as rendered text
    assert any("node07" in row and "GPU 5" in row and ECC in row for row in dom.rows)
    assert any(row.startswith("gpu lost") and "node07" in row for row in dom.rows)
    _dom_safe(dom)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    print(f"chromium rendered the page in {took:.1f} s; screenshot {shot}")


def test_chromium_renders_hostile_strings_as_text(tmp_path: Path) -> None:
    _chromium()
    a, b = _hostile(tmp_path)
    page = tmp_path / "hostile.html"
    page.write_text(render(build([str(a), str(b)])))
    dom = _Dom()
    dom.feed(_browse(page, tmp_path, None))
    _dom_safe(dom)
    assert any("<script>alert(5)</script>" in row for row in dom.rows)  # the host, as text


def test_failed_node_gpus_are_unknown_and_a_tuning_report_alone(tmp_path: Path) -> None:
    f = build([str(REPO / "tests/data/reports/mixed.json")])
    node03 = next(n for n in f.nodes if n.name == "node03")
    assert node03.status == "failed" and [c.verdict for c in node03.cells] == ["unknown"] * 8
    assert node03.cells[0].reasons == [node03.reason] and node03.usable == 0
    assert summary(f)["gpus_by_verdict"] == {"usable": 16, "unknown": 8, "excluded": 8}
    page = render(f)
    assert page.count('data-verdict="unknown"') == 8
    assert "$(rm -rf /)" in page  # the reason, as text
    only = render(build([DRIFT]))
    assert "No GPU inventory given" in only and 'data-layer="os"' in only


def test_apply_report_and_hosts_missing_from_the_gpu_report() -> None:
    f = build([CHECK, str(REPO / "tests/data/reports/apply-64.json")])
    assert f.tuning_command == "apply" and layer_counts(f) == {"os": {"ok": 64}}
    assert len(f.nodes) == 64  # the 11 of the GPU report, then the 53 tuned hosts it lacks
    extra = f.nodes[11]
    assert (extra.status, extra.cells, extra.tuning) == ("", [], "changed")
    page = render(f)
    assert page.count('class="node absent"') == 53


def test_a_layer_without_a_known_part_counts_by_its_status() -> None:
    from agent.htmlreport.model import host_items

    # schema 2 (the layer registry): layers map to parts; a layer tuner's page has no
    # special view for (e.g. a NIC layer) still shows by its status and message
    v2 = {"layers": {"nic": {"status": "drift", "message": "mtu 1500, wanted 9000"}}}
    [item] = host_items("node01", v2, verify=True)
    assert (item.layer, item.key, item.status, item.message) == (
        "nic", "(layer)", "drift", "mtu 1500, wanted 9000"
    )  # fmt: skip
    assert not item.conforms
    v1 = {"layers": {"os": "ok"}, "settings": []}
    assert [(i.layer, i.status) for i in host_items("node01", v1, verify=True)] == [("os", "ok")]


def test_2048_gpus_stay_one_grid_and_few_rows(tmp_path: Path) -> None:
    """256 nodes (bench/report_bench.py's fleet): one tile per node, the 23 lost GPUs and 24
    drifted hosts as one folded row each, a page well under a megabyte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_bench", REPO / "bench/report_bench.py")
    assert spec is not None and spec.loader is not None
    rb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rb)
    files = {k: tmp_path / f"{k}.json" for k in ("c", "o", "v", "ov")}
    rb.big_inventory(LAB / "llama2-70b-check.json", 256, files["c"])
    rb.big_inventory(LAB / "healthy-11-check.json", 256, files["o"])
    rb.big_verify(LAB / "llama2-70b-verify-drift.json", 256, files["v"])
    rb.big_verify(LAB / "llama2-70b-verify-ok.json", 256, files["ov"])
    f = build([str(files["c"]), str(files["v"])], [str(files["o"]), str(files["ov"])])
    page = render(f)
    assert page.count('<div class="node ') == 256 and page.count('class="g ') == 2048
    changes = page[
        page.index('id="changes"') : page.index("</section>", page.index('id="changes"'))
    ]
    assert changes.count("<tr>") == 3  # the header, gpu lost x23, setting drifted x24
    assert "gpu[007,018,029," in changes and ">23<" in changes and ">24<" in changes
    assert len(page.encode()) < 1_000_000


def test_changes_between_two_scenarios() -> None:
    """llama2-70b (11 nodes) -> gpt-oss-120b (12): two GPUs lost, node07's regained, node12
    added as one line (not eight "gpu added")."""
    f = build([GPTOSS], [CHECK])
    got = [(c.what, c.node, c.item) for c in f.changes]
    assert got == [
        ("gpu lost", "node04", "GPU ? (0000:65:00.0)"),
        ("gpu lost", "node10", "GPU 7 (0000:f5:00.0)"),
        ("gpu regained", "node07", "GPU 5 (0000:95:00.0)"),
        ("node added", "node12", "node"),
    ]
    assert f.changes[-1].now == "ok, 8 of 8 GPUs usable"
    assert "gpu.missing" in f.changes[0].reason and "XGMI link down" in f.changes[1].reason
