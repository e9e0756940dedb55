"""Run a launch plan: one fabric connection and one remote process group per node, live
output prefixed by node, a log per node; the first node that exits non-zero, Ctrl-C or
SIGTERM stops every node's process group (TERM, then KILL) so nothing is left running."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel

from agent.launch import ssh
from agent.launch.plan import LaunchPlan, NodePlan
from agent.view import n_of

PROBE_TAG = "tuner-probe"
HANDSHAKES = 32  # SSH handshakes in flight at once (AMD CVS shards hosts by 32)


class NodeRun(BaseModel):
    name: str
    rank: int
    status: Literal["ok", "failed", "stopped", "unreachable", "not started"] = "not started"
    exit_code: int | None = None
    pgid: int | None = None
    message: str = ""
    log: str = ""
    seconds: float | None = None


class LaunchReport(BaseModel):
    command: Literal["launch"] = "launch"
    head: str
    world_size: int
    num_nodes: int
    logs: str
    nodes: list[NodeRun]
    failed_node: str | None = None
    interrupted: bool = False
    probe: dict[str, Any] | None = None  # what the probe's head reported
    started_at: float = 0.0  # Unix time the launch began (before the first SSH handshake)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if all(n.status == "ok" for n in self.nodes) else 1


class _Stream:
    """Output of one node: lines prefixed with the node to the console, all to its log;
    picks out the process group line and the probe's result line."""

    def __init__(
        self, node: str, log: TextIO, echo: Any, lock: threading.Lock, on_exit: Any = None
    ) -> None:
        self.node, self.log, self.echo, self.lock = node, log, echo, lock
        self.on_exit = on_exit
        self.exit_code: int | None = None
        self.buf = ""
        self.pgid: int | None = None
        self.pgid_seen = threading.Event()
        self.probe: dict[str, Any] | None = None

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self._line(line)
        return len(s)

    def _line(self, line: str) -> None:
        if self.pgid is None and line.startswith(ssh.PGID_TAG + " "):
            tail = line.split(" ", 1)[1].strip()
            if tail.isdigit():
                self.pgid = int(tail)
                self.pgid_seen.set()
                return
        if self.exit_code is None and line.startswith(ssh.EXIT_TAG + " "):
            tail = line.split(" ", 1)[1].strip()
            if tail.isdigit():
                self.exit_code = int(tail)
                if self.on_exit is not None:
                    self.on_exit(self.exit_code)
                return
        quiet = False
        if line.startswith(PROBE_TAG + " "):
            try:
                self.probe = json.loads(line.split(" ", 1)[1])
                quiet = True  # the summary lines before it say the same for people
            except ValueError:
                pass
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()
            if self.echo is not None and not quiet:
                self.echo(f"[{self.node}] {line}")

    def flush(self) -> None:
        """invoke flushes after every chunk: a partial line stays buffered."""

    def finish(self) -> None:
        if self.buf:
            self._line(self.buf)
            self.buf = ""


class _Interrupted(Exception):
    pass


