"""The probe workload: a dress rehearsal of the MLPerf multi-node topology (seed 003) with
pyzmq. Runs on every node of a launch (`tuner launch --template probe`).

- The head (TUNER_NODE_RANK 0) binds a ROUTER on P (work and acknowledgements downstream)
  and a ROUTER on P+1 (registration and results upstream).
- Every node (the head too: its local SUT) starts one engine per GPU it can see through
  ROCR_VISIBLE_DEVICES: two DEALER sockets with the identity `<node>/<GPU UUID>`, connected
  to P and P+1. An engine says hello on P, registers on P+1, waits for the ack on P.
- When exactly the expected engines (the inventory's usable GPUs, TUNER_PROBE_EXPECTED) are
  registered, the head sends work items per node under the policy's shares, round-robin over
  the node's engines; engines answer on P+1; the head measures round-trip times, then sends
  stop. An engine that is not expected (an excluded GPU), one missing at the deadline, or a
  lost answer fails the probe.
- The head prints one line `tuner-probe {json}` with per-node counts and RTTs, exit 0 or 1.

GPUs are seen the way the runtime sees them: amdsmi lists the node's GPUs, ordered by HIP
index; each ROCR_VISIBLE_DEVICES entry (`GPU-<hex>` or an index into that order) selects one.

Standalone: the standard library, pyzmq and amdsmi only (what `tuner provision` puts in the
node's /opt/tuner/venv), never tuner's own package, which nodes do not have. `tuner launch`
ships this file's source with the launch (agent/launch/ssh.py: `probe_argv`), so the probe on
a node is always the controller's version.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
from typing import Any

TAG = "tuner-probe"


def node_gpus(root: str) -> list[dict[str, Any]]:
    """The node's GPUs in runtime (HIP) order: index, hip_uuid, uuid."""
    if root != "/" and "ROCM_PATH" not in os.environ:
        os.environ["ROCM_PATH"] = os.path.join(root, "opt/rocm")
    try:
        import amdsmi
    except Exception as e:  # ImportError, or the wrapper's KeyError without libamd_smi.so
        raise SystemExit(
            f"{TAG}: cannot load amdsmi in {sys.executable} ({type(e).__name__}: {e}): run "
            "tuner provision on this node"
        ) from e
    amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    try:
        out = []
        for i, h in enumerate(amdsmi.amdsmi_get_processor_handles()):
            enum = amdsmi.amdsmi_get_gpu_enumeration_info(h)
            hip = enum.get("hip_id")
            out.append(
                {
                    "hip_id": hip if isinstance(hip, int) else i,
                    "hip_uuid": enum.get("hip_uuid"),
                    "uuid": amdsmi.amdsmi_get_gpu_device_uuid(h),
                }
            )
    finally:
        amdsmi.amdsmi_shut_down()
    return sorted(out, key=lambda g: g["hip_id"])


def through_mask(gpus: list[dict[str, Any]], mask: str | None) -> list[dict[str, Any]]:
    """What ROCR_VISIBLE_DEVICES leaves visible, in mask order. Unset: every GPU."""
    if mask is None:
        return gpus
    picked: list[dict[str, Any]] = []
    for entry in (e.strip() for e in mask.split(",")):
        if not entry:
            continue
        if entry.startswith("GPU-"):
            found = [g for g in gpus if g["hip_uuid"] == entry]
        elif entry.isdigit() and int(entry) < len(gpus):
            found = [gpus[int(entry)]]
        else:
            found = []
        if not found:
            raise SystemExit(f"{TAG}: ROCR_VISIBLE_DEVICES entry {entry!r} matches no GPU")
        if found[0] in picked:
            raise SystemExit(f"{TAG}: ROCR_VISIBLE_DEVICES names {entry!r} twice")
        picked.append(found[0])
    return picked


