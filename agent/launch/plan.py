"""Launch planning, pure: from the usable-GPU inventory to one command and environment per
node. Nothing here touches a host.

Rules (docs/launch.md):
- engines: TP x PP GPUs on one node inside one fully connected XGMI group (placement.py);
  usable GPUs that fit no engine are left over, named with the reason; nodes with no engine
  are not in the run. No engine anywhere: bad input, saying why.
- head: --head, else the node with the most GPUs in the run, the first in report order among
  equals; workers follow in report order.
- node rank: head 0, workers 1..N-1; start rank: the running sum of the GPUs in the run on the
  nodes before (a 7-GPU node shifts every later start rank by 7, not 8); data-parallel start
  rank: the running sum of engines on the nodes before.
- world size: GPUs in the run; data-parallel size: engines in the run; share: equal (1/N per
  node) or weighted (local GPUs / world size).
- exactly one GPU mask per node: ROCR_VISIBLE_DEVICES, the node's engines one after the other
  (engine k of the node is entries k*TP*PP .. (k+1)*TP*PP-1, the order vLLM and SGLang give
  their local ranks); the other masking variables are unset on the node.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import json
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import BadInput
from agent.gpu.gate import GpuEntry, GpuInventory, NodeEntry
from agent.launch.placement import Leftover, place

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
    "tp": "tensor parallel size (GPUs per pipeline stage of an engine)",
    "pp": "pipeline parallel size",
    "ep": "expert parallel size (1: off)",
    "dp_size": "engines (data-parallel ranks) in the run",
    "dp_local": "engines on this node",
    "dp_start": "running sum of engines on the nodes before this one",
    "head_port": "the head's address and P as HOST:P ([v6]:P for IPv6)",
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
    "tp": "TUNER_TP",
    "pp": "TUNER_PP",
    "dp_size": "TUNER_DP_SIZE",
    "dp_local": "TUNER_DP_LOCAL",
    "dp_start": "TUNER_DP_START_RANK",
}
MASK_VAR = "ROCR_VISIBLE_DEVICES"
# Set on no node: ROCm applies ROCR_VISIBLE_DEVICES first, then HIP_/CUDA_VISIBLE_DEVICES index
# into what is left; several masks at once have broken Ray and vLLM (health-and-fleet.md).
OTHER_MASKS = ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")

VLLM_COMMON = [
    "--data-parallel-size",
    "{dp_size}",
    "--data-parallel-size-local",
    "{dp_local}",
    "--data-parallel-address",
    "{head}",
    "--data-parallel-rpc-port",
    "{port}",
]
SGLANG_COMMON = [
    "--dp-size",
    "{dp_size}",
    "--nnodes",
    "{num_nodes}",
    "--node-rank",
    "{node_rank}",
    "--dist-init-addr",
    "{head_port}",
]


class Template(BaseModel):
    """Extra arguments appended to COMMAND on the head and on the workers (placeholders
    allowed); `command` is used when no COMMAND is given. `tp`, `pp`, `ep`: appended on every
    node when COMMAND does not state that size itself (`tp` always, `pp`/`ep` when > 1).
    `uniform`: every node runs the same number of engines (the fewest any node can hold)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    command: list[str] = []
    head: list[str] = []
    workers: list[str] = []
    tp: list[str] = []
    pp: list[str] = []
    ep: list[str] = []
    uniform: bool = False


BUILTIN = {
    # vLLM's multi-node data parallel (docs.vllm.ai, "Data Parallel Deployment"): one
    # `vllm serve` per node; the head runs the API server, workers --headless.
    "vllm": Template(
        name="vllm",
        head=VLLM_COMMON,
        workers=["--headless", *VLLM_COMMON, "--data-parallel-start-rank", "{dp_start}"],
        tp=["--tensor-parallel-size", "{tp}"],
        pp=["--pipeline-parallel-size", "{pp}"],
        ep=["--enable-expert-parallel"],
    ),
    # SGLang's multi-node flags (docs.sglang.ai, "Multi-Node Deployment"): one server process
    # per node, the same command with --node-rank; --dist-init-addr is the head's rendezvous.
    "sglang": Template(
        name="sglang",
        head=SGLANG_COMMON,
        workers=SGLANG_COMMON,
        tp=["--tp-size", "{tp}"],
        pp=["--pp-size", "{pp}"],
        ep=["--ep-size", "{ep}"],
        uniform=True,
    ),
    "probe": Template(name="probe"),  # command filled per node (the node's Python, root)
}