def execute(
    plan: LaunchPlan,
    targets: dict[str, ssh.Target],
    log_dir: Path,
    echo: Any,
    grace: float = 5.0,
) -> LaunchReport:
    log_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    report = LaunchReport(
        started_at=time.time(),
        head=plan.head,
        world_size=plan.world_size,
        num_nodes=plan.num_nodes,
        logs=str(log_dir),
        nodes=[
            NodeRun(name=n.name, rank=n.rank, log=str(log_dir / f"{n.name}.log"))
            for n in plan.nodes
        ],
    )
    runs = {r.name: r for r in report.nodes}
    lock = threading.Lock()
    stop = threading.Event()
    done = threading.Event()
    handshakes = threading.Semaphore(HANDSHAKES)
    conns: dict[str, Any] = {}
    streams: dict[str, _Stream] = {}
    first_failure: list[str] = []
    remaining = [len(plan.nodes)]

    finished: set[str] = set()

    def finish(name: str) -> None:
        with lock:
            if name in finished:
                return
            finished.add(name)
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    def exited(p: NodePlan, code: int) -> None:
        """The command's exit status line: the node is done even if a background child
        still holds its output open (the cleanup below stops that child)."""
        r = runs[p.name]
        r.exit_code = code
        if code == 0:
            r.status = "ok"
        elif stop.is_set():
            r.status, r.message = "stopped", f"stopped by tuner (exit {code})"
        else:
            r.status, r.message = "failed", f"exited {code}"
            fail(p.name)
        finish(p.name)

    def fail(name: str) -> None:
        with lock:
            if not first_failure:
                first_failure.append(name)
        stop.set()

    def one(p: NodePlan) -> None:
        r = runs[p.name]
        t = time.monotonic()
        log = open(r.log, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        st = _Stream(p.name, log, echo, lock, lambda code: exited(p, code))
        streams[p.name] = st
        try:
            if stop.is_set():
                r.message = "not started: the launch was stopped"
                return
            with handshakes:
                try:
                    c = ssh.connect(targets[p.name])
                    c.open()
                except Exception as e:  # paramiko/socket errors: unreachable, bad host key
                    r.status, r.message = "unreachable", f"{type(e).__name__}: {e}"
                    fail(p.name)
                    return
            conns[p.name] = c
            if stop.is_set():
                r.message = "not started: the launch was stopped"
                return
            res = c.run(
                p.remote_command,
                hide=True,
                warn=True,
                pty=False,
                in_stream=False,
                out_stream=st,
                err_stream=st,
            )
            st.finish()
            r.pgid = st.pgid
            if st.exit_code is not None:
                pass  # decided when the status line came
            elif res.exited == 0:
                r.status, r.exit_code = "ok", 0
            elif stop.is_set() and (not first_failure or first_failure[0] != p.name):
                r.status, r.message = "stopped", f"stopped by tuner (exit {res.exited})"
                r.exit_code = res.exited
            else:
                r.status, r.message = "failed", f"exited {res.exited}"
                r.exit_code = res.exited
                fail(p.name)
        except Exception as e:
            r.status, r.message = "failed", f"{type(e).__name__}: {e}"
            fail(p.name)
        finally:
            st.finish()
            r.pgid = r.pgid or st.pgid
            r.seconds = round(time.monotonic() - t, 3)
            log.close()
            finish(p.name)

    def on_term(signum: int, frame: Any) -> None:
        raise _Interrupted()

    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, on_term)
    pool = ThreadPoolExecutor(max_workers=max(1, len(plan.nodes)), thread_name_prefix="launch")
    try:
        for p in plan.nodes:
            pool.submit(one, p)
        try:
            while not done.wait(0.1):
                if stop.is_set():
                    break
        except (KeyboardInterrupt, _Interrupted):
            report.interrupted = True
            stop.set()
        # Always: a node's command may have exited and left background processes in its
        # group; after a launch nothing of it is left running on any node.
        _stop_all(plan, conns, streams, runs, grace)
        done.wait(grace + 10)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        for c in list(conns.values()):
            try:
                c.close()
            except Exception:
                pass
    report.failed_node = first_failure[0] if first_failure else None
    head = streams.get(plan.head)
    report.probe = head.probe if head else None
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def _stop_all(
    plan: LaunchPlan,
    conns: dict[str, Any],
    streams: dict[str, _Stream],
    runs: dict[str, NodeRun],
    grace: float,
) -> None:
    """Stop every node's process group, in parallel. A node whose command has not printed
    its process group yet is waited for briefly; a node never started needs nothing."""

    def stop_one(p: NodePlan) -> None:
        r = runs[p.name]
        st = streams.get(p.name)
        c = conns.get(p.name)
        if c is None or st is None:
            return
        if r.exit_code is None:
            st.pgid_seen.wait(3)
        if r.status == "not started" and r.exit_code is None:
            r.status = "stopped"
        if st.pgid is None:
            return
        try:
            c.run(
                ssh.stop_command(st.pgid), hide=True, warn=True, in_stream=False, timeout=grace + 10
            )
        except Exception as e:
            r.message = f"could not stop process group {st.pgid}: {type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=max(1, len(plan.nodes))) as ex:
        list(ex.map(stop_one, plan.nodes))