def split_items(total: int, weights: list[float]) -> list[int]:
    """`total` work items split by weight (largest remainder: the counts sum to total)."""
    raw = [total * w for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


HALT = threading.Event()  # set on the head when the coordinator is done (engines end)


def engine(
    ctx: Any, ident: str, head: str, port: int, deadline: float, result: dict[str, int]
) -> None:
    import zmq

    up = ctx.socket(zmq.DEALER)
    down = ctx.socket(zmq.DEALER)
    for s, p in ((up, port + 1), (down, port)):
        s.setsockopt(zmq.IDENTITY, ident.encode())
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"tcp://{head}:{p}")
    try:
        down.send(b"hello")
        up.send_multipart([b"register", json.dumps({"pid": os.getpid()}).encode()])
        answered = 0
        while time.monotonic() < deadline and not HALT.is_set():
            if not down.poll(100):
                continue
            msg = down.recv_multipart()
            if msg[0] == b"ack":
                print(f"engine {ident} registered", flush=True)
            elif msg[0] == b"work":
                up.send_multipart([b"result", msg[1], msg[2]])
                answered += 1
            elif msg[0] == b"stop":
                result[ident] = answered
                return
    finally:
        up.close(0)
        down.close(0)


def run_engines(
    ctx: Any, node: str, visible: list[dict[str, Any]], head: str, port: int, deadline: float
) -> tuple[list[threading.Thread], dict[str, int]]:
    done: dict[str, int] = {}
    threads = [
        threading.Thread(
            target=engine,
            args=(ctx, f"{node}/{g['uuid']}", head, port, deadline, done),
            daemon=True,
        )
        for g in visible
    ]
    for t in threads:
        t.start()
    return threads, done


