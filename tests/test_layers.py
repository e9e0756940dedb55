"""The orchestrator and the layer registry, driven by fake layers registered in this test
only (agent/layers/__init__.py `REGISTRY`): ordering around the reboot point, one reboot per
node for all layers, cross-layer checks registered with the layers they need, the failure
cap, profile sections, report parts (schema 2 and the schema-1 fields), secrets.

Pure: no Ansible. The one edge the orchestrator itself drives, the OS reboot, is
`Run.playbook("reboot.yml", ...)`, replaced here by a recorder (the real reboot is tested on
the simulated fleet in tests/test_cmdline.py and tests/test_bios_fleet.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from agent import layers, profiles
from agent.errors import BadInput
from agent.inventory import Inventory, InventoryHost
from agent.layers.base import Cross, HostResult, Layer, Results, Run, RunOptions
from agent.layers.run import execute
from agent.runner import HostOutcome


class FakeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal[1, 2, 3] | None = None


class FakeCross(BaseModel):
    id: str = "agree"
    status: str


class FakePart(BaseModel):
    status: str
    message: str = ""
    rebooted_by: str | None = None


class _Fake(Layer):
    """A layer whose results are given per host (`RESULTS[command][host]` -> status)."""

    label = "FAKE"
    RESULTS: ClassVar[dict[str, dict[str, str]]] = {}
    calls: ClassVar[list[tuple[str, str, list[str]]]] = []

    def wants(self, run: Run) -> bool:
        return True

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        return {h.name: {} for h in hosts}, ""

    def _step(self, run: Run, hosts: list[InventoryHost], word: str) -> tuple[Results, str]:
        _Fake.calls.append((self.name, word, [h.name for h in hosts]))
        got = self.RESULTS.get(word, {})
        out = {}
        for h in hosts:
            status = got.get(
                h.name, {"verify": "ok", "rollback": "nothing to do"}.get(word, "unchanged")
            )
            out[h.name] = HostResult(
                status, "broke" if status == "failed" else "", FakePart(status=status)
            )
        return out, f"artifacts-{self.name}"

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._step(run, hosts, "plan")

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._step(run, hosts, "apply")

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        return self._step(run, hosts, "verify")

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        return self._step(run, hosts, "rollback")

    def skipped(self, run: Run, why: str) -> HostResult:
        return HostResult("unchanged", "", FakePart(status="skipped", message=why))

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, FakePart(status="not started", message=why))

    @classmethod
    def v1_keys(cls, command: str, result: HostResult | None) -> dict[str, Any]:
        return {cls.name: None if result is None else result.detail}


class Waits(_Fake):
    """Like the kernel command line: its changes wait for a reboot."""

    name = "waits"
    order = 5
    reboot = "waits"
    section = "fake"
    secrets = ("TUNER_TEST_FAKE_SECRET",)

    @classmethod
    def schema(cls) -> type[BaseModel]:
        return FakeSection

    def _step(self, run: Run, hosts: list[InventoryHost], word: str) -> tuple[Results, str]:
        out, art = super()._step(run, hosts, word)
        for name, r in out.items():
            if r.status == "changed":
                run.reboots.need(name)
        return out, art

    def rebooted(self, run: Run, hosts: list[InventoryHost], results: Results) -> list[str]:
        for h in hosts:
            by = run.reboots.done.get(h.name)
            if by:
                results[h.name].detail.rebooted_by = by
            elif h.name in run.reboots.failed:
                results[h.name].status = "failed"
                results[h.name].message = "reboot failed: " + run.reboots.failed[h.name]
        return ["artifacts-reread"]


class Resets(_Fake):
    """Like the BIOS: it can reset a node itself, and resets the hosts others wait on
    (here: only node01, as if only node01 had a BMC)."""

    name = "resets"
    order = 6
    reboot = "resets"

    def _step(self, run: Run, hosts: list[InventoryHost], word: str) -> tuple[Results, str]:
        out, art = super()._step(run, hosts, word)
        if run.reboots.allowed:
            for name in run.reboots.pending([h.name for h in hosts]):
                if name == "node01":
                    run.reboots.did(name, "fake reset")
        return out, art


class Runtime(_Fake):
    """Like the OS: runtime values, set after the reboot point (even with a lower order)."""

    name = "runtime"
    order = 1
    prefix_messages = False


class Checked(Runtime):
    name = "checked"
    order = 2
    crosses = (Cross(needs=("waits", "checked"), check=lambda p, r: _cross2(r)),)


def _cross2(results: dict[str, HostResult]) -> list[Any]:
    ok = results["checked"].status == "ok"
    return [FakeCross(status="ok" if ok else "mismatch")]


FAKES = {c.name: f"{__name__}:{c.__name__}" for c in (Waits, Resets, Runtime, Checked)}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the fake layers are registered (the registry's one line each)."""
    monkeypatch.setattr(layers, "REGISTRY", dict(FAKES))
    layers.classes.cache_clear()
    profiles.doc_model.cache_clear()
    _Fake.RESULTS = {}
    _Fake.calls = []
    yield
    layers.classes.cache_clear()
    profiles.doc_model.cache_clear()