# ------------------------------------------------------------------------------ preparing


def _is_local(address: str) -> bool:
    import socket as so

    if address in ("127.0.0.1", "::1", "localhost") or address.startswith("127."):
        return True
    try:
        mine = {so.gethostbyname(so.gethostname()), *so.gethostbyname_ex(so.gethostname())[2]}
        return so.gethostbyname(address) in mine
    except OSError:
        return False


def check_ports_free(address: str, port: int) -> None:
    """When the head is this machine, P and P+1 must be free now (exit 2 otherwise). A remote
    head is checked when the head binds: it fails, and the launch stops every node."""
    import socket as so

    from agent.errors import BadInput

    if not _is_local(address):
        return
    for p in (port, port + 1):
        s = so.socket(so.AF_INET6 if ":" in address else so.AF_INET, so.SOCK_STREAM)
        try:
            s.bind((address if address != "localhost" else "127.0.0.1", p))
        except OSError as e:
            raise BadInput(
                f"port {p} is in use on the head {address} ({e.strerror}); P and P+1 must both "
                "be free",
                field="--port",
            ) from e
        finally:
            s.close()


def targets_for(plan: LaunchPlan, hosts: list[Any]) -> dict[str, ssh.Target]:
    """Every planned node must be in the inventory (SSH settings come from there); the
    known_hosts file it names must exist. Bad input otherwise, before any node is touched."""
    from agent.errors import BadInput

    by_name = {h.name: h for h in hosts}
    out = {}
    for n in plan.nodes:
        h = by_name.get(n.name)
        if h is None:
            raise BadInput(
                f"node {n.name} of the report is not in the inventory", field="--inventory"
            )
        t = ssh.target_for(h)
        if t.strict and t.known_hosts and not Path(t.known_hosts).expanduser().is_file():
            raise BadInput(
                f"host {n.name}: known_hosts file {t.known_hosts} not found (host keys are "
                "verified)",
                field="--inventory",
            )
        out[n.name] = t
    return out


def log_dir() -> Path:
    from agent.paths import state_dir

    return state_dir() / "launch" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def echo_to(console: Any) -> Any:
    lock = threading.Lock()

    def echo(line: str) -> None:
        with lock:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    return echo


