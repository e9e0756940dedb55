"""The parallelism-aware launch plan, pure (agent/launch/plan.py, placement.py), on a real
report: `tuner check` of the simulated `mlperf-llama2-70b` scenario (11 x 8 MI355X, one GPU of
node07 excluded: 87 usable), written with the XGMI link graph. And every flag the vLLM and
SGLang templates emit, checked against the flags their own argument parsers define
(tests/data/launch-flags/, extracted from the PyPI wheels by scripts/extract_flags.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.gpu.gate import GpuInventory
from agent.launch.plan import BUILTIN, LaunchPlan, load_template, make_plan

DATA = Path(__file__).parent / "data"
REPORT = DATA / "reports" / "mlperf-llama2-70b-xgmi.json"
OLD_REPORT = DATA / "reports" / "mlperf-llama2-70b.json"  # written before the link graph


def inv(path: Path = REPORT) -> GpuInventory:
    return GpuInventory.model_validate_json(path.read_text())


def plan(
    i: GpuInventory | None = None,
    template: str | None = "vllm",
    command: list[str] | None = None,
    **kw: object,
) -> LaunchPlan:
    cmd = (
        command if command is not None else ([] if template == "probe" else ["vllm", "serve", "M"])
    )
    return make_plan(
        i or inv(),
        "r.json",
        cmd,
        head=kw.pop("head", None),  # type: ignore[arg-type]
        port=29500,
        policy="equal",
        template=load_template(template),
        **kw,  # type: ignore[arg-type]
    )


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("tp", "engines", "per_node", "leftover_node07"),
    [
        (1, 87, [8] * 6 + [7] + [8] * 4, []),
        (2, 43, [4] * 6 + [3] + [4] * 4, [7]),
        (4, 21, [2] * 6 + [1] + [2] * 4, [4, 6, 7]),
        (8, 10, [1] * 10, [0, 1, 2, 3, 4, 6, 7]),
    ],
)
def test_tp_on_the_87_gpu_scenario(
    tp: int, engines: int, per_node: list[int], leftover_node07: list[int]
) -> None:
    p = plan(tp=tp)
    assert p.tp == tp and p.data_parallel_size == engines
    assert p.world_size == engines * tp
    assert [len(n.engines) for n in p.nodes] == per_node
    # data-parallel start ranks: the running sum of engines before each node
    starts = [sum(per_node[:k]) for k in range(len(per_node))]
    assert [n.dp_start for n in p.nodes] == starts
    assert [e.dp_rank for n in p.nodes for e in n.engines] == list(range(engines))
    for n in p.nodes:
        head = n.role == "head"
        assert flag(n.argv, "--data-parallel-size") == str(engines)
        assert flag(n.argv, "--tensor-parallel-size") == str(tp)
        assert flag(n.argv, "--data-parallel-size-local") == str(len(n.engines))
        assert ("--headless" in n.argv) != head
        if not head:
            assert flag(n.argv, "--data-parallel-start-rank") == str(n.dp_start)
        # one mask per engine; the node's mask is its engines' masks in order
        assert all(len(e.gpus) == tp for e in n.engines)
        assert n.env["ROCR_VISIBLE_DEVICES"] == ",".join(e.mask for e in n.engines)
        assert all(m.startswith("GPU-") for m in n.env["ROCR_VISIBLE_DEVICES"].split(","))
        assert n.local_gpus == tp * len(n.engines)
    assert [lo.index for lo in p.leftover.get("node07", [])] == leftover_node07
    assert p.leftover_gpus == len(leftover_node07)
    assert "GPU-5a11000000006005" not in json.dumps(p.model_dump())  # the excluded GPU
    if tp == 8:
        assert "node07" not in [n.name for n in p.nodes]
        assert p.excluded_nodes["node07"].startswith("no engine here")


def test_issue_example_tp2_dry_run_numbers() -> None:
    """`--template vllm --tp 2` on the 87-GPU scenario: --data-parallel-size 43, TP 2."""
    p = plan(tp=2)
    head = p.nodes[0]
    assert flag(head.argv, "--data-parallel-size") == "43"
    assert flag(head.argv, "--tensor-parallel-size") == "2"
    assert p.leftover_gpus == 1 and p.warnings


def test_sizes_read_from_the_serving_command() -> None:
    for cmd in (
        ["vllm", "serve", "M", "--tensor-parallel-size", "2"],
        ["vllm", "serve", "M", "-tp", "2"],
        ["vllm", "serve", "M", "--tensor-parallel-size=2"],
    ):
        p = plan(command=cmd)
        assert p.tp == 2 and p.data_parallel_size == 43
        head = p.nodes[0].argv
        assert head.count("--tensor-parallel-size") + head.count("-tp") == 1 or "=" in cmd[-1]
    p = plan(command=["vllm", "serve", "M", "-tp", "2", "-pp", "2"])
    assert (p.tp, p.pp, p.data_parallel_size) == (2, 2, 21)
    assert "--pipeline-parallel-size" not in p.nodes[0].argv  # the command says it
    p = plan(tp=2, pp=2)
    assert flag(p.nodes[0].argv, "--pipeline-parallel-size") == "2"
    with pytest.raises(BadInput, match="COMMAND says 4"):
        plan(command=["vllm", "serve", "M", "-tp", "4"], tp=2)
    with pytest.raises(BadInput, match="positive integer"):
        plan(command=["vllm", "serve", "M", "-tp", "two"])
    with pytest.raises(BadInput, match="leave them out"):
        plan(command=["vllm", "serve", "M", "--data-parallel-size", "8"])


def test_expert_parallel() -> None:
    p = plan(command=["vllm", "serve", "M", "--enable-expert-parallel"], tp=2)
    assert p.ep == 2 * 43 and p.nodes[0].argv.count("--enable-expert-parallel") == 1
    p = plan(tp=2, ep=86)
    assert "--enable-expert-parallel" in p.nodes[1].argv
    with pytest.raises(BadInput, match="TP x DP = 2 x 43 = 86"):
        plan(tp=2, ep=4)
    s = plan(template="sglang", command=["python", "-m", "sglang.launch_server"], tp=4, ep=2)
    assert flag(s.nodes[0].argv, "--ep-size") == "2"
    with pytest.raises(BadInput, match="divide"):
        plan(template="sglang", command=["python", "-m", "sglang.launch_server"], tp=4, ep=3)


def test_a_bad_link_never_shares_an_engine() -> None:
    """A policy may let a GPU with a down link stay usable (a warning): the plan still never
    pairs it with the partner the link is down to."""
    i = inv()
    n = i.nodes[0]
    n.xgmi_down = [[0, 1], [2, 3]]
    p = plan(i, tp=2)
    engines = [set(e.gpus) for e in p.nodes[0].engines]  # node01 is the head
    assert {0, 1} not in engines and {2, 3} not in engines
    assert len(engines) == 4 and set().union(*engines) == set(range(8))
    n.xgmi_down = [[0, b] for b in range(1, 8)]  # GPU 0 has no partner at all
    p = plan(i, tp=2)
    node01 = next(x for x in p.nodes if x.name == "node01")
    assert p.head == "node02"  # the most engines now
    assert all(0 not in e.gpus for e in node01.engines) and len(node01.engines) == 3
    left = p.leftover["node01"]
    assert [lo.index for lo in left] == [0, 7] and "XGMI link down to GPU 1, 2" in left[0].reason
    p = plan(i, tp=1)
    assert len(p.nodes[0].engines) == 8  # alone it needs no link


def test_two_hives_on_a_node() -> None:
    i = inv()
    i.nodes[0].xgmi_groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    p = plan(i, tp=4)
    assert [e.gpus for e in p.nodes[0].engines] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(BadInput):
        i2 = inv()
        for n in i2.nodes:
            n.xgmi_groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
        plan(i2, tp=8)


def test_no_engine_fits_is_bad_input() -> None:
    with pytest.raises(BadInput, match="most usable GPUs in one group is 8") as e:
        plan(tp=16)
    assert e.value.field == "--tp"
    with pytest.raises(BadInput, match="no XGMI link graph"):
        plan(inv(OLD_REPORT), tp=2)  # fail closed: links not proven
    assert plan(inv(OLD_REPORT), tp=1).data_parallel_size == 87
    with pytest.raises(BadInput, match="cannot be the head"):
        plan(tp=8, head="node07")  # 7 GPUs: no engine of 8 there


def test_sglang_same_engines_on_every_node() -> None:
    p = plan(template="sglang", command=["python", "-m", "sglang.launch_server"], tp=2)
    # 4 engines on 10 nodes (40) beat 3 on 11 (33): node07 sits out, named
    assert p.data_parallel_size == 40 and p.num_nodes == 10
    assert "same number of engines (4)" in p.excluded_nodes["node07"]
    for n in p.nodes:
        assert flag(n.argv, "--tp-size") == "2"
        assert flag(n.argv, "--dp-size") == "40"
        assert flag(n.argv, "--nnodes") == "10"
        assert flag(n.argv, "--node-rank") == str(n.rank)
        assert flag(n.argv, "--dist-init-addr") == f"{p.head_address}:29500"


def test_probe_expects_exactly_the_placed_gpus() -> None:
    p = plan(template="probe", tp=2)
    exp = json.loads(p.nodes[0].env["TUNER_PROBE_EXPECTED"])
    assert sum(len(v["gpus"]) for v in exp["nodes"].values()) == 86
    assert "07ff75a3-0000-1000-8000-000000006007" not in exp["nodes"]["node07"]["gpus"]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("name", "node01; rm -rf /"),
        ("name", "node01\nnode02"),
        ("name", "{{ lookup('pipe','id') }}"),
        ("address", "127.0.0.1 -oProxyCommand=sh"),
        ("address", "-oProxyCommand=sh"),
        ("hip_uuid", "GPU-$(reboot)"),
        ("hip_uuid", "GPU-1a,GPU-2b"),
        ("uuid", "x: [y]"),
    ],
)
def test_hostile_identities_are_bad_input(where: str, value: str) -> None:
    i = inv()
    n = i.nodes[1]
    if where in ("name", "address"):
        setattr(n, where, value)
    else:
        setattr(n.usable[0], where, value)
    with pytest.raises(BadInput):
        plan(i, tp=1)


def test_hand_edited_report_excluded_gpu_back_in_usable() -> None:
    i = inv()
    n07 = next(n for n in i.nodes if n.name == "node07")
    n07.usable.append(copy.deepcopy(n07.usable[0]))  # the same GPU twice
    with pytest.raises(BadInput, match="twice"):
        plan(i)


def _flags(tool: str) -> set[str]:
    return set(json.loads((DATA / "launch-flags" / f"{tool}.json").read_text())["flags"])


@pytest.mark.parametrize("tool", ["vllm", "sglang"])
def test_every_template_flag_is_the_tools_own(tool: str) -> None:
    known = _flags(tool)
    t = BUILTIN[tool]
    emitted = {a for a in [*t.head, *t.workers, *t.tp, *t.pp, *t.ep] if a.startswith("-")}
    assert emitted and emitted <= known, emitted - known
    # and what a plan actually emits, with every size
    cmd = ["vllm", "serve", "M"] if tool == "vllm" else ["python", "-m", "sglang.launch_server"]
    p = plan(template=tool, command=cmd, tp=2, pp=2, ep=42 if tool == "vllm" else 2)
    for n in p.nodes:
        extra = n.argv[len(cmd) :]
        assert {a for a in extra if a.startswith("-")} <= known
    # and the flags the plan reads from a command are the tools' own
    from agent.launch.plan import EP_SWITCHES, SIZE_FLAGS

    assert {f for f in [*SIZE_FLAGS, *EP_SWITCHES] if f in known}