# Where a serving command states its parallel sizes (vLLM's and SGLang's own spellings, as in
# tests/data/launch-flags/): flag -> size it sets. Data-parallel flags are the template's.
SIZE_FLAGS = {
    "--tensor-parallel-size": "tp",
    "-tp": "tp",
    "--tp-size": "tp",
    "--tp": "tp",
    "--pipeline-parallel-size": "pp",
    "-pp": "pp",
    "--pp-size": "pp",
    "--ep-size": "ep",
    "--expert-parallel-size": "ep",
    "--ep": "ep",
}
EP_SWITCHES = ("--enable-expert-parallel", "-ep")  # vLLM: EP size = TP x DP
DP_FLAGS = (
    "--data-parallel-size",
    "-dp",
    "--data-parallel-size-local",
    "--data-parallel-start-rank",
    "--data-parallel-address",
    "--data-parallel-rpc-port",
    "--dp-size",
    "--nnodes",
    "--node-rank",
    "--dist-init-addr",
    "--headless",
)


class Parallel(BaseModel):
    tp: int = 1
    pp: int = 1
    ep: int = 1
    from_command: list[str] = []  # sizes COMMAND states itself (not appended again)
    ep_switch: bool = False  # COMMAND has vLLM's --enable-expert-parallel

    @property
    def gpus_per_engine(self) -> int:
        return self.tp * self.pp


def _flag_value(argv: list[str], i: int) -> tuple[str, str | None]:
    a = argv[i]
    if "=" in a and a.startswith("-"):
        k, v = a.split("=", 1)
        return k, v
    return a, argv[i + 1] if i + 1 < len(argv) else None


def parallel_from(command: list[str], tp: int | None, pp: int | None, ep: int | None) -> Parallel:
    """Sizes from the options and from COMMAND (`--tensor-parallel-size 2`, `-tp=2`, ...).
    Both given and different, a size that is not a positive integer: bad input."""
    stated: dict[str, int] = {}
    ep_switch = False
    for i, a in enumerate(command):
        if a in EP_SWITCHES:
            ep_switch = True
            continue
        k, v = _flag_value(command, i)
        if k not in SIZE_FLAGS:
            continue
        size = SIZE_FLAGS[k]
        if v is None or not v.isdigit() or int(v) < 1:
            raise BadInput(f"{k} {v!r} in COMMAND: a positive integer is needed", field="COMMAND")
        if size in stated and stated[size] != int(v):
            raise BadInput(f"COMMAND states {size} twice ({stated[size]}, {v})", field="COMMAND")
        stated[size] = int(v)
    given = {"tp": tp, "pp": pp, "ep": ep}
    out: dict[str, int] = {}
    for size in ("tp", "pp", "ep"):
        g = given[size]
        if g is not None and g < 1:
            raise BadInput(f"{g} is not a size (1 or more)", field=f"--{size}")
        if g is not None and size in stated and stated[size] != g:
            raise BadInput(
                f"--{size} {g} but COMMAND says {stated[size]}: give one of them",
                field=f"--{size}",
            )
        out[size] = g if g is not None else stated.get(size, 1)
    return Parallel(**out, from_command=sorted(stated), ep_switch=ep_switch)


class GpuRef(BaseModel):
    index: int | None
    uuid: str | None
    hip_uuid: str | None
    bdf: str | None


class EnginePlan(BaseModel):
    dp_rank: int  # the engine's data-parallel rank in the run
    local_rank: int  # its rank on the node (its block of the node's mask)
    gpus: list[int | None]  # runtime indices
    mask: str  # this engine's GPUs, as in ROCR_VISIBLE_DEVICES


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
    engines: list[EnginePlan] = []
    dp_start: int = 0
    installed: int | None = None  # AMD GPUs on the node's PCI bus (the report's count)
    leftover: list[Leftover] = []  # usable GPUs of this node outside every engine, and why
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
    tp: int = 1
    pp: int = 1
    ep: int = 1
    data_parallel_size: int = 0  # engines in the run
    leftover_gpus: int = 0  # usable GPUs in no engine
    leftover: dict[str, list[Leftover]] = {}  # per node (in the run or not): which, and why
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


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
HIP_UUID_RE = re.compile(r"GPU-[0-9A-Fa-f]{1,64}")
UUID_RE = re.compile(r"[0-9A-Za-z-]{1,64}")