def prepare(
    report_path: str,
    command: list[str],
    *,
    head: str | None,
    port: int,
    policy: str,
    template: str | None,
    inventory: str | None,
    probe_deadline: float,
    recheck_deadline: float | None = None,
    progress: Any = None,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    backend: str = "ssh",
    gate_policy: str | None = None,
    k8s_form: str = "lws",
) -> tuple[LaunchPlan, dict[str, ssh.Target]]:
    """Everything validated before a node is touched: report, gate, template, placeholders,
    head, port, inventory and SSH settings. With `recheck_deadline`, the GPU gate runs again
    on the report's usable nodes first (read-only) and the plan uses what is still usable."""
    from agent.errors import BadInput, Failed
    from agent.export import load_report
    from agent.inventory import default_inventory, load_inventory
    from agent.launch.backends import K8S_FORMS, head_value
    from agent.launch.plan import check_identities, check_port, load_template, make_plan

    check_port(port)
    if backend not in ("ssh", "slurm", "k8s"):
        raise BadInput(f"{backend!r} is not a backend (ssh, slurm, k8s)", field="--backend")
    if k8s_form not in K8S_FORMS:
        raise BadInput(f"{k8s_form!r} is not a form (lws, job)", field="--k8s-form")
    if k8s_form != "lws" and backend != "k8s":
        raise BadInput("only with --backend k8s", field="--k8s-form")
    tpl = load_template(template)
    if backend == "k8s" and tpl is not None and tpl.name == "probe":
        raise BadInput(
            "the probe runs with each node's provisioned Python; in Kubernetes give your "
            "image's command (--template vllm or sglang, or COMMAND)",
            field="--template",
        )
    inv = load_report(report_path)
    check_identities(inv)
    if not inv.gate.passed:
        raise Failed(
            "the report's gate failed (" + "; ".join(inv.gate.reasons) + "): run tuner check "
            "or tuner ready again"
        )
    if not any(n.usable for n in inv.nodes):
        raise BadInput("the report has no usable GPU: nothing to launch", field="--from")
    # SSH addresses and host keys come from the inventory: one the operator names (-i,
    # TUNER_INVENTORY, the running lab fleet), never only the one a report names (a report
    # is a file anyone can edit: it could point the launch at other hosts and known_hosts).
    try:
        inv_path = default_inventory(inventory)
    except BadInput as e:
        if inv.inventory:
            raise BadInput(
                f"the report was written from the inventory {inv.inventory}: pass -i "
                f"{inv.inventory} to launch with it",
                field="--inventory",
            ) from e
        raise
    if (
        inventory is None
        and inv.inventory
        and Path(inv.inventory).expanduser().resolve() != inv_path.expanduser().resolve()
    ):
        raise BadInput(
            f"the report was written from the inventory {inv.inventory} but the inventory here "
            f"is {inv_path}: pass -i to say which one to launch with",
            field="--inventory",
        )
    usable_names = [n.name for n in inv.nodes if n.usable]
    hosts = load_inventory(inv_path, ",".join(usable_names)).hosts
    known = {h.name for h in hosts}
    missing = [n for n in usable_names if n not in known]
    if missing:
        raise BadInput(
            f"nodes of the report are not in the inventory {inv_path}: {', '.join(missing)}",
            field="--inventory",
        )
    from agent.inventory import node_python
    from agent.loaders import check_identities as same_as_inventory

    same_as_inventory(inv, hosts, report_path)  # addresses are the inventory's, not edited
    by_name = {h.name: h for h in hosts}
    if recheck_deadline is not None:
        pol = recheck_policy(inv.gate.policy, gate_policy)
        inv = _recheck(inv, hosts, inv_path, recheck_deadline, progress, pol)
    if backend == "slurm":
        _leave_out(inv, slurm_unavailable([n.name for n in inv.nodes if n.usable]))
    probe_argv = {n: ssh.probe_argv(node_python(by_name[n]), by_name[n].root) for n in usable_names}
    plan = make_plan(
        inv,
        report_path,
        command,
        head=head,
        port=port,
        policy=policy,  # type: ignore[arg-type]
        template=tpl,
        probe_argv=probe_argv,
        probe_options={"deadline": probe_deadline, "items_per_gpu": 4},
        tp=tp,
        pp=pp,
        ep=ep,
        head_value=head_value(k8s_form) if backend == "k8s" else None,
    )
    if backend != "ssh":  # the scheduler reaches the nodes, not tuner's SSH
        return plan, {}
    targets = targets_for(plan, hosts)
    for n in plan.nodes:
        n.remote_command = ssh.remote_command(n)
    return plan, targets


def _slurm_tool(name: str) -> str:
    import shutil

    from agent.errors import BadInput

    path = shutil.which(name)
    if path is None:
        raise BadInput(
            f"{name} is not on PATH: run this on a Slurm login node, or print the script with "
            "--dry-run",
            field="--backend",
        )
    return path


SLURM_UNAVAILABLE = ("drain", "down", "fail", "maint", "reboot", "power", "unk", "inval", "futr")


