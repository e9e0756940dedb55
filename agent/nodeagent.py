"""The node agent: keeps a node's runtime tuning across boots and hotplug (docs/agent.md).

Runs on the node, under the node's own Python (`/opt/tuner/venv`, built by `tuner
provision`), so it uses the standard library, pyudev and prometheus_client only -- never
tuner's controller modules (typer, ansible, pydantic). `tuner agent install` ships this file
and agent/knobs.py to `/opt/tuner/lib/tuner_agent/` and a systemd unit that runs

    /opt/tuner/venv/bin/python -m tuner_agent.nodeagent run

What it does, all through the same knob code as `tuner apply` (agent/knobs.py `apply`):

* at start (boot), re-applies the settings `tuner apply` recorded in
  `/var/lib/tuner/applied.json` (runtime values only: the persistence drop-ins are apply's);
* then watches udev events (an `EventSource`: pyudev's netlink monitor on a real node, a
  JSON-lines file in the simulator) and re-applies the knobs an event can undo: a CPU coming
  online (governor, idle states), a cpufreq driver loading (governor); a GPU PCI add/remove
  marks the node's GPU facts stale;
* after every run writes its result to `/var/lib/tuner/agent.json` (verify shows it) and a
  node_exporter textfile (`tuner.prom`) with the tuning conformance and the last gate state.

`select_kinds` (event -> knob kinds) is pure; everything else works under a host root.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent import knobs
else:  # the same file runs in three packages: agent/, tuner_agent/ (node), module_utils

    def _load_knobs() -> ModuleType:
        pkg = __package__ or ""
        for name in (f"{pkg}.knobs", f"{pkg}.tuner_knobs", "tuner_knobs", "knobs"):
            with contextlib.suppress(ImportError):
                return importlib.import_module(name.lstrip("."))
        raise ImportError("tuner's knob module (knobs.py) is not beside the node agent")

    knobs = _load_knobs()

UNIT_NAME = "tuner-agent.service"
UNIT_PATH = "/etc/systemd/system/" + UNIT_NAME
WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/" + UNIT_NAME
LIB_DIR = "/opt/tuner/lib"  # on PYTHONPATH of the unit; the package is tuner_agent
PACKAGE = "tuner_agent"
VENV_PYTHON = "/opt/tuner/venv/bin/python"  # the node runtime `tuner provision` builds
INSTALL_RECORD = "/var/lib/tuner/agent-install.json"  # what install created (remove undoes)
STALE = "/var/lib/tuner/gpu-facts-stale.json"  # GPU PCI events since the last facts
GATE = "/var/lib/tuner/gate.json"  # the last gate verdict of this node (written by the gate)
# Debian's prometheus-node-exporter reads textfiles from here (--collector.textfile.directory)
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
TEXTFILE_NAME = "tuner.prom"
SIM_EVENTS = "/run/tuner-sim/uevents.jsonl"  # the simulator's event seam (docs/sim-agent.md)

# Seconds after a trigger at which the affected knobs are checked again: a module's `add`
# uevent comes before its init function registers the cpufreq driver (docs/agent.md).
SETTLE = (0.25, 1.0, 3.0)
# Event storms (a udev trigger, hundreds of CPUs coming online) make few passes
# (Agent._burst): events are gathered until QUIET s pass without one, the next pass starts
# at least MIN_INTERVAL s after the last one began, and no event waits more than COALESCE s.
QUIET = 0.05
MIN_INTERVAL = 0.5
COALESCE = 1.0
MAX_BATCH = 10000
# PCI classes of AMD GPUs: display controller (0x03xxxx), processing accelerator (0x12xxxx,
# the MI300-series OAM parts).
GPU_VENDOR = "1002"
GPU_CLASSES = ("03", "12")
# Modules whose loading creates cpufreq policies or idle states (`cpufreq_*` modules are
# governors: loading one changes no policy).
CPUIDLE_MODULES = ("processor", "intel_idle", "cpuidle_haltpoll")


def log(msg: str) -> None:
    """One line on stdout: the journal keeps it (the unit's StandardOutput=journal)."""
    sys.stdout.write(f"tuner-agent: {msg}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------
# Events: the subset of a pyudev.Device the agent reads, from either source.


@dataclass
class UEvent:
    """A kernel uevent as pyudev shows it (`Device.action`, `.subsystem`, `.device_path`,
    `.properties`), so the same selection serves netlink and the simulator."""

    action: str
    subsystem: str
    device_path: str  # DEVPATH, e.g. /devices/system/cpu/cpu5, /module/acpi_cpufreq
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def sys_name(self) -> str:
        return self.device_path.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_pyudev(cls, dev: Any) -> UEvent:
        props = {str(k): str(v) for k, v in dict(dev.properties).items()}
        return cls(
            action=str(dev.action or props.get("ACTION", "")),
            subsystem=str(dev.subsystem or props.get("SUBSYSTEM", "")),
            device_path=str(dev.device_path or props.get("DEVPATH", "")),
            properties=props,
        )

    @classmethod
    def from_json(cls, data: Any) -> UEvent | None:
        """An event line of the simulator (docs/sim-agent.md); None when malformed."""
        if not isinstance(data, dict):
            return None
        props = data.get("properties") or {}
        if not isinstance(props, dict):
            return None
        try:
            return cls(
                action=str(data["action"]),
                subsystem=str(data.get("subsystem", "")),
                device_path=str(data["devpath"]),
                properties={str(k): str(v) for k, v in props.items()},
            )
        except KeyError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "subsystem": self.subsystem,
            "devpath": self.device_path,
            "properties": self.properties,
        }


@dataclass
class Trigger:
    """What an event asks of the agent: the knob kinds to re-apply, or GPU facts stale."""

    kinds: frozenset[str]
    why: str
    gpu: bool = False


# knobs.apply's result status -> conformance after the run
CONFORMANCE = {"unchanged": "ok", "changed": "ok", "missing": "missing", "failed": "failed"}

CPU_RE = re.compile(r"^/devices/system/cpu/cpu(\d+)$")
POLICY_RE = re.compile(r"^/devices/system/cpu/cpufreq/policy(\d+)$")


def select_kinds(ev: UEvent) -> Trigger | None:
    """Pure: which knob kinds an event can have undone (None: the event changes nothing).

    - `online`/`add` of a CPU device (subsystem cpu): a CPU that comes up gets a fresh
      cpufreq policy (the default governor) and fresh idle states -> governor, cpuidle;
    - `add` of a cpufreq policy kobject, or of a cpufreq driver module -> governor;
    - `add` of an idle driver module -> cpuidle;
    - `add`/`remove` of an AMD GPU (subsystem pci, vendor 1002, display or accelerator
      class) -> GPU facts stale.
    """
    act, sub, path = ev.action, ev.subsystem, ev.device_path
    if sub == "cpu" and act in ("online", "add"):
        m = CPU_RE.fullmatch(path)
        if m:
            return Trigger(frozenset({"governor", "cpuidle"}), f"cpu{m.group(1)} {act}")
    if act == "add":
        m = POLICY_RE.fullmatch(path)
        if m:
            return Trigger(frozenset({"governor"}), f"cpufreq policy{m.group(1)} added")
    if sub == "module" and act == "add":
        name = ev.sys_name
        if ("cpufreq" in name or "pstate" in name) and not name.startswith("cpufreq_"):
            return Trigger(frozenset({"governor"}), f"cpufreq driver {name} loaded")
        if name in CPUIDLE_MODULES:
            return Trigger(frozenset({"cpuidle"}), f"idle driver {name} loaded")
    if sub == "pci" and act in ("add", "remove"):
        pci_id = ev.properties.get("PCI_ID", "")
        pci_class = ev.properties.get("PCI_CLASS", "").lower().removeprefix("0x").zfill(6)
        if pci_id.lower().startswith(GPU_VENDOR + ":") and pci_class[:2] in GPU_CLASSES:
            slot = ev.properties.get("PCI_SLOT_NAME") or ev.sys_name
            return Trigger(frozenset(), f"GPU {slot} {act}", gpu=True)
    return None


def select_specs(specs: list[dict[str, Any]], kinds: frozenset[str] | None) -> list[dict[str, Any]]:
    """Pure: the recorded settings of these kinds (None: all)."""
    return [s for s in specs if kinds is None or s.get("kind") in kinds]


class EventSource(Protocol):
    def poll(self, timeout: float) -> UEvent | None:
        """The next event, or None when `timeout` seconds pass without one."""

    def close(self) -> None: ...


class NetlinkSource:
    """A real node: udev's netlink monitor (pyudev), the subsystems the agent cares about."""

    def __init__(self) -> None:
        import pyudev

        self._monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        for sub in ("cpu", "module", "pci"):
            self._monitor.filter_by(sub)
        self._monitor.start()

    def poll(self, timeout: float) -> UEvent | None:
        dev = self._monitor.poll(timeout=timeout)
        return UEvent.from_pyudev(dev) if dev is not None else None

    def close(self) -> None:
        pass


class SimSource:
    """The simulator: `tuner sim event` appends one JSON line per uevent to SIM_EVENTS under
    the node root; like a netlink socket, only events after the start are seen."""

    def __init__(self, host: knobs.Host) -> None:
        self._path = host.path(SIM_EVENTS)
        self._pos = os.path.getsize(self._path) if os.path.exists(self._path) else 0
        self._buf = b""

    def poll(self, timeout: float) -> UEvent | None:
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next()
            if ev is not None or time.monotonic() >= deadline:
                return ev
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _next(self) -> UEvent | None:
        while b"\n" not in self._buf:
            try:
                with open(self._path, "rb") as f:
                    f.seek(self._pos)
                    chunk = f.read(65536)
            except FileNotFoundError:
                return None
            if not chunk:
                return None
            self._pos += len(chunk)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            ev = UEvent.from_json(json.loads(line))
        except ValueError:
            ev = None
        if ev is None:
            log(f"ignored a malformed event line in {SIM_EVENTS}")
        return ev

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------
# The agent.


class Agent:
    def __init__(
        self,
        root: str = "/",
        textfile_dir: str = TEXTFILE_DIR,
        lock_timeout: float = 60.0,
    ) -> None:
        self.root = root
        self.host = knobs.Host(root=root)
        self.textfile_dir = textfile_dir
        self.lock_timeout = lock_timeout
        self._conformance: dict[str, str] = {}  # setting id -> ok | missing | failed
        self.passes = 0  # re-apply passes (the start, events, settle re-checks)
        self._last_pass = 0.0  # time.monotonic() of the last pass's start

    def reapply(
        self, kinds: frozenset[str] | None, trigger: str, quiet: bool = False
    ) -> dict[str, Any]:
        """Re-apply the recorded settings of these kinds (None: all); record and export."""
        start = time.time()
        # a fresh view of the root each pass: folders are resolved again (a folder replaced
        # by a link out of the root since the last pass is refused, never followed)
        self.host = knobs.Host(self.root, self.host.sim_kernel)
        self.passes += 1
        self._last_pass = time.monotonic()
        result: dict[str, Any] = {
            "version": 1,
            "time": start,
            "trigger": trigger,
            "pass": self.passes,  # passes since the agent started (the start pass is 1)
            "pid": os.getpid(),
            "changed": [],
            "failed": [],
            "results": [],
            "conformance": {},
            "conformant": False,
        }
        try:
            rec = knobs.load_applied(self.host)
            if rec is None:
                result["status"] = "nothing recorded"
                result["message"] = f"no {knobs.APPLIED}: tuner apply has not run on this node"
            else:
                self.host.sim_kernel = bool(rec.get("sim_kernel"))
                if any(x["id"] not in self._conformance for x in rec["settings"]):
                    kinds = None  # a setting this agent has not seen yet (a new apply): all
                specs = select_specs(rec["settings"], kinds)
                res = (
                    knobs.apply(self.host, specs, False, False, self.lock_timeout) if specs else []
                )
                result["results"] = res
                result["changed"] = [r["id"] for r in res if r["status"] == "changed"]
                result["failed"] = [r["id"] for r in res if r["status"] == "failed"]
                result["status"] = (
                    "failed" if result["failed"] else "changed" if result["changed"] else "ok"
                )
                # Conformance of everything recorded: what this run re-applied, and what the
                # last runs found for the rest (the start pass covers every setting).
                ids = [x["id"] for x in rec["settings"]]
                for x in res:
                    self._conformance[x["id"]] = CONFORMANCE.get(x["status"], "failed")
                conf = {i: self._conformance.get(i, "unknown") for i in ids}
                result["conformance"] = conf
                result["conformant"] = all(v in ("ok", "missing") for v in conf.values())
        except (knobs.KnobError, OSError) as e:
            result["status"] = "failed"
            result["message"] = str(e)
        try:
            result["gpu_facts_stale"] = self.host.exists(STALE)
        except knobs.KnobError:
            result["gpu_facts_stale"] = None  # the record folder is not usable (said above)
        result["seconds"] = round(time.time() - start, 4)
        if not quiet or result["status"] not in ("ok", "nothing recorded"):
            self._log_result(result)
        self._save(result)
        return result

    def _log_result(self, r: dict[str, Any]) -> None:
        if r["status"] in ("ok", "nothing recorded"):
            log(f"{r['trigger']}: {r.get('message') or 'every recorded setting as wanted'}")
            return
        for x in r["results"]:
            if x["status"] in ("changed", "failed"):
                log(
                    f"{r['trigger']}: {x['id']} {x['status']}: {x['before']} -> {x['after']}"
                    + (f" ({x['message']})" if x["message"] else "")
                )
        if r.get("message"):
            log(f"{r['trigger']}: {r['status']}: {r['message']}")

    def _save(self, result: dict[str, Any]) -> None:
        """agent.json (verify shows it) and the node_exporter textfile."""
        try:
            self.host.write_file(
                knobs.AGENT_RESULT, json.dumps(result, indent=1, sort_keys=True) + "\n", []
            )
        except (knobs.KnobError, OSError) as e:
            log(f"cannot write {knobs.AGENT_RESULT}: {e}")
        try:
            self.write_textfile(result)
        except (knobs.KnobError, OSError) as e:
            log(f"cannot write the textfile in {self.textfile_dir}: {e}")

    def mark_gpu_stale(self, events: list[tuple[str, UEvent]]) -> None:
        """Keep the GPU PCI events (the newest 64) in STALE: one write for a burst."""
        try:
            data = (
                knobs.read_record(self.host.path(STALE), STALE) if self.host.exists(STALE) else {}
            )
        except knobs.KnobError:
            data = {}
        kept = data.get("events") if isinstance(data, dict) else None
        kept = kept if isinstance(kept, list) else []
        now = time.time()
        kept += [{"time": now, "event": why, "uevent": ev.to_json()} for why, ev in events]
        kept = kept[-64:]
        data = {"since": kept[0].get("time", now) if isinstance(kept[0], dict) else now}
        data["events"] = kept
        self.host.write_file(STALE, json.dumps(data, indent=1) + "\n", [])
        more = f" (and {len(events) - 1} more)" if len(events) > 1 else ""
        log(f"{events[0][0]}{more}: the node's GPU facts are stale (run tuner check)")

    def write_textfile(self, result: dict[str, Any]) -> str | None:
        """The node_exporter textfile: conformance, the agent's last run, the last gate."""
        if not os.path.isdir(self.host.path(self.textfile_dir)):
            return None
        from prometheus_client import CollectorRegistry, Gauge, generate_latest

        reg = CollectorRegistry()
        g = Gauge(
            "tuner_setting_conformant",
            "1 when a setting tuner recorded has the wanted value on this node",
            ["setting"],
            registry=reg,
        )
        for sid, st in (result.get("conformance") or {}).items():
            if st != "missing":  # a setting this node does not have is not exported
                g.labels(setting=sid).set(1 if st == "ok" else 0)
        recorded = result.get("status") != "nothing recorded"
        Gauge(
            "tuner_conformant",
            "1 when every setting tuner recorded has its wanted value (0 also: none recorded)",
            registry=reg,
        ).set(1 if result.get("conformant") else 0)
        Gauge("tuner_record_present", "1 when tuner apply recorded settings", registry=reg).set(
            1 if recorded else 0
        )
        Gauge(
            "tuner_agent_last_run_timestamp_seconds", "When the node agent last ran", registry=reg
        ).set(result.get("time", 0))
        Gauge(
            "tuner_agent_last_changed_settings",
            "Settings the node agent's last run had to re-apply",
            registry=reg,
        ).set(len(result.get("changed", [])))
        Gauge(
            "tuner_gpu_facts_stale",
            "1 when a GPU was added or removed since the last gate (tuner check)",
            registry=reg,
        ).set(1 if result.get("gpu_facts_stale") else 0)
        gate = self._gate()
        Gauge("tuner_gate_known", "1 when this node has a gate verdict", registry=reg).set(
            1 if gate else 0
        )
        if gate:
            Gauge("tuner_gate_passed", "1 when the node passed its last gate", registry=reg).set(
                1 if gate.get("passed") else 0
            )
            Gauge(
                "tuner_gate_usable_gpus", "Usable GPUs in the node's last gate", registry=reg
            ).set(float(gate.get("usable_gpus") or 0))
            Gauge(
                "tuner_gate_timestamp_seconds", "When the node's last gate ran", registry=reg
            ).set(float(gate.get("time") or 0))
        path = self.host.path(self.textfile_dir.rstrip("/") + "/" + TEXTFILE_NAME)
        knobs.write_atomic(path, generate_latest(reg))  # node_exporter never sees half a file
        return path

    def _gate(self) -> dict[str, Any] | None:
        try:
            data = knobs.read_record(self.host.path(GATE), GATE) if self.host.exists(GATE) else None
        except knobs.KnobError:
            return None
        return data if isinstance(data, dict) else None

    def watch(self, source: EventSource, stop: list[bool], idle: float = 0.5) -> None:
        """Handle events until `stop[0]`: re-apply what each can undo, within a second.

        Events are coalesced (`_burst`): one pass for the union of what a burst asked (one
        GPU stale mark for all its GPU events), a pass at most every MIN_INTERVAL s while a
        storm lasts, and no event waits more than COALESCE s. A storm of N uevents over T s
        thus makes at most T / MIN_INTERVAL + 1 event passes, each followed by at most one
        settle re-check before the next (later ones are replaced): never N passes."""
        due: list[tuple[float, frozenset[str], str]] = []  # settle re-checks
        gate_seen = self._gate_mtime()
        while not stop[0]:
            timeout = idle
            if due:
                timeout = max(0.0, min(idle, min(d[0] for d in due) - time.monotonic()))
            ev = source.poll(timeout)
            if ev is not None:
                self.passes_for(self._burst(source, ev, stop), due)
            now = time.monotonic()
            for d in [d for d in due if d[0] <= now]:
                due.remove(d)
                self.reapply(d[1], d[2], quiet=True)
            gate = self._gate_mtime()
            if gate != gate_seen:  # `tuner check` sent a verdict: the textfile shows it
                gate_seen = gate
                self.reapply(frozenset(), "gate recorded", quiet=True)

    def _burst(self, source: EventSource, first: UEvent, stop: list[bool]) -> list[UEvent]:
        """The first event and the events that follow it: until QUIET s pass without one
        (and at least MIN_INTERVAL s after the last pass began), at most COALESCE s after
        the first, at most MAX_BATCH events."""
        events = [first]
        t0 = time.monotonic()
        hard_end = t0 + COALESCE
        min_end = max(t0, self._last_pass + MIN_INTERVAL)
        while len(events) < MAX_BATCH and not stop[0]:
            now = time.monotonic()
            if now >= hard_end:
                break
            ev = source.poll(min(hard_end - now, max(QUIET, min_end - now)))
            if ev is None:
                if time.monotonic() >= min_end:
                    break  # quiet: the burst is over
                continue
            events.append(ev)
        return events

    def passes_for(
        self, events: list[UEvent], due: list[tuple[float, frozenset[str], str]]
    ) -> None:
        """One pass for a burst: the union of the knob kinds its events ask for."""
        kinds: set[str] = set()
        whys: list[str] = []
        gpu: list[tuple[str, UEvent]] = []
        for ev in events:
            t = select_kinds(ev)
            if t is None:
                continue
            if t.gpu:
                gpu.append((t.why, ev))
            else:
                kinds |= t.kinds
                whys.append(t.why)
        if gpu:
            self.mark_gpu_stale(gpu)
        if not kinds:
            if gpu:
                self.reapply(frozenset(), gpu[0][0], quiet=True)  # textfile: stale now
            return
        why = whys[0] if len(whys) == 1 else f"{whys[0]} and {len(whys) - 1} more events"
        fk = frozenset(kinds)
        self.reapply(fk, why)
        now = time.monotonic()
        due[:] = [d for d in due if not d[1] <= fk]  # a newer pass covers these re-checks
        due += [(now + x, fk, why + f" (+{x:g} s)") for x in SETTLE]

    def _gate_mtime(self) -> float | None:
        try:
            return os.stat(self.host.path(GATE)).st_mtime
        except (OSError, knobs.KnobError):
            return None


def _signals(stop: list[bool]) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def make_source(kind: str, host: knobs.Host) -> EventSource | None:
    if kind == "netlink":
        return NetlinkSource()
    if kind == "sim":
        return SimSource(host)
    return None


def run(argv: list[str] | None = None) -> int:
    """`run [--once] [--root DIR] [--events netlink|sim|none] [--textfile-dir DIR] [--json]`."""
    p = argparse.ArgumentParser(prog="tuner-agent", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="re-apply the recorded settings, then watch udev")
    r.add_argument("--once", action="store_true", help="re-apply once and exit")
    r.add_argument("--root", default="/", help="the node's / (a simulated node's tree)")
    r.add_argument("--events", choices=("netlink", "sim", "none"), default="netlink")
    r.add_argument("--textfile-dir", default=TEXTFILE_DIR)
    r.add_argument("--lock-timeout", type=float, default=60.0)
    r.add_argument("--json", action="store_true", help="print the result (with --once)")
    a = p.parse_args(argv)
    if not os.path.isdir(a.root):
        sys.stderr.write(f"tuner-agent: --root: {a.root} is not a folder\n")
        return 2
    if not a.textfile_dir.startswith("/"):
        sys.stderr.write("tuner-agent: --textfile-dir: an absolute path on the node is needed\n")
        return 2
    agent = Agent(a.root, a.textfile_dir, a.lock_timeout)
    stop = [False]
    source = None
    if not a.once:
        _signals(stop)
        # Subscribe before the boot pass, so no event between the two is lost.
        try:
            source = make_source(a.events, agent.host)
        except Exception as e:  # pyudev without libudev, no netlink socket (a container)
            log(f"cannot watch udev events ({a.events}): {e}; re-applying at start only")
    result = agent.reapply(None, "start" if not a.once else "once")
    if a.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    if a.once or source is None:
        return 1 if result["status"] == "failed" else 0
    log(f"watching {a.events} events")
    try:
        agent.watch(source, stop)
    finally:
        source.close()
    log("stopped")
    return 0


# ---------------------------------------------------------------------------------------
# Install and remove on a node (the tuner_agent Ansible module calls these).


def unit_text(python: str = VENV_PYTHON, sim: bool = False) -> str:
    """The systemd unit (docs/agent.md: why these After= lines)."""
    events = " --events sim" if sim else ""
    return (
        "# Written by tuner (tuner agent install). Removed by `tuner agent remove`.\n"
        "[Unit]\n"
        "Description=tuner node agent: keeps the node's tuning across boots and hotplug\n"
        "# What it does and why these After= lines: tuner's docs/agent.md\n"
        "After=systemd-modules-load.service systemd-udev-trigger.service "
        "systemd-sysctl.service systemd-tmpfiles-setup.service\n"
        "After=cpupower.service cpufrequtils.service tuned.service\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"Environment=PYTHONPATH={LIB_DIR}\n"
        f"ExecStart={python} -m {PACKAGE}.nodeagent run{events}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "StandardOutput=journal\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _lpath(host: knobs.Host, p: str) -> str:
    """A link's own path under the root (its folder resolved, the link itself not followed)."""
    return os.path.join(host.path(os.path.dirname(p)), os.path.basename(p))


def _empty_record() -> dict[str, Any]:
    return {"version": 1, "files": [], "dirs": [], "links": []}


INSTALL_KEYS = {"version", "files", "dirs", "links", "installed"}
MODULE_FILE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\.py$")


def install_paths(textfile_dir: str = TEXTFILE_DIR) -> tuple[set[str], set[str]]:
    """What install may ever write -> (files it may name, folders it may have created):
    the package's modules, the unit, the wants link; folders above them and the textfile's."""
    files = {UNIT_PATH}
    dirs: set[str] = set()
    for p in (f"{LIB_DIR}/{PACKAGE}/x.py", UNIT_PATH, WANTS_LINK, textfile_dir.rstrip("/") + "/x"):
        d = os.path.dirname(p)
        while d not in ("", "/"):
            dirs.add(d)
            d = os.path.dirname(d)
    return files, dirs


def _install_problem(data: Any, textfile_dir: str) -> str:
    """'' or why an install record names something install never writes (remove would then
    delete whatever it lists: refused whole, nothing removed)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    extra = sorted(set(data) - INSTALL_KEYS)
    if extra:
        return f"unknown field {extra[0][:80]!r}"
    if not all(isinstance(data.get(k), list) for k in ("files", "dirs", "links")):
        return "'files', 'dirs' and 'links' must be lists"
    files, dirs = install_paths(textfile_dir)
    pkg = f"{LIB_DIR}/{PACKAGE}/"
    for p in data["files"]:
        ok = isinstance(p, str) and (
            p in files or (p.startswith(pkg) and MODULE_FILE.fullmatch(p[len(pkg) :]) is not None)
        )
        if not ok:
            return f"files names {str(p)[:120]!r}, which install never writes"
    for p in data["links"]:
        if p != WANTS_LINK:
            return f"links names {str(p)[:120]!r}, which install never makes"
    for p in data["dirs"]:
        if p not in dirs:
            return f"dirs names {str(p)[:120]!r}, which install never creates"
    return ""


def _load_install_record(
    host: knobs.Host, textfile_dir: str = TEXTFILE_DIR
) -> dict[str, Any] | None:
    real = host.path(INSTALL_RECORD)
    if not os.path.lexists(real):
        return None
    data = knobs.read_record(real, INSTALL_RECORD)
    problem = _install_problem(data, textfile_dir)
    if problem:
        raise knobs.KnobError(
            f"{INSTALL_RECORD} is not a record tuner wrote: {problem}; nothing was changed"
        )
    return data  # type: ignore[no-any-return]


def install(
    host: knobs.Host,
    sources: dict[str, str],
    python: str = VENV_PYTHON,
    sim: bool = False,
    check: bool = False,
    textfile_dir: str = TEXTFILE_DIR,
) -> dict[str, Any]:
    """Write the agent's package and unit under the root; what install created is recorded
    (INSTALL_RECORD) before it is created, so `remove` takes exactly that away.

    `sources`: file name in the package -> content (knobs.py, nodeagent.py).
    In the simulator (`sim`) the unit is enabled as `systemctl enable` would (the
    multi-user.target.wants link); on a node the caller runs systemctl."""
    files = {
        f"{LIB_DIR}/{PACKAGE}/__init__.py": '"""tuner\'s node agent (installed by tuner)."""\n'
    }
    files.update({f"{LIB_DIR}/{PACKAGE}/{n}": c for n, c in sources.items()})
    files[UNIT_PATH] = unit_text(python, sim)
    rec = _load_install_record(host, textfile_dir)
    if rec is None and host.exists(UNIT_PATH):
        raise knobs.KnobError(f"{UNIT_PATH} exists and tuner did not install it; nothing changed")
    rec = rec or _empty_record()
    todo = [p for p, c in files.items() if not host.exists(p) or host.read(p) != c]
    dirs = [d for d in (os.path.dirname(p) for p in files) if not host.exists(d)]
    if not host.exists(textfile_dir):
        dirs.append(textfile_dir)
    link_todo = sim and not (
        host.exists(os.path.dirname(WANTS_LINK)) and os.path.islink(_lpath(host, WANTS_LINK))
    )
    changed = bool(todo or link_todo or dirs)
    out: dict[str, Any] = {"changed": changed, "files": todo, "enabled": sim or None}
    if check or not changed:
        return out
    with knobs.locked(host):
        # Record first: a killed install is removed cleanly.
        rec["files"] = sorted(set(rec["files"]) | set(files))
        rec["installed"] = time.time()
        created: list[str] = []
        for d in sorted(set(dirs), key=len):
            host._makedirs(d, created)
        rec["dirs"] = list(dict.fromkeys(rec["dirs"] + created))
        if sim:
            rec["links"] = sorted(set(rec["links"]) | {WANTS_LINK})
            host._makedirs(os.path.dirname(WANTS_LINK), created)
            rec["dirs"] = list(dict.fromkeys(rec["dirs"] + created))
        host.write_file(INSTALL_RECORD, json.dumps(rec, indent=1) + "\n", [])
        pkg = f"{LIB_DIR}/{PACKAGE}"
        if any(p.startswith(pkg + "/") for p in todo):
            _put_package(host, pkg, {p: c for p, c in files.items() if p.startswith(pkg + "/")})
        for p in todo:
            if not p.startswith(pkg + "/"):
                host.write_file(p, files[p], [])
        if link_todo:
            link = _lpath(host, WANTS_LINK)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            # what `systemctl enable` makes, relative so that it stays inside a node tree
            os.symlink("../" + UNIT_NAME, link)
    return out


def _put_package(host: knobs.Host, pkg: str, files: dict[str, str]) -> None:
    """The package folder built whole beside its place (an exclusive temp folder) and
    renamed in: the agent never runs a mix of old and new modules, and a full disk or a
    killed install leaves the previous package, never a half-made one (a temp folder a
    killed install left is removed by the next install)."""
    import shutil
    import tempfile

    real = host.path(pkg)
    parent, base = os.path.split(real)
    for e in os.listdir(parent):  # a killed install's temp folders
        if e.startswith(f".{base}.") and e.endswith(knobs.TMP_MARK):
            shutil.rmtree(os.path.join(parent, e), ignore_errors=True)
    new = tempfile.mkdtemp(prefix=f".{base}.", suffix=knobs.TMP_MARK, dir=parent)
    old = None
    try:
        os.chmod(new, 0o755)
        for p, content in files.items():
            knobs.write_atomic(os.path.join(new, os.path.basename(p)), content)
        if os.path.isdir(real) and not os.path.islink(real):
            old = tempfile.mkdtemp(prefix=f".{base}.", suffix=knobs.TMP_MARK, dir=parent)
            os.rename(real, os.path.join(old, base))
        os.rename(new, real)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old is not None and not os.path.exists(real):
            with contextlib.suppress(OSError):
                os.rename(os.path.join(old, base), real)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def remove(
    host: knobs.Host, check: bool = False, textfile_dir: str = TEXTFILE_DIR
) -> dict[str, Any]:
    """Take away what install recorded, and the agent's own outputs; the tuning stays
    (`tuner rollback` restores it)."""
    rec = _load_install_record(host, textfile_dir)
    if rec is None:
        return {"changed": False, "files": [], "message": "not installed"}
    outputs = [knobs.AGENT_RESULT, STALE, textfile_dir.rstrip("/") + "/" + TEXTFILE_NAME]
    gone = [p for p in rec["files"] + outputs if host.exists(p)]
    links = [
        p
        for p in rec["links"]
        if host.exists(os.path.dirname(p)) and os.path.islink(_lpath(host, p))
    ]
    out = {"changed": True, "files": gone + links}
    if check:
        return out
    with knobs.locked(host):
        for p in links:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_lpath(host, p))
        for p in gone:
            host.remove_file(p)
        pyc = host.path(f"{LIB_DIR}/{PACKAGE}/__pycache__")
        if os.path.isdir(pyc) and not os.path.islink(pyc):
            import shutil

            shutil.rmtree(pyc)
        host.remove_file(INSTALL_RECORD)
        for d in sorted(rec["dirs"], key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(host.path(d))
    return out


def status(host: knobs.Host, textfile_dir: str = TEXTFILE_DIR) -> dict[str, Any]:
    """Installed? Files intact? Enabled (sim: the wants link)? The last result."""
    rec = _load_install_record(host, textfile_dir)
    missing = [p for p in (rec or {}).get("files", []) if not host.exists(p)]
    return {
        "installed": rec is not None,
        "missing": missing,
        "enabled_link": host.exists(os.path.dirname(WANTS_LINK))
        and os.path.islink(_lpath(host, WANTS_LINK)),
        "last": knobs.load_agent_result(host),
        "gpu_facts_stale": host.exists(STALE),
        "textfile": host.exists(textfile_dir.rstrip("/") + "/" + TEXTFILE_NAME),
    }


if __name__ == "__main__":
    sys.exit(run())