def coordinate(ctx: Any, port: int, expected: dict[str, Any], deadline: float) -> dict[str, Any]:
    """The head: registration, the exact-set check, work under the shares, RTTs."""
    import zmq

    t_start = time.time()
    down = ctx.socket(zmq.ROUTER)
    down.setsockopt(zmq.ROUTER_MANDATORY, 1)
    up = ctx.socket(zmq.ROUTER)
    for s in (down, up):
        s.setsockopt(zmq.LINGER, 0)
    try:
        down.bind(f"tcp://*:{port}")
        up.bind(f"tcp://*:{port + 1}")
    except zmq.ZMQError as e:
        down.close(0)
        up.close(0)
        return {"ok": False, "reasons": [f"the head cannot bind P/P+1 ({port}/{port + 1}): {e}"]}
    nodes: dict[str, Any] = expected["nodes"]
    want = {f"{n}/{u}" for n, v in nodes.items() for u in v["gpus"]}
    hello: set[str] = set()
    registered: set[str] = set()
    acked: set[str] = set()
    unexpected: set[str] = set()
    poller = zmq.Poller()
    poller.register(down, zmq.POLLIN)
    poller.register(up, zmq.POLLIN)
    sent: dict[int, tuple[str, int]] = {}
    rtts: dict[str, list[float]] = {n: [] for n in nodes}
    items: dict[str, int] = {}
    phase = "register"
    all_registered_at: float | None = None
    reasons: list[str] = []

    def pump() -> None:
        for s, events in dict(poller.poll(50)).items():
            if not events:
                continue
            while True:
                try:
                    frames = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                ident = frames[0].decode(errors="replace")
                kind = frames[1] if len(frames) > 1 else b""
                if s is down and kind == b"hello":
                    hello.add(ident)
                elif s is up and kind == b"register":
                    registered.add(ident)
                    if ident not in want:
                        unexpected.add(ident)
                elif s is up and kind == b"result":
                    seq = int(frames[2])
                    t_sent = int(frames[3])
                    if seq in sent:
                        node, _ = sent.pop(seq)
                        rtts[node].append((time.monotonic_ns() - t_sent) / 1e6)

    try:
        while time.monotonic() < deadline:
            pump()
            for ident in (registered & hello) - acked:
                try:
                    down.send_multipart([ident.encode(), b"ack"])
                    acked.add(ident)
                except zmq.ZMQError:
                    pass  # the route on P is not up yet: next round
            if unexpected:
                reasons.append(
                    "engines not in the usable set registered: " + ", ".join(sorted(unexpected))
                )
                break
            if phase == "register" and acked >= want:
                all_registered_at = time.time()
                phase = "work"
                names = list(nodes)
                total = int(expected.get("items_per_gpu", 4)) * len(want)
                counts = split_items(total, [float(nodes[n]["share"]) for n in names])
                seq = 0
                for n, count in zip(names, counts, strict=True):
                    items[n] = count
                    engines = [f"{n}/{u}" for u in nodes[n]["gpus"]]
                    for k in range(count):
                        ident = engines[k % len(engines)]
                        seq += 1
                        sent[seq] = (n, k)
                        down.send_multipart(
                            [
                                ident.encode(),
                                b"work",
                                str(seq).encode(),
                                str(time.monotonic_ns()).encode(),
                            ]
                        )
            if phase == "work" and not sent:
                break
        else:
            missing = sorted(want - acked)
            if missing:
                reasons.append(
                    f"{len(missing)} engines missing at the deadline: " + ", ".join(missing[:20])
                )
            elif sent:
                reasons.append(f"{len(sent)} work items unanswered at the deadline")
    finally:
        for ident in acked:
            try:
                down.send_multipart([ident.encode(), b"stop"])
            except zmq.ZMQError:
                pass
        time.sleep(0.05)
        down.close(0)
        up.close(0)

    per_node = {}
    for n, v in nodes.items():
        r = sorted(rtts[n])
        per_node[n] = {
            "expected": len(v["gpus"]),
            "registered": len([i for i in acked if i.split("/", 1)[0] == n]),
            "items": items.get(n, 0),
            "answered": len(r),
            "rtt_ms": {
                "min": round(r[0], 3),
                "median": round(statistics.median(r), 3),
                "max": round(r[-1], 3),
            }
            if r
            else None,
        }
    return {
        "ok": not reasons and acked == want,
        "reasons": reasons,
        "engines": sorted(acked),
        "expected_engines": len(want),
        "started_at": t_start,
        "all_registered_at": all_registered_at,
        "register_seconds": round(all_registered_at - t_start, 3) if all_registered_at else None,
        "nodes": per_node,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tuner_probe.py")
    ap.add_argument("--root", default="/", help="the node's / (a simulated node's tree)")
    ap.add_argument("--deadline", type=float, default=None, help="seconds (default: from env)")
    a = ap.parse_args(argv)
    import zmq

    env = os.environ
    node = env.get("TUNER_NODE") or socket.gethostname()
    head = env["TUNER_HEAD_ADDR"]
    port = int(env["TUNER_PORT"])
    rank = int(env.get("TUNER_NODE_RANK", "1"))
    expected = json.loads(env["TUNER_PROBE_EXPECTED"]) if rank == 0 else {}
    seconds = a.deadline or float(expected.get("deadline", env.get("TUNER_PROBE_DEADLINE", 60)))
    t0 = time.monotonic()
    visible = through_mask(node_gpus(a.root), env.get("ROCR_VISIBLE_DEVICES"))
    print(
        f"{len(visible)} engines on {node} (ROCR_VISIBLE_DEVICES="
        f"{env.get('ROCR_VISIBLE_DEVICES', '')})",
        flush=True,
    )
    ctx = zmq.Context()
    try:
        if rank == 0:
            out: dict[str, Any] = {}
            coord = threading.Thread(
                target=lambda: out.update(coordinate(ctx, port, expected, t0 + seconds))
            )
            coord.start()
            threads, done = run_engines(ctx, node, visible, head, port, t0 + seconds + 5)
            coord.join()
            HALT.set()
            for t in threads:
                t.join(2)
            for n, v in out.get("nodes", {}).items():
                rtt = v["rtt_ms"] or {}
                print(
                    f"{n}: {v['registered']}/{v['expected']} engines, {v['answered']}/"
                    f"{v['items']} items, rtt ms min {rtt.get('min')} median "
                    f"{rtt.get('median')} max {rtt.get('max')}",
                    flush=True,
                )
            for r in out.get("reasons", []):
                print(f"FAILED: {r}", flush=True)
            print(f"{TAG} {json.dumps(out, separators=(',', ':'))}", flush=True)
            return 0 if out.get("ok") else 1
        threads, done = run_engines(ctx, node, visible, head, port, t0 + seconds + 10)
        for t in threads:
            t.join()
        missing = len(visible) - len(done)
        if missing:
            print(f"{missing} engines got no stop from the head before the deadline", flush=True)
            return 1
        print(f"{len(done)} engines done: {sum(done.values())} items answered", flush=True)
        return 0
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