def _inv(n: int = 3) -> Inventory:
    hosts = [
        InventoryHost(name=f"node{i:02d}", address="127.0.0.1", groups=[], vars={"tuner_sim": True})
        for i in range(1, n + 1)
    ]
    return Inventory(path="/inv.yml", limit=None, hosts=hosts, total=n)


class Reboots:
    """Stands in for the reboot playbook: records which hosts the orchestrator rebooted."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail or set()

    def __call__(self, name: str, hosts: list[InventoryHost], *a: Any, **k: Any) -> Any:
        assert name == "reboot.yml"
        self.calls.append([h.name for h in hosts])
        out = {
            h.name: HostOutcome(
                host=h.name, status="failed" if h.name in self.fail else "ok", message="no boot"
            )
            for h in hosts
        }
        return out, "artifacts-reboot"


def _profile(tmp_path: Path, body: str) -> Any:
    p = tmp_path / "p.yml"
    p.write_text("name: p\n" + body)
    return profiles.load_profile(str(p))


def test_registry_order_words_and_sections(registry: None, tmp_path: Path) -> None:
    assert layers.words() == ["waits", "resets", "runtime", "checked", "all"]
    assert layers.names() == ["runtime", "checked", "waits", "resets"]  # by `order`
    assert layers.names("resets") == ["resets"]
    with pytest.raises(BadInput) as e:
        layers.names("nope")
    assert "waits, resets, runtime, checked, all" in str(e.value)
    prof = _profile(tmp_path, "fake:\n  level: 2\n")
    assert prof.section("fake").level == 2 and prof.sources == {
        "fake.level": str(tmp_path / "p.yml")
    }
    assert prof.dump_sections() == {"fake": {"level": 2}} and prof.set_sections() == ["fake"]
    with pytest.raises(BadInput) as e:
        _profile(tmp_path, "fake:\n  level: 9\n")
    assert e.value.field == "fake.level"
    with pytest.raises(BadInput) as e:
        _profile(tmp_path, "os:\n  thp: {enabled: always}\n")  # no such layer registered here
    assert e.value.field == "os"


def test_reboot_plan_once_per_node_after_the_layers_that_reboot(
    registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec = Reboots()
    monkeypatch.setattr(Run, "playbook", rec)
    _Fake.RESULTS = {"apply": {"node01": "changed", "node02": "changed"}}
    run = Run(
        command="apply",
        profile=_profile(tmp_path, "fake: {level: 1}\n"),
        inv=_inv(),
        options=RunOptions(reboot="if-needed"),
    )
    rep = execute(run, layers.make("all"))
    # the layers with a part in the reboot first (in order), the reboot point, then the rest
    assert [(c[0], c[1]) for c in _Fake.calls] == [
        ("waits", "apply"),
        ("resets", "apply"),
        ("runtime", "apply"),
        ("checked", "apply"),
    ]
    # node01 was reset by the "resets" layer; only node02 is rebooted through the OS, once
    assert rec.calls == [["node02"]]
    assert run.reboots.done == {"node01": "fake reset", "node02": "simulator"}
    by = {h.host: h for h in rep.hosts}
    assert by["node01"].layers["waits"].detail.rebooted_by == "fake reset"
    assert by["node02"].layers["waits"].detail.rebooted_by == "simulator"
    assert by["node03"].layers["waits"].detail.rebooted_by is None
    assert [h.status for h in rep.hosts] == ["changed", "changed", "unchanged"]
    assert (
        "artifacts-reboot" in rep.batches.artifacts and "artifacts-reread" in rep.batches.artifacts
    )


def test_no_reboot_without_if_needed_or_under_check(
    registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec = Reboots()
    monkeypatch.setattr(Run, "playbook", rec)
    _Fake.RESULTS = {"apply": {"node02": "changed"}, "plan": {"node02": "changed"}}
    prof = _profile(tmp_path, "fake: {level: 1}\n")
    for opts, check in ((RunOptions(), False), (RunOptions(reboot="if-needed"), True)):
        run = Run(command="apply", profile=prof, inv=_inv(), check=check, options=opts)
        execute(run, layers.make("all"))
        assert rec.calls == [] and run.reboots.done == {} and not run.reboots.allowed


def test_failed_reboot_fails_the_waiting_layer(
    registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(Run, "playbook", Reboots(fail={"node02"}))
    _Fake.RESULTS = {"apply": {"node02": "changed"}}
    run = Run(
        command="apply",
        profile=_profile(tmp_path, "fake: {level: 1}\n"),
        inv=_inv(),
        options=RunOptions(reboot="if-needed"),
    )
    rep = execute(run, layers.make("all"))
    h = {x.host: x for x in rep.hosts}["node02"]
    assert h.status == "failed" and h.message == "FAKE: reboot failed: no boot"
    assert rep.exit_code == 1


def test_cross_checks_run_where_the_layers_they_need_ran(registry: None, tmp_path: Path) -> None:
    prof = _profile(tmp_path, "fake: {level: 1}\n")
    _Fake.RESULTS = {"verify": {"node02": "ok"}}
    run = Run(command="verify", profile=prof, inv=_inv(2))
    rep = execute(run, layers.make("all"))
    assert [h.cross for h in rep.hosts] == [[FakeCross(status="ok")]] * 2
    _Fake.calls = []
    _Fake.RESULTS = {"verify": {"node02": "drift"}}  # every fake layer drifts on node02
    rep = execute(Run(command="verify", profile=prof, inv=_inv(2)), layers.make("all"))
    assert [h.status for h in rep.hosts] == ["ok", "drift"]
    assert rep.hosts[1].cross == [FakeCross(status="mismatch")]
    # without one of the layers it needs, the check does not run
    rep = execute(Run(command="verify", profile=prof, inv=_inv(2)), layers.make("checked"))
    assert [h.cross for h in rep.hosts] == [[], []]


def test_cross_mismatch_alone_turns_ok_into_drift(
    registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        Checked,
        "crosses",
        (Cross(needs=("checked",), check=lambda p, r: [FakeCross(status="mismatch")]),),
    )
    rep = execute(
        Run(command="verify", profile=_profile(tmp_path, ""), inv=_inv(1)), layers.make("checked")
    )
    assert rep.hosts[0].status == "drift" and rep.exit_code == 1


def test_failure_cap_and_host_report_parts(registry: None, tmp_path: Path) -> None:
    _Fake.RESULTS = {"apply": {"node01": "failed"}}
    run = Run(
        command="apply",
        profile=_profile(tmp_path, "fake: {level: 1}\n"),
        inv=_inv(3),
        batch_size=1,
        max_failed=0,
    )
    rep = execute(run, layers.make("all"))
    assert [h.status for h in rep.hosts] == ["failed", "not started", "not started"]
    assert rep.batches.batches == 1 and rep.batches.stopped
    # one message per reason, as the layers that do not prefix theirs say it
    assert rep.hosts[0].message == "broke"
    doc = json.loads(rep.model_dump_json())
    h = doc["hosts"][0]
    assert doc["schema_version"] == 2
    assert h["layers"]["waits"] == {
        "status": "failed",
        "message": "broke",
        "detail": {"status": "failed", "message": "", "rebooted_by": None},
    }
    assert h["waits"] == h["layers"]["waits"]["detail"]  # the schema-1 field, kept
    rep = execute(
        Run(command="verify", profile=_profile(tmp_path, ""), inv=_inv(1)), layers.make("checked")
    )
    doc = json.loads(rep.model_dump_json())["hosts"][0]
    assert doc["waits"] is None and list(doc["layers"]) == ["checked"]  # did not run: null
    # a schema-1 document still loads: each layer reads its part back (`from_v1`)
    v1 = {"host": "n", "status": "ok", "layers": {"runtime": "ok"}, "runtime": {"x": 1}}
    from agent.report import HostVerify

    assert HostVerify.model_validate(v1).layers["runtime"].status == "ok"


def test_secrets_leave_the_environment_and_never_print(
    registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TUNER_TEST_FAKE_SECRET", "hunter2")
    run = Run(command="verify", profile=_profile(tmp_path, ""), inv=_inv(1))
    execute(run, layers.make("all"))
    assert "TUNER_TEST_FAKE_SECRET" not in os.environ
    assert run.options.credentials.get("TUNER_TEST_FAKE_SECRET") == "hunter2"
    assert "hunter2" not in repr(run.options) and "hunter2" not in repr(run)


def test_bad_reboot_word_is_bad_input(registry: None, tmp_path: Path) -> None:
    run = Run(
        command="apply",
        profile=_profile(tmp_path, ""),
        inv=_inv(1),
        options=RunOptions(reboot="always"),
    )
    with pytest.raises(BadInput) as e:
        execute(run, layers.make("all"))
    assert e.value.field == "--reboot"


def test_the_real_registry_declares_what_tuner_needs() -> None:
    """Every registered layer declares what the rest of tuner reads (no name is special)."""
    layers.classes.cache_clear()
    seen_orders = set()
    for cls in layers.classes():
        assert cls.name and cls.label and cls.order not in seen_orders
        seen_orders.add(cls.order)
        assert cls.reboot in ("none", "waits", "resets")
        assert cls.section is None or cls.schema() is not None
    assert layers.names() == list(layers.REGISTRY)  # the registry is written in run order


def test_saved_reports_read_back_for_ready_and_tables() -> None:
    """A saved verify document (schema 1 or 2) loads: cross-checks are objects again, and
    `tuner ready`'s reasons and the tables read it (the real registry)."""
    from agent.ready import drift_reason
    from agent.report import HostVerify

    layers.classes.cache_clear()
    v1 = {
        "host": "n1",
        "status": "drift",
        "layers": {"bios": "ok", "os": "ok"},
        "settings": [],
        "facts": {},
        "bios": {"status": "ok"},
        "cmdline": None,
        "cross": [
            {
                "id": "numa_nodes",
                "wanted": "8",
                "actual": "2",
                "status": "mismatch",
                "source": "bios",
                "message": "NPS 4 x 2 sockets should give 8 NUMA nodes",
            }
        ],
    }
    for doc in (v1, json.loads(HostVerify.model_validate(v1).model_dump_json())):
        h = HostVerify.model_validate(doc)
        assert h.layers["bios"].status == "ok" and h.cross[0].status == "mismatch"
        assert drift_reason(h) == (
            "cross-layer numa_nodes: NPS 4 x 2 sockets should give 8 NUMA nodes"
        )


def test_cli_start_up_reads_the_registry_without_importing_a_layer() -> None:
    """`tuner --help` stays fast: the CLI reads the registry (the --layer words) and the
    modules' defaults, never a layer module (they import Ansible's inventory, pydantic)."""
    import subprocess
    import sys

    code = "import sys, agent.cli; print(' '.join(sorted(sys.modules)))"
    mods = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert {"agent.layers", "agent.modargs"} <= mods
    assert not {m for m in mods if m.startswith("agent.layers.")}
    assert "pydantic" not in mods and "ansible" not in mods
