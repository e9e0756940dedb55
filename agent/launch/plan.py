"""Launch planning, pure: from the usable-GPU inventory to one command and environment per
node. Nothing here touches a host.

Rules (docs/launch.md):
- head: --head, else the usable node with the most usable GPUs, the first in report order
  among equals (agent.export.pick_head); workers follow in report order.
- node rank: head 0, workers 1..N-1; start rank: the running sum of usable GPUs of the nodes
  before (a 7-GPU node shifts every later start rank by 7, not 8).
- world size: usable GPUs in the fleet; share: equal (1/N per node) or weighted (local GPUs /
  world size, i.e. proportional to usable GPUs).
- exactly one GPU mask per node: ROCR_VISIBLE_DEVICES (agent.export.gpu_mask); the other
  masking variables are unset on the node.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import BadInput
from agent.export import gpu_mask, pick_head
from agent.gpu.gate import GpuInventory

Policy = Literal["equal", "weighted"]
PLACEHOLDERS = {
    "node": "the node's inventory name",
    "node_rank": "0 on the head, 1.. on the workers",
    "num_nodes": "nodes in the run",
    "world_size": "usable GPUs in the run",
    "local_gpus": "usable GPUs on this node",
    "start_rank": "running sum of usable GPUs on the nodes before this one",
    "head": "the head's address",
    "port": "P: work downstream (ROUTER on the head)",
    "port_up": "P+1: registration and results upstream",
    "share": "this node's work share under the policy (0..1)",
    "mask": "the ROCR_VISIBLE_DEVICES value of this node",
}
ENV_NAMES = {
    "node": "TUNER_NODE",
    "node_rank": "TUNER_NODE_RANK",
    "num_nodes": "TUNER_NUM_NODES",
    "world_size": "TUNER_WORLD_SIZE",
    "local_gpus": "TUNER_LOCAL_GPUS",
    "start_rank": "TUNER_START_RANK",
    "head": "TUNER_HEAD_ADDR",
    "port": "TUNER_PORT",
    "port_up": "TUNER_PORT_UP",
    "share": "TUNER_SHARE",
}
MASK_VAR = "ROCR_VISIBLE_DEVICES"
# Set on no node: ROCm applies ROCR_VISIBLE_DEVICES first, then HIP_/CUDA_VISIBLE_DEVICES index
# into what is left; several masks at once have broken Ray and vLLM (health-and-fleet.md).
OTHER_MASKS = ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")

VLLM_COMMON = [
    "--data-parallel-size",
    "{world_size}",
    "--data-parallel-size-local",
    "{local_gpus}",
    "--data-parallel-address",
    "{head}",
    "--data-parallel-rpc-port",
    "{port}",
]


class Template(BaseModel):
    """Extra arguments appended to COMMAND on the head and on the workers (placeholders
    allowed); `command` is used when no COMMAND is given."""

    model_config = ConfigDict(extra="forbid")
    name: str
    command: list[str] = []
    head: list[str] = []
    workers: list[str] = []


BUILTIN = {
    "vllm": Template(
        name="vllm",
        head=VLLM_COMMON,
        workers=["--headless", *VLLM_COMMON, "--data-parallel-start-rank", "{start_rank}"],
    ),
    "probe": Template(name="probe"),  # command filled per node (the node's Python, root)
}


class GpuRef(BaseModel):
    index: int | None
    uuid: str | None
    hip_uuid: str | None
    bdf: str | None


class NodePlan(BaseModel):
    name: str
    role: Literal["head", "worker"]
    rank: int
    start_rank: int
    local_gpus: int
    share: float
    address: str
    ssh_port: int | None
    user: str | None
    gpus: list[GpuRef]
    env: dict[str, str]
    argv: list[str]
    remote_command: str = ""  # the exact line run over SSH (set by ssh.remote_command)


class LaunchPlan(BaseModel):
    command: Literal["launch"] = "launch"
    report: str
    head: str
    head_address: str
    port: int
    port_up: int
    policy: Policy
    template: str | None
    world_size: int
    num_nodes: int
    nodes: list[NodePlan]
    excluded_nodes: dict[str, str]  # name -> why it is not in the run
    warnings: list[str] = []


def load_template(spec: str | None) -> Template | None:
    if spec is None:
        return None
    if spec in BUILTIN:
        return BUILTIN[spec]
    p = Path(spec)
    if not p.is_file():
        raise BadInput(
            f"unknown template {spec!r} (built in: {', '.join(BUILTIN)}; or a YAML file)",
            field="--template",
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
        return Template.model_validate({"name": p.stem, **(data or {})})
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(f"cannot read the template: {e}", file=spec) from e
    except (ValidationError, TypeError) as e:
        raise BadInput(f"not a template (keys: command, head, workers): {e}", file=spec) from e


def check_placeholders(args: list[str], where: str) -> None:
    """Only `{name}` with a known name; `{{`/`}}` for literal braces. Bad input otherwise."""
    for a in args:
        try:
            parsed = list(string.Formatter().parse(a))
        except ValueError as e:
            raise BadInput(f"{a!r}: {e} (write literal braces as {{{{ }}}})", field=where) from e
        for _lit, name, spec, conv in parsed:
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conv:
                raise BadInput(
                    f"{a!r}: unknown placeholder {{{name}}} (allowed: "
                    f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
                    field=where,
                )


def check_port(port: int) -> None:
    if not 1024 <= port <= 65534:
        raise BadInput(
            f"{port} is out of range: P and P+1 must be unprivileged ports (1024-65534)",
            field="--port",
        )


def shares(counts: list[int], policy: Policy) -> list[float]:
    total = sum(counts)
    if policy == "equal":
        return [1 / len(counts)] * len(counts)
    return [c / total for c in counts]


def _probe_default() -> list[str]:
    from agent.launch.ssh import probe_argv

    return probe_argv("python3", "/")


def make_plan(
    inv: GpuInventory,
    report: str,
    command: list[str],
    *,
    head: str | None,
    port: int,
    policy: Policy,
    template: Template | None,
    probe_argv: dict[str, list[str]] | None = None,
    probe_options: dict[str, Any] | None = None,
) -> LaunchPlan:
    """The plan. `probe_argv`: per node, the probe's command (its Python and root)."""
    check_port(port)
    if policy not in ("equal", "weighted"):
        raise BadInput(f"{policy!r} is not a policy (equal, weighted)", field="--policy")
    h = pick_head(inv, head)
    if h is None:
        raise BadInput("the report has no usable GPU: nothing to launch", field="--from")
    if not h.address:
        raise BadInput(
            f"the report has no address for {h.name} (write it with tuner check/ready "
            "from an inventory)",
            field="--from",
        )
    is_probe = template is not None and template.name == "probe"
    if is_probe and command:
        raise BadInput("--template probe runs its own command: give no COMMAND", field="COMMAND")
    if not is_probe and not command and not (template and template.command):
        raise BadInput("give a COMMAND after -- (or a template with a command)", field="COMMAND")
    base = command or (template.command if template else [])
    check_placeholders(base, "COMMAND")
    if template is not None:
        check_placeholders(template.head, "--template head")
        check_placeholders(template.workers, "--template workers")

    nodes = [h] + [n for n in inv.nodes if n.usable and n.name != h.name]
    counts = [len(n.usable) for n in nodes]
    world = sum(counts)
    weights = shares(counts, policy)
    plans: list[NodePlan] = []
    start = 0
    for rank, (n, count, share) in enumerate(zip(nodes, counts, weights, strict=True)):
        if not n.address:
            raise BadInput(f"the report has no address for {n.name}", field="--from")
        values: dict[str, str] = {
            "node": n.name,
            "node_rank": str(rank),
            "num_nodes": str(len(nodes)),
            "world_size": str(world),
            "local_gpus": str(count),
            "start_rank": str(start),
            "head": h.address,
            "port": str(port),
            "port_up": str(port + 1),
            "share": f"{share:.6f}",
            "mask": gpu_mask(n),
        }
        env = {ENV_NAMES[k]: v for k, v in values.items() if k in ENV_NAMES}
        env[MASK_VAR] = values["mask"]
        if is_probe:
            env["TUNER_PROBE_DEADLINE"] = str((probe_options or {}).get("deadline", 60))
            argv = list((probe_argv or {}).get(n.name) or _probe_default())
            if rank == 0:
                env["TUNER_PROBE_EXPECTED"] = json.dumps(
                    {
                        "nodes": {
                            m.name: {
                                "share": round(w, 6),
                                "gpus": [g.uuid for g in m.usable],
                            }
                            for m, w in zip(nodes, weights, strict=True)
                        },
                        **(probe_options or {}),
                    },
                    separators=(",", ":"),
                )
        else:
            extra = (template.head if rank == 0 else template.workers) if template else []
            argv = [a.format(**values) for a in [*base, *extra]]
        plans.append(
            NodePlan(
                name=n.name,
                role="head" if rank == 0 else "worker",
                rank=rank,
                start_rank=start,
                local_gpus=count,
                share=round(share, 6),
                address=n.address,
                ssh_port=n.port,
                user=n.user,
                gpus=[
                    GpuRef(index=g.index, uuid=g.uuid, hip_uuid=g.hip_uuid, bdf=g.bdf)
                    for g in n.usable
                ],
                env=env,
                argv=argv,
            )
        )
        start += count
    return LaunchPlan(
        report=report,
        head=h.name,
        head_address=h.address,
        port=port,
        port_up=port + 1,
        policy=policy,
        template=template.name if template else None,
        world_size=world,
        num_nodes=len(nodes),
        nodes=plans,
        excluded_nodes={n.name: f"{n.status}: {n.reason}" for n in inv.nodes if not n.usable},
    )
