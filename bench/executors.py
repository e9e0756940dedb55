"""Benchmark: N small simulated nodes verified through two execution nodes (agent/executors.py),
and the same fleet verified by the controller alone, side by side in one run.

    .venv/bin/python bench/executors.py --nodes 64 256 1000 [--executors 2] [--reps 1]
        [--modes alone,executors] [--out bench/results/executors-scale.json]

Root only (the executors are users of their own with an sshd each on loopback:
agent/sim/execlab.py). Per size and mode it records: wall time; the controller's CPU (user +
system of `tuner` and every process it waited for: with executors, the ssh clients that
carry the streams; alone, Ansible and its ssh) and its largest resident set; the most
sockets the controller's processes held at once (sampled every 0.2 s from /proc/*/fd);
with executors, each executor's CPU and largest resident set (a wrapper around
`ansible-runner worker` records getrusage of everything it waited for). The machine's load
average is recorded next to the figures (a shared machine). JSON on stdout; figures in
docs/performance.md "Execution nodes" and docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.sim import execlab  # noqa: E402

PROFILE = str(REPO / "tests/data/profiles/executors-os.yml")
TUNER = [sys.executable, "-m", "agent.cli"]
USAGE = "tuner-bench-rusage.jsonl"

WRAPPER = """#!{python}
# bench/executors.py: ansible-runner worker, then what it and its children used.
import json, os, resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call([os.path.join(os.path.dirname(sys.argv[0]), "ansible-runner"), *sys.argv[1:]])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(os.path.expanduser("~/{usage}"), "a") as f:
    f.write(json.dumps({{"cpu": u.ru_utime + u.ru_stime, "maxrss_kb": u.ru_maxrss,
                        "seconds": time.monotonic() - t}}) + "\\n")
sys.exit(rc)
"""


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def sockets(pids: list[int]) -> int:
    n = 0
    for p in pids:
        try:
            for fd in os.scandir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(fd.path).startswith("socket:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            pass
    return n


def rss_mb(pids: list[int]) -> float:
    kb = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return kb / 1024


def uid_pids(uids: set[int]) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid in uids:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def measure(args: list[str], env: dict[str, str], uids: set[int]) -> dict[str, Any]:
    t = time.monotonic()
    p = subprocess.Popen(
        [*TUNER, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    peak = [0]
    rss = [0.0, 0.0]  # the most the controller's / the executors' processes held at once
    out: list[bytes] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            mine = descendants(p.pid)
            peak[0] = max(peak[0], sockets(mine))
            rss[0] = max(rss[0], rss_mb(mine))
            if uids:
                rss[1] = max(rss[1], rss_mb(uid_pids(uids)))

    def read() -> None:
        assert p.stdout is not None
        out.append(p.stdout.read())

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, read)]
    for th in threads:
        th.start()
    # this run's own usage: tuner and every process it waited for (ru_maxrss: the largest)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    for th in threads:
        th.join()
    wall = time.monotonic() - t
    doc = json.loads(out[0])
    return {
        "rc": p.returncode,
        "seconds": round(wall, 2),
        "controller_cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "controller_maxrss_mb": round(ru.ru_maxrss / 1024, 1),
        "controller_sockets_peak": peak[0],
        "controller_rss_sum_peak_mb": round(rss[0], 1),
        "executors_rss_sum_peak_mb": round(rss[1], 1),
        "hosts": doc["summary"]["hosts"],
        "by_status": doc["summary"]["by_status"],
    }


def executor_usage(lab: execlab.ExecLab) -> list[dict[str, Any]]:
    out = []
    for name in lab.names:
        f = Path(f"/home/{lab.users[name]}") / USAGE
        rows = [json.loads(x) for x in f.read_text().splitlines()] if f.is_file() else []
        f.unlink(missing_ok=True)
        out.append(
            {
                "executor": name,
                "cpu_s": round(sum(r["cpu"] for r in rows), 2),
                "maxrss_mb": round(max((r["maxrss_kb"] for r in rows), default=0) / 1024, 1),
                "workers": len(rows),
            }
        )
    return out


def one_size(
    n: int, n_exec: int, reps: int, work: Path, modes: tuple[str, ...] = ("alone", "executors")
) -> dict[str, Any]:
    state = work / f"state-{n}"
    env = dict(os.environ, TUNER_STATE_DIR=str(state))
    env.pop("TUNER_INVENTORY", None)
    env.pop("TUNER_EXECUTORS", None)
    t = time.monotonic()
    up = ["sim", "up", "--nodes", str(n), "--cores-per-socket", "2", "--runtime", "controller"]
    subprocess.run(
        [*TUNER, *up, "--bmc-vendor", "none", "--json"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    sim_up = time.monotonic() - t
    runner = execlab.executor_runner()
    wrapper = Path(runner).parent / "tuner-bench-worker"
    wrapper.write_text(WRAPPER.format(python=Path(runner).parent / "python", usage=USAGE))
    wrapper.chmod(0o755)
    lab = execlab.start(work / f"exec-{n}", [f"tuner-bench{i}" for i in range(1, n_exec + 1)])
    sock = work / f"agent-{n}.sock"
    out = subprocess.run(
        ["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True
    ).stdout
    agent_pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    env["SSH_AUTH_SOCK"] = str(sock)
    subprocess.run(["ssh-add", "-q", str(state / "sim/ssh/id_ed25519")], env=env, check=True)
    sharded_env = dict(
        env,
        TUNER_EXECUTORS=",".join(lab.names),
        TUNER_EXECUTOR_SSH_CONFIG=str(lab.ssh_config),
        TUNER_EXECUTOR_RUNNER=str(wrapper),
    )
    rows: list[dict[str, Any]] = []
    try:
        executor_usage(lab)
        for rep in range(reps):
            for mode, e in (("alone", env), ("executors", sharded_env)):
                if mode not in modes:
                    continue
                uids = {lab.uid(x) for x in lab.names} if mode == "executors" else set()
                r = measure(["verify", "-p", PROFILE, "--json"], e, uids)
                r.update(mode=mode, rep=rep, load_avg=os.getloadavg())
                if mode == "executors":
                    r["executors"] = executor_usage(lab)
                rows.append(r)
                print(json.dumps({"nodes": n, **r}), file=sys.stderr)
    finally:
        lab.stop()
        os.kill(agent_pid, signal.SIGTERM)
        subprocess.run([*TUNER, "sim", "down"], env=env, cwd=REPO, capture_output=True)
    return {"nodes": n, "sim_up_s": round(sim_up, 1), "runs": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--executors", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--modes", default="alone,executors", help="alone, executors or both")
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args()
    modes = tuple(a.modes.split(","))
    if os.geteuid() != 0:
        raise SystemExit("root only: the executors are users of their own")
    with tempfile.TemporaryDirectory(prefix="tuner-bench-exec-") as d:
        res = []
        for n in a.nodes:  # each size written as soon as it is measured
            res.append(one_size(n, a.executors, a.reps, Path(d), modes))
            doc = json.dumps({"ncpu": os.cpu_count(), "sizes": res}, indent=1)
            if a.out:
                Path(a.out).write_text(doc + "\n")
    print(doc)


if __name__ == "__main__":
    main()