def slurm_unavailable(names: list[str]) -> dict[str, str]:
    """Nodes Slurm will not run on now (drained, down, failing, ...), with their state and
    reason, from `sinfo`; nothing when sinfo is not here (--dry-run away from the cluster)."""
    import shutil
    import subprocess

    sinfo = shutil.which("sinfo")
    if sinfo is None or not names:
        return {}
    r = subprocess.run(
        [sinfo, "-h", "-N", "-n", ",".join(names), "-o", "%N|%T|%E"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        parts = line.split("|", 2)
        if len(parts) == 3 and any(w in parts[1].lower() for w in SLURM_UNAVAILABLE):
            out[parts[0]] = f"slurm: {parts[1]} ({parts[2]})"
    return out


def _leave_out(inv: Any, why: dict[str, str]) -> None:
    for n in inv.nodes:
        if n.name in why and n.usable:
            n.excluded, n.usable = n.excluded + n.usable, []
            n.status, n.reason = "excluded", why[n.name]


def submit_slurm(script: str, output: Path) -> str:
    """sbatch the script (on stdin), its output to `output` (%j: the job id); the job id."""
    import subprocess

    from agent.errors import Failed

    sbatch = _slurm_tool("sbatch")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(
            [sbatch, "--parsable", f"--output={output}"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"sbatch failed: {e}") from e
    if r.returncode != 0:
        raise Failed(f"sbatch refused the job: {r.stderr.strip() or r.stdout.strip()}")
    job = r.stdout.strip().split(";")[0]
    if not job.isdigit():
        raise Failed(f"sbatch answered {r.stdout.strip()!r}, not a job id")
    return job


SLURM_DONE = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}


def slurm_job_state(job: str) -> dict[str, str]:
    """JobState, ExitCode, NodeList... of a job, from `scontrol show job -o` (kept by slurmctld
    for MinJobAge after the end; no accounting database needed)."""
    import subprocess

    r = subprocess.run(
        [_slurm_tool("scontrol"), "show", "job", "-o", job],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out: dict[str, str] = {}
    for word in r.stdout.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out.setdefault(k, v)
    return out


def probe_result(output: Path) -> dict[str, Any] | None:
    """The probe head's `tuner-probe {json}` line in a job's output, if any."""
    try:
        text = output.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        if line.startswith(PROBE_TAG + " "):
            try:
                doc = json.loads(line.split(" ", 1)[1])
                return doc if isinstance(doc, dict) else None
            except ValueError:
                return None
    return None


def follow_slurm(job: str, poll: float = 1.0, timeout: float | None = None) -> dict[str, Any]:
    """Wait for the job to end; Ctrl-C or SIGTERM cancels it (scancel). Its final state."""
    import subprocess

    t0 = time.monotonic()
    state: dict[str, str] = {}
    try:
        while True:
            state = slurm_job_state(job)
            st = state.get("JobState", "")
            if st in SLURM_DONE or (not state and time.monotonic() - t0 > 10):
                break
            if timeout is not None and time.monotonic() - t0 > timeout:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        subprocess.run([_slurm_tool("scancel"), job], capture_output=True, timeout=30)
        return {"job_id": job, "state": "CANCELLED", "interrupted": True}
    code = state.get("ExitCode", "")
    return {
        "job_id": job,
        "state": state.get("JobState", "UNKNOWN"),
        "exit_code": code,
        "nodes": state.get("NodeList", ""),
        "seconds": round(time.monotonic() - t0, 3),
    }


def recheck_policy(named: str | None, given: str | None) -> Any:
    """The health policy the recheck uses. `--gate-policy FILE` when given; else the policy
    the report names, but only when it is one tuner ships (checks/): a report is a file anyone
    can edit, and one naming a lax policy of its own must not relax the recheck (exit 2 says
    to pass the policy explicitly)."""
    from agent.errors import BadInput
    from agent.gpu.policy import load_policy
    from agent.paths import share_dir

    if given is not None:
        return load_policy(given)
    if not named:
        return load_policy(None)
    shipped = share_dir("checks").resolve()
    where = Path(named).expanduser().resolve()
    if where.parent != shipped:
        raise BadInput(
            f"the report was gated with the policy {named}, which is not one of tuner's "
            f"({shipped}); pass --gate-policy {named} to recheck with it",
            field="--gate-policy",
        )
    return load_policy(where)


def _recheck(
    inv: Any, hosts: list[Any], path: Path, deadline: float, progress: Any, pol: Any
) -> Any:
    """The gate again, on the report's usable nodes with the policy `recheck_policy` chose and
    the report's options. Refuses (exit 1) when it fails; keeps only GPUs usable both in the
    report and now."""
    from agent.errors import Failed
    from agent.gpu.gate import GateOptions, attach_addresses
    from agent.gpu.run import fleet_facts, gate
    from agent.inventory import Inventory

    sub = Inventory(path=str(path.resolve()), limit=None, hosts=hosts)
    facts, failures, _ = fleet_facts(sub, deadline, None, progress)
    fresh = gate(facts, failures, [h.name for h in hosts], pol, inv.gate.options)
    attach_addresses(fresh, hosts)
    if not fresh.gate.passed:
        raise Failed("the GPU gate fails now: " + "; ".join(fresh.gate.reasons))
    now = {(n.name, g.uuid) for n in fresh.nodes for g in n.usable}
    lost = []
    for n in inv.nodes:
        keep = [g for g in n.usable if (n.name, g.uuid) in now]
        lost += [f"{n.name} GPU {g.index}" for g in n.usable if (n.name, g.uuid) not in now]
        if len(keep) != len(n.usable):
            n.excluded = n.excluded + [g for g in n.usable if (n.name, g.uuid) not in now]
            n.usable = keep
            n.status = "degraded" if keep else "failed"
            n.reason = "no longer usable at launch: " + ", ".join(lost)
    o: GateOptions = inv.gate.options
    usable = sum(len(n.usable) for n in inv.nodes)
    small = [
        n.name
        for n in inv.nodes
        if n.usable and o.min_gpus_per_node and len(n.usable) < o.min_gpus_per_node
    ]
    if lost and ((o.min_gpus is not None and usable < o.min_gpus) or small or usable == 0):
        raise Failed(
            f"the usable set shrank ({', '.join(lost)}) below the report's gate options "
            f"(min_gpus={o.min_gpus}, min_gpus_per_node={o.min_gpus_per_node})"
        )
    inv.usable_gpus = usable
    return inv


def print_plan(plan: LaunchPlan, console: Any) -> None:
    console.print(
        f"launch plan: {n_of(plan.num_nodes, 'node')}, world size {plan.world_size}, head "
        f"{plan.head} ({plan.head_address}), ports {plan.port}/{plan.port_up}, policy "
        f"{plan.policy}, template {plan.template or '-'}",
        markup=False,
    )
    console.print(
        f"engines: {plan.data_parallel_size} of TP {plan.tp} x PP {plan.pp} GPUs"
        f"{f', expert parallel {plan.ep}' if plan.ep > 1 else ''}; "
        f"{n_of(plan.leftover_gpus, 'usable GPU')} left over",
        markup=False,
    )
    for n in plan.nodes:
        console.print(
            f"\n[{n.name}] {n.role} rank {n.rank}, start rank {n.start_rank}, "
            f"{n_of(n.local_gpus, 'GPU')}, share {n.share}",
            markup=False,
        )
        for e in n.engines:
            console.print(
                f"  engine {e.local_rank} (data-parallel rank {e.dp_rank}): GPUs "
                f"{','.join(str(i) for i in e.gpus)}  mask {e.mask}",
                markup=False,
                soft_wrap=True,
            )
        for lo in n.leftover:
            console.print(f"  left over: GPU {lo.index} ({lo.reason})", markup=False)
        for k, v in n.env.items():
            if k != "TUNER_PROBE_EXPECTED":
                console.print(f"  {k}={v}", markup=False, soft_wrap=True)
        console.print(
            f"  ssh {n.user + '@' if n.user else ''}{n.address}"
            f"{':' + str(n.ssh_port) if n.ssh_port else ''}:",
            markup=False,
        )
        console.print(f"  {ssh.short_probe(n.remote_command)}", markup=False, soft_wrap=True)
    for name, why in plan.excluded_nodes.items():
        console.print(f"not in the run: {name} ({why})", markup=False)
    console.print("dry run: no node was touched", markup=False)


def print_report(r: LaunchReport, console: Any) -> None:
    for n in r.nodes:
        console.print(
            f"{n.name:<12} {n.status:<12} exit {n.exit_code if n.exit_code is not None else '-'}"
            f"  {n.message}  log {n.log}",
            markup=False,
        )
    if r.interrupted:
        console.print("interrupted: every node's process group was stopped", markup=False)
    elif r.failed_node:
        why = next(n.message for n in r.nodes if n.name == r.failed_node)
        console.print(
            f"FAILED: {r.failed_node} ({why}); every node's process group was stopped",
            markup=False,
        )
    else:
        console.print(
            f"all {n_of(r.num_nodes, 'node')} finished (exit 0) in {r.seconds} s", markup=False
        )
