"""Progress on stderr while a fleet command runs: a bar on a terminal, lines otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.cli.common import err


@contextmanager
def progress(total: int, label: str, as_json: bool) -> Iterator[Any]:
    """Progress on stderr (stdout keeps the table or the JSON document): on a terminal a
    bar with the current phase, the hosts still working and what they wait on; otherwise
    one line per phase, per host result and per new BIOS stage, and every
    $TUNER_PROGRESS_QUIET seconds (default 15) of silence a line saying what is awaited."""
    from agent.runner import Progress
    from agent.view import visible

    _ = as_json  # --json: the document on stdout, progress on stderr all the same

    class Waiting(Progress):
        def __init__(self) -> None:
            self.states: dict[str, str] = {}
            self.done: set[str] = set()  # hosts with a result in this phase (a layer may
            self.total = total  # run a second pass on a host: it is counted once)

        @property
        def done_n(self) -> int:
            return len(self.done)

        def waiting(self) -> str:
            from agent.view import fold

            by: dict[str, list[str]] = {}
            for h, text in self.states.items():
                by.setdefault(text, []).append(h)
            return "; ".join(f"{text}: {fold(hs)}" for text, hs in by.items())

        def phase(self, text: str, steps: int = 0) -> None:
            self.states.clear()
            self.done.clear()
            self.total = steps

        def state(self, host: str, text: str) -> None:
            self.states[host] = text

        def __call__(self, host: str, status: str) -> None:
            self.states.pop(host, None)
            self.done.add(host)

    if not err.is_terminal:
        import threading
        import time

        start = time.monotonic()
        quiet = float(os.environ.get("TUNER_PROGRESS_QUIET") or 15)

        class Lines(Waiting):
            def __init__(self) -> None:
                super().__init__()
                self.last = time.monotonic()
                self.stages: set[str] = set()
                self.lock = threading.Lock()

            def say(self, text: str) -> None:
                with self.lock:
                    self.last = time.monotonic()
                    text = visible(text)  # stage names and hosts come from nodes
                    sys.stderr.write(f"{label}: {text} [{self.last - start:.1f} s]\n")
                    sys.stderr.flush()

            def phase(self, text: str, steps: int = 0) -> None:
                super().phase(text, steps)
                self.stages.clear()
                self.say(text)

            def state(self, host: str, text: str) -> None:
                super().state(host, text)
                if text != "started" and text not in self.stages:
                    self.stages.add(text)
                    self.say(f"  {text}: {host} first")

            def __call__(self, host: str, status: str) -> None:
                super().__call__(host, status)
                of = f"/{self.total}" if self.total else ""
                word = "done" if status == "ok" else status
                self.say(f"  {host} {word} ({self.done_n}{of})")

        lines = Lines()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(1.0):
                if lines.states and time.monotonic() - lines.last >= quiet:
                    lines.say(f"  still waiting on {lines.waiting()}")

        t = threading.Thread(target=beat, name="tuner-progress", daemon=True)
        t.start()
        try:
            yield lines
        finally:
            stop.set()
            t.join(2)
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}", markup=False),
        console=Console(stderr=True, highlight=False),  # a real one: Live enters it
        transient=True,
    ) as p:
        task = p.add_task(label, total=total, last="")

        class BarProgress(Waiting):
            def show(self, last: str = "") -> None:
                wait = self.waiting()
                p.update(task, last=visible(wait or last)[:100])

            def phase(self, text: str, steps: int = 0) -> None:
                super().phase(text, steps)
                p.reset(
                    task, total=steps or None, description=visible(f"{label} {text}"), last=""
                )

            def state(self, host: str, text: str) -> None:
                super().state(host, text)
                self.show()

            def __call__(self, host: str, status: str) -> None:
                super().__call__(host, status)
                p.update(task, completed=self.done_n)
                self.show(f"{host} {'done' if status == 'ok' else status}")

        yield BarProgress()