def check_identities(inv: GpuInventory) -> None:
    """Values from the report that reach command lines, environments, scripts and manifests
    are checked here, whatever wrote the report: node names, addresses, GPU UUIDs and indices.
    A report edited by hand with shell or YAML syntax in them is refused (bad input)."""
    seen: set[str] = set()
    for n in inv.nodes:
        if not NAME_RE.fullmatch(n.name):
            raise BadInput(
                f"node name {n.name!r} is not a host name (letters, digits, '.', '_', '-')",
                field="nodes[].name",
            )
        if n.name in seen:
            raise BadInput(f"node {n.name!r} is in the report twice", field="nodes[].name")
        seen.add(n.name)
        if n.address is not None and not _address_ok(n.address):
            raise BadInput(
                f"node {n.name}: address {n.address!r} is not a host name or IP address",
                field="nodes[].address",
            )
        uuids: set[str] = set()
        for g in [*n.usable, *n.excluded]:
            if g.hip_uuid is not None and not HIP_UUID_RE.fullmatch(g.hip_uuid):
                raise BadInput(
                    f"node {n.name}: GPU hip_uuid {g.hip_uuid!r} is not GPU-<hex>",
                    field="nodes[].usable[].hip_uuid",
                )
            if g.uuid is not None:
                if not UUID_RE.fullmatch(g.uuid):
                    raise BadInput(
                        f"node {n.name}: GPU uuid {g.uuid!r} is not a UUID",
                        field="nodes[].usable[].uuid",
                    )
                if g.uuid in uuids:
                    raise BadInput(
                        f"node {n.name}: GPU {g.uuid} is listed twice (usable and excluded?)",
                        field="nodes[].usable",
                    )
                uuids.add(g.uuid)
            if g.index is not None and not 0 <= g.index < 4096:
                raise BadInput(f"node {n.name}: GPU index {g.index}", field="nodes[].usable[]")
        idx = [g.index for g in n.usable if g.index is not None]
        if len(idx) != len(set(idx)):
            raise BadInput(f"node {n.name}: a GPU index is usable twice", field="nodes[].usable")


def _address_ok(a: str) -> bool:
    if HOST_RE.fullmatch(a):  # host names and IPv4 (HOST_RE cannot start with "-")
        return True
    try:
        ipaddress.ip_address(a)  # IPv6
        return True
    except ValueError:
        return False


