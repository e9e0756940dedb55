"""tuner's event stream out of `ansible-playbook`: one JSON line per event.

tuner runs its playbooks on the controller with this as Ansible's stdout callback
(agent/runner.py): each event (play and task start, each host's start and result, the
stats) is written as one line of JSON, in the shape of ansible-runner's `job_events/` files,
to the file descriptor named by TUNER_EVENTS_FD (standard output without it). tuner reads
the lines as they come, tells its progress and keeps each line as the run's audit trail
(`runs/artifacts/<run>/job_events/`).

Why not ansible-runner's own callback (`awx_display`): per event it writes a partial JSON
file, base64-encodes a marker into the terminal stream, flushes a pty, and wraps every
`Display` call; its reader parses the pty and re-encodes every event with the pure-Python
JSON encoder. That is per-event work in `ansible-playbook`'s main loop, the part of a fleet run
that does not fan out (docs/performance.md "tuner's own cost"). Results reach callbacks
already censored by Ansible (`no_log`); the module arguments are not written.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import uuid
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: tuner_events
    type: stdout
    short_description: one JSON line per Ansible event, for tuner
    description:
      - Writes each playbook event as one line of JSON to the file descriptor in
        TUNER_EVENTS_FD (standard output without it).
"""

# the result keys Ansible adds for itself (as ansible-runner's callback leaves them out of
# what it shows, tuner leaves them out of the record)
_INTERNAL = "_ansible_"


def _clean(res: Any) -> Any:
    if isinstance(res, dict):
        return {k: _clean(v) for k, v in res.items() if not str(k).startswith(_INTERNAL)}
    if isinstance(res, list):
        return [_clean(v) for v in res]
    return res


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "tuner_events"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fd = os.environ.get("TUNER_EVENTS_FD", "")
        self._out = os.fdopen(int(fd), "w", encoding="utf-8") if fd.isdigit() else sys.stdout
        self._ident = os.environ.get("TUNER_RUN_IDENT", "")
        self._counter = 0
        self._pid = os.getpid()
        self._playbook: dict[str, Any] = {}
        self._play: dict[str, Any] = {}
        self._task: dict[str, Any] = {}
        self._started: dict[tuple[str, str], datetime.datetime] = {}

    # --- writing -------------------------------------------------------------------------
    def _emit(self, event: str, data: dict[str, Any], parent: str = "") -> None:
        self._counter += 1
        ev: dict[str, Any] = {
            "uuid": data.get("uuid") or str(uuid.uuid4()),
            "counter": self._counter,
            "runner_ident": self._ident,
            "event": event,
            "pid": self._pid,
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
        }
        if parent:
            ev["parent_uuid"] = parent
        ev["event_data"] = data
        try:
            self._out.write(json.dumps(ev, separators=(",", ":"), default=str) + "\n")
            self._out.flush()
        except OSError:
            # nobody reads the events any more (tuner was killed): stop the run rather than
            # go on changing hosts with no record (a re-run converges: originals are saved)
            os.kill(os.getpid(), signal.SIGTERM)

    def _host_event(self, event: str, result: Any, **extra: Any) -> None:
        res = getattr(result, "result", None)
        if res is None:  # ansible-core before 2.19
            res = result._result
        task = self._task
        host = result._host.get_name()
        end = datetime.datetime.now(datetime.UTC)
        start = self._started.get((host, task.get("task_uuid", "")))
        when: dict[str, Any] = {}
        if start:  # as ansible-runner's events: when the host's task started and ended
            when = {"start": start.isoformat(), "end": end.isoformat()}
            when["duration"] = round((end - start).total_seconds(), 6)
        data = {
            **self._play,
            **task,
            "host": host,
            "remote_addr": result._host.address,
            **when,
            "res": _clean(dict(res)),
            "uuid": str(uuid.uuid4()),
            **extra,
        }
        self._emit(event, data, task.get("task_uuid", ""))

    # --- playbook ------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook: Any) -> None:
        u = str(uuid.uuid4())
        self._playbook = {"playbook": os.path.basename(playbook._file_name), "playbook_uuid": u}
        self._emit("playbook_on_start", {**self._playbook, "uuid": u})

    def v2_playbook_on_play_start(self, play: Any) -> None:
        u = str(play._uuid)
        self._play = {**self._playbook, "play": play.get_name(), "play_uuid": u}
        self._emit(
            "playbook_on_play_start",
            {**self._play, "uuid": u},
            self._playbook.get("playbook_uuid", ""),
        )

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        u = str(task._uuid)
        self._task = {"task": task.get_name(), "task_uuid": u, "task_action": task.action}
        self._emit(
            "playbook_on_task_start",
            {**self._play, **self._task, "uuid": u},
            self._play.get("play_uuid", ""),
        )

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_no_hosts_matched(self) -> None:
        self._emit("playbook_on_no_hosts_matched", dict(self._play))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        data = {
            k: getattr(stats, k, {})
            for k in (
                "changed",
                "dark",
                "failures",
                "ignored",
                "ok",
                "processed",
                "rescued",
                "skipped",
            )
        }
        self._emit("playbook_on_stats", {**self._playbook, **data})

    # --- hosts ---------------------------------------------------------------------------
    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        name = host.get_name()
        self._started[(name, str(task._uuid))] = datetime.datetime.now(datetime.UTC)
        data = {**self._play, **self._task, "host": name, "uuid": str(uuid.uuid4())}
        self._emit("runner_on_start", data, self._task.get("task_uuid", ""))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._host_event("runner_on_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._host_event("runner_on_failed", result, ignore_errors=ignore_errors)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._host_event("runner_on_unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._host_event("runner_on_skipped", result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._host_event("runner_item_on_ok", result)

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._host_event("runner_item_on_failed", result)

    def v2_runner_item_on_skipped(self, result: Any) -> None:
        self._host_event("runner_item_on_skipped", result)
