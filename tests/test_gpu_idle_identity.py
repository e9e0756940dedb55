"""Issue 16 part 4, GPU side, pure: idle-state expectations (gpu.idle), identity unique across
the fleet (fleet.identity), memory partitions hive-wide and totals in physical GPUs with the
compute partitions listed under their GPU.

Data: tests/data/facts/healthy.json (an 8 x MI355X simulated node, from a collector older
than the idle readings) and tests/data/partitions/cpx-2gpu.json (`tuner facts --local` of a
simulated node with 2 MI355X in CPX: 16 logical devices, NodeGpuState.partitioned).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from agent.gpu.checks.idle import idle
from agent.gpu.gate import GateOptions, GpuInventory, evaluate_fleet, evaluate_node
from agent.gpu.model import Clock, NodeFacts
from agent.gpu.policy import IdleCheck, Policy, load_policy

DATA = Path(__file__).parent / "data" / "facts"


def facts(name: str, as_: str | None = None) -> NodeFacts:
    where = DATA.parent / "partitions" if name.startswith("cpx") else DATA
    f = NodeFacts.model_validate_json((where / name).read_text())
    if as_:
        f.name = as_
    return f


def cpx_policy() -> Policy:
    p = load_policy()
    p.expected_gpus_per_node = 2
    p.checks.partition.compute = "CPX"
    p.checks.xgmi_links.expected_up = 1  # 2 GPUs in the hive
    return p


def gate(nodes: list[NodeFacts], policy: Policy | None = None) -> GpuInventory:
    pol = policy or load_policy()
    return evaluate_fleet([evaluate_node(f, pol) for f in nodes], nodes, pol, GateOptions())


# ---------------------------------------------------------------- idle


def test_idle_gpu_passes_with_its_readings_as_evidence() -> None:
    g = facts("cpx-2gpu.json").gpus[0]
    r = idle(g, IdleCheck())
    assert r.status == "pass", r.message
    assert r.evidence["gfx_activity_pct"] == 0 and r.evidence["gfx_clock_mhz"] == 144
    assert r.evidence["gfx_deep_sleep"] == 1 and r.evidence["power_w"] == 251


@pytest.mark.parametrize(
    "change, words",
    [
        ({"activity": {"gfx": 100, "umc": 0, "mm": None}}, "GFX activity 100%"),
        ({"activity": {"gfx": 0, "umc": 40, "mm": None}}, "memory (UMC) activity 40%"),
        ({"clocks": {"gfx": Clock(current=2400, min=500, max=2400, deep_sleep=0)}}, "GFX clock"),
        ({"power_w": 900}, "socket power 900 W"),
        ({"perf_level": "MANUAL"}, None),  # no expectation by default
    ],
)
def test_busy_at_idle_fails_at_the_guides_severity(change: dict, words: str | None) -> None:
    g = facts("cpx-2gpu.json").gpus[0].model_copy(update=change)
    r = idle(g, IdleCheck())
    if words is None:
        assert r.status == "pass"
        assert idle(g, IdleCheck(perf_level=["AUTO"])).status == "fail"
        return
    assert r.status == "fail" and r.blocks  # required: false, but a fail excludes
    assert r.message.startswith("not idle: ") and words in r.message, r.message


def test_hot_at_idle_fails_and_warn_policy_keeps_the_gpu() -> None:
    g = facts("cpx-2gpu.json").gpus[0]
    g.temperatures["hotspot"].current = 88
    assert "hotspot 88 C at idle" in idle(g, IdleCheck()).message
    assert idle(g, IdleCheck(severity="warn")).status == "warn"


def test_unsupported_idle_readings_are_unknown_and_old_facts_pass() -> None:
    g = (
        facts("cpx-2gpu.json")
        .gpus[0]
        .model_copy(update={"activity": None, "clocks": {}, "power_w": None, "perf_level": None})
    )
    g.unsupported = ["activity", "clock.gfx", "power_info", "perf_level"]
    r = idle(g, IdleCheck())
    assert r.status == "unknown" and not r.blocks  # not required: excludes nothing
    old = facts("healthy.json").gpus[0]  # a collector older than these readings
    assert idle(old, IdleCheck()).status == "pass"


def test_busy_gpu_is_excluded_by_the_gate_its_neighbours_stay() -> None:
    f = facts("cpx-2gpu.json")
    f.gpus[3].activity = {"gfx": 100, "umc": 20, "mm": None}
    node = evaluate_node(f, cpx_policy())
    assert [e.index for e in node.excluded] == [3]
    assert node.excluded[0].checks[0].check == "gpu.idle"


# ---------------------------------------------------------------- identity


def test_one_machine_listed_twice_fails_the_gate_naming_both() -> None:
    inv = gate([facts("healthy.json", "node01"), facts("healthy.json", "node02")])
    assert not inv.gate.passed
    (reason,) = inv.gate.reasons  # one line for the pair, not one per GPU
    assert reason.startswith("node01 and node02 report the same identities (8 GPU serials")
    assert "XGMI hive id" in reason and "node01 GPU 0 (0000:05:00.0), node02 GPU 0" in reason
    kinds = {d.key for d in inv.duplicates}
    assert kinds == {"serial", "uuid", "hive_id"}  # healthy.json predates hip_uuid
    assert all(d.nodes == ["node01", "node02"] for d in inv.duplicates)
    assert any("GPU serial 692000000000 seen in 2 places" in w for w in inv.nodes[0].warnings)


def test_duplicate_serial_inside_one_node_and_warn_policy() -> None:
    f = facts("healthy.json", "node01")
    f.gpus[5].serial = f.gpus[2].serial
    inv = gate([f])
    (reason,) = inv.gate.reasons
    assert "GPU serial 692000000002 seen in 2 places: node01 GPU 2" in reason
    assert "node01 GPU 5 (0000:95:00.0)" in reason and "two GPUs of one node" in reason
    pol = load_policy()
    pol.checks.identity.severity = "warn"
    inv = gate([f], pol)
    assert inv.gate.passed and any("GPU serial" in w for w in inv.fleet.warnings)


def test_partitions_of_one_gpu_share_its_serial_without_a_duplicate() -> None:
    f = facts("cpx-2gpu.json")
    assert len({g.serial for g in f.gpus}) == 2  # 16 logical devices, 2 boards
    inv = gate([f], cpx_policy())
    assert inv.gate.passed and inv.duplicates == [], inv.gate.reasons


# ---------------------------------------------------------------- partitions


def test_totals_count_physical_gpus_with_partitions_under_them() -> None:
    inv = gate([facts("cpx-2gpu.json")], cpx_policy())
    assert inv.gate.passed, inv.gate.reasons
    assert (inv.usable_physical_gpus, inv.installed_physical_gpus) == (2, 2)
    assert inv.usable_gpus == 16  # logical devices: what launch masks and slots count
    assert inv.summary == "2 of 2 GPUs usable (16 logical devices usable, CPX)"
    (node,) = inv.nodes
    assert node.physical_gpus is not None
    first, second = node.physical_gpus
    assert first.bdf == "0000:05:00.0" and first.partitions == list(range(8))
    assert second.bdf == "0000:15:00.0" and second.partitions == list(range(8, 16))
    assert first.compute_partition == "CPX" and first.serial != second.serial
    # each logical device holds its share of the 288 GB (36 GB): gpu.vram passed
    assert all(c.check != "gpu.vram" for e in node.usable for c in e.checks)


def test_one_bad_partition_makes_its_physical_gpu_unusable() -> None:
    f = facts("cpx-2gpu.json")
    f.gpus[11].ecc.uncorrectable = 2  # partition 3 of the second GPU
    inv = gate([f], cpx_policy())
    (node,) = inv.nodes
    assert node.physical_gpus is not None
    assert [p.usable for p in node.physical_gpus] == [True, False]
    assert node.physical_gpus[1].excluded_partitions == [11]
    assert inv.summary.startswith("1 of 2 GPUs usable (15 logical devices usable")
    from agent.gpu.run import print_inventory

    out = io.StringIO()
    print_inventory(inv, Console(file=out, width=200))
    assert "1/2 usable (15 logical devices)" in out.getvalue()
    assert "1 of 2 GPUs usable" in out.getvalue()


def test_memory_partition_is_hive_wide() -> None:
    f = facts("cpx-2gpu.json")
    for g in f.gpus[8:]:
        g.memory_partition = "NPS2"  # the second GPU switched alone: a half-applied change
    pol = cpx_policy()
    pol.checks.partition.memory = None  # no expected mode: only the hive rule
    node = evaluate_node(f, pol)
    assert node.usable == [] and len(node.excluded) == 16
    msg = next(c for c in node.excluded[0].checks if c.check == "gpu.partition.memory_hive")
    assert "NPS1, NPS2 inside one XGMI hive" in msg.message


def test_unpartitioned_node_keeps_its_counts_and_report_shape() -> None:
    inv = gate([facts("healthy.json")])
    assert inv.nodes[0].physical_gpus is None
    assert (inv.usable_physical_gpus, inv.installed_physical_gpus) == (8, 8)
    assert inv.summary == "8 of 8 GPUs usable"
