"""How the two pytest-xdist workers share the suite (`--dist loadfile`, scripts/test.sh).

pytest-xdist's loadfile scheduling hands out one test file at a time (a file's module-scoped
fleet starts once), in collection order or by number of tests; the suite's time was bound by
its few long files landing late on one worker. This scheduler keeps loadfile's units but

- starts the longest units first (longest processing time first), by the measured seconds in
  tests/durations.json (a file not listed there counts as short and keeps its place);
- lets a listed test that has no module- or class-scoped fixture be a unit of its own ("split"
  in tests/durations.json: a test's node id, or a parametrized test's id with its
  parameters for one case), so a file's long tests can run on both workers. A split test
  must not depend on its file's other tests having run before it (none listed does).

Refresh tests/durations.json from a run's `--durations=0` output (see docs/performance.md).
Nothing here changes what runs, only where and in what order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLAN = Path(__file__).resolve().parent / "durations.json"


def load_plan() -> tuple[dict[str, float], set[str]]:
    try:
        doc = json.loads(PLAN.read_text())
    except (OSError, ValueError):
        return {}, set()
    units = {str(k): float(v) for k, v in (doc.get("units") or {}).items()}
    return units, {str(s) for s in doc.get("split") or []}


def make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadFileScheduling

    units, split = load_plan()

    class WeightedLoadFile(LoadFileScheduling):  # type: ignore[misc]
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            # a parametrized test: each case its own unit when named with its parameters,
            # else all its cases one unit
            if nodeid in split:
                return nodeid
            base = nodeid.split("[", 1)[0]
            if base in split:
                return base
            return str(super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:
                self._ordered = True
                # stable: units without a figure keep their order, after the long ones
                queue = sorted(self.workqueue.items(), key=lambda kv: -units.get(kv[0], 0.0))
                self.workqueue.clear()
                self.workqueue.update(queue)
            super()._assign_work_unit(node)

    return WeightedLoadFile(config, log)


def from_junit(paths: list[str], old: dict[str, Any]) -> dict[str, Any]:
    """durations.json from the JUnit XML of runs (`pytest --junitxml=F`): seconds per unit
    (a file, or a test named in the old plan's "split"), rounded."""
    import xml.etree.ElementTree as ET

    split = set(old.get("split") or [])
    units: dict[str, float] = {}
    for path in paths:
        for tc in ET.parse(path).iter("testcase"):
            f = (tc.get("file") or tc.get("classname", "").replace(".", "/") + ".py").strip()
            name = f"{f}::{tc.get('name', '')}"
            base = name.split("[", 1)[0]
            unit = name if name in split else base if base in split else f
            units[unit] = units.get(unit, 0.0) + float(tc.get("time") or 0)
    return {
        "about": old.get("about", ""),
        "split": sorted(split),
        "units": {k: round(v, 1) for k, v in sorted(units.items(), key=lambda kv: -kv[1])},
    }


if __name__ == "__main__":  # python tests/xdist_plan.py RUN.xml... > tests/durations.json
    import sys

    try:
        old = json.loads(PLAN.read_text())
    except (OSError, ValueError):
        old = {}
    print(json.dumps(from_junit(sys.argv[1:], old), indent=1))