_M = TypeVar("_M", bound=BaseModel)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _new(cls: type[_M], **values: Any) -> _M:
    """A model from values built here out of checked ones, every field given: what pydantic's
    model_construct does without its per-field loop (about 130,000 objects for 10,000 nodes;
    bench/launch_plan_bench.py)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(cls.model_fields)
    m = cls.__new__(cls)
    values = {k: values[k] for k in names}  # the fields' order; all of them
    object.__setattr__(m, "__dict__", values)
    object.__setattr__(m, "__pydantic_fields_set__", set(values))
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m


def _mask(gpus: list[GpuEntry], by_uuid: bool) -> str:
    return ",".join(str(g.hip_uuid) if by_uuid else str(g.index) for g in gpus)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Python's cyclic garbage collector paused while `fn` runs: the plan's ~130,000 new
    objects (10,000 nodes) set off full collections that walk all of the report's objects
    too, about two thirds of the time (bench/launch_plan_bench.py). The plan makes no
    reference cycles; collection resumes as it was afterwards."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kw: _P.kwargs) -> _R:
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kw)
        finally:
            if was:
                gc.enable()

    return paused


@gc_paused
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
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    head_value: str | None = None,
) -> LaunchPlan:
    """The plan. `probe_argv`: per node, the probe's command (its Python and root).
    `head_value`: what {head} becomes instead of the head's address (Kubernetes:
    `$(LWS_LEADER_ADDRESS)`, which the kubelet expands)."""
    check_port(port)
    if policy not in ("equal", "weighted"):
        raise BadInput(f"{policy!r} is not a policy (equal, weighted)", field="--policy")
    check_identities(inv)
    is_probe = template is not None and template.name == "probe"
    if is_probe and command:
        raise BadInput("--template probe runs its own command: give no COMMAND", field="COMMAND")
    if not is_probe and not command and not (template and template.command):
        raise BadInput("give a COMMAND after -- (or a template with a command)", field="COMMAND")
    base = command or (template.command if template else [])
    check_placeholders(base, "COMMAND")
    if template is not None:
        for where, args in (
            ("head", template.head),
            ("workers", template.workers),
            ("tp", template.tp),
            ("pp", template.pp),
            ("ep", template.ep),
        ):
            check_placeholders(args, f"--template {where}")
        if template.head or template.workers:
            clash = sorted({a.split("=", 1)[0] for a in base} & set(DP_FLAGS))
            if clash and template.name in ("vllm", "sglang"):
                raise BadInput(
                    f"COMMAND sets {', '.join(clash)}, which --template {template.name} "
                    "sets from the plan: leave them out",
                    field="COMMAND",
                )
    par = parallel_from(base, tp, pp, ep)
    size = par.gpus_per_engine
    if template is not None and template.name == "sglang" and par.ep > 1 and par.tp % par.ep:
        raise BadInput(
            f"SGLang's expert parallel size must divide the tensor parallel size ({par.tp})",
            field="--ep",
        )

    # Engines per node.
    usable = [n for n in inv.nodes if n.usable]
    if not usable:
        raise BadInput("the report has no usable GPU: nothing to launch", field="--from")
    placed = {n.name: place(n, size) for n in usable}
    if template is not None and template.uniform:
        # The same engines per node everywhere: the count that runs the most engines (a node
        # with fewer sits out; among equals the larger count, on fewer nodes).
        have = [len(p.engines) for p in placed.values() if p.engines]
        k = max(set(have), key=lambda c: (c * sum(h >= c for h in have), c), default=0)
        for p in placed.values():
            cut = p.engines[k:] if len(p.engines) >= k else p.engines
            why = f"{template.name} runs the same number of engines ({k}) on every node" + (
                "" if len(p.engines) >= k else f"; this node holds {len(p.engines)}"
            )
            cut_gpus = [Leftover(index=g.index, uuid=g.uuid, reason=why) for e in cut for g in e]
            # a node that sits out says so first (its reason in excluded_nodes)
            p.leftover = cut_gpus + p.leftover if len(p.engines) < k else p.leftover + cut_gpus
            p.engines = p.engines[:k] if len(p.engines) >= k else []
    in_run = [n for n in usable if placed[n.name].engines]
    if not in_run:
        most, where = 0, usable[0].name
        for n in usable:
            ids = {g.index for g in n.usable}
            for grp in n.xgmi_groups or []:
                k = len(ids & set(grp))
                if k > most:
                    most, where = k, n.name
        raise BadInput(
            f"no engine of TP {par.tp} x PP {par.pp} = {size} GPUs fits on any node: an engine "
            "is on one node inside one fully connected XGMI group, and the most usable GPUs "
            f"in one group is {most} ({where}); first node's reason: "
            f"{placed[usable[0].name].leftover[0].reason}",
            field="--tp",
        )

    # The head and the order.
    if head is not None:
        h = next((n for n in in_run if n.name == head), None)
        if h is None:
            known = next((n for n in inv.nodes if n.name == head), None)
            if known is None:
                why = "no such node in the report"
            elif not known.usable:
                why = f"it is {known.status}: {known.reason}"
            else:
                why = "no engine fits on it: " + placed[head].leftover[0].reason
            raise BadInput(f"{head!r} cannot be the head: {why}", field="--head")
    else:
        most = max(len(placed[n.name].engines) for n in in_run)
        h = next(n for n in in_run if len(placed[n.name].engines) == most)
    if not h.address:
        raise BadInput(
            f"the report has no address for {h.name} (write it with tuner check/ready "
            "from an inventory)",
            field="--from",
        )
    nodes: list[NodeEntry] = [h] + [n for n in in_run if n.name != h.name]
    counts = [size * len(placed[n.name].engines) for n in nodes]
    world = sum(counts)
    dp_size = sum(len(placed[n.name].engines) for n in nodes)
    if par.ep_switch or (template is not None and template.name == "vllm" and par.ep > 1):
        # vLLM's expert parallelism spans TP x DP GPUs: the size is not chosen separately
        if par.ep > 1 and par.ep != par.tp * dp_size:
            raise BadInput(
                f"vLLM's expert parallel size is TP x DP = {par.tp} x {dp_size} = "
                f"{par.tp * dp_size} here; give --ep {par.tp * dp_size} (or leave --ep out and "
                "put --enable-expert-parallel in COMMAND)",
                field="--ep",
            )
        par.ep = par.tp * dp_size
    weights = shares(counts, policy)
    head_addr = head_value or h.address
    head_port = f"[{head_addr}]:{port}" if ":" in head_addr else f"{head_addr}:{port}"
    plans: list[NodePlan] = []
    start = 0
    dp_start = 0
    for rank, (n, count, share) in enumerate(zip(nodes, counts, weights, strict=True)):
        if not n.address:
            raise BadInput(f"the report has no address for {n.name}", field="--from")
        pl = placed[n.name]
        gpus = [g for e in pl.engines for g in e]
        by_uuid = all(g.hip_uuid for g in gpus)
        engines = [
            _new(
                EnginePlan,
                dp_rank=dp_start + k,
                local_rank=k,
                gpus=[g.index for g in e],
                mask=_mask(e, by_uuid),
            )
            for k, e in enumerate(pl.engines)
        ]
        values: dict[str, str] = {
            "node": n.name,
            "node_rank": str(rank),
            "num_nodes": str(len(nodes)),
            "world_size": str(world),
            "local_gpus": str(count),
            "start_rank": str(start),
            "head": head_addr,
            "port": str(port),
            "port_up": str(port + 1),
            "share": f"{share:.6f}",
            "mask": ",".join(e.mask for e in engines),
            "tp": str(par.tp),
            "pp": str(par.pp),
            "ep": str(par.ep),
            "dp_size": str(dp_size),
            "dp_local": str(len(engines)),
            "dp_start": str(dp_start),
            "head_port": head_port,
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
                                "gpus": [g.uuid for e in placed[m.name].engines for g in e],
                            }
                            for m, w in zip(nodes, weights, strict=True)
                        },
                        **(probe_options or {}),
                    },
                    separators=(",", ":"),
                )
        else:
            extra: list[str] = []
            if template is not None:
                extra = list(template.head if rank == 0 else template.workers)
                if "tp" not in par.from_command:
                    extra += template.tp
                if par.pp > 1 and "pp" not in par.from_command:
                    extra += template.pp
                if par.ep > 1 and "ep" not in par.from_command and not par.ep_switch:
                    extra += template.ep
            argv = [a.format(**values) for a in [*base, *extra]]
        plans.append(
            _new(
                NodePlan,
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
                    _new(GpuRef, index=g.index, uuid=g.uuid, hip_uuid=g.hip_uuid, bdf=g.bdf)
                    for g in gpus
                ],
                env=env,
                argv=argv,
                engines=engines,
                dp_start=dp_start,
                leftover=pl.leftover,
                installed=n.installed,
                remote_command="",
            )
        )
        start += count
        dp_start += len(engines)
    excluded = {n.name: f"{n.status}: {n.reason}" for n in inv.nodes if not n.usable}
    for n in usable:
        if not placed[n.name].engines:
            excluded[n.name] = "no engine here: " + placed[n.name].leftover[0].reason
    leftover = sum(len(p.leftover) for p in placed.values())
    warnings = []
    if leftover:
        warnings.append(
            f"{leftover} usable GPU(s) in no engine of {size} GPUs (see each node's leftover)"
        )
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
        tp=par.tp,
        pp=par.pp,
        ep=par.ep,
        data_parallel_size=dp_size,
        leftover_gpus=leftover,
        leftover={k: v.leftover for k, v in placed.items() if v.leftover},
        nodes=plans,
        excluded_nodes=excluded,
        warnings=warnings,
    )
