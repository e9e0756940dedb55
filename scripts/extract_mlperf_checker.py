"""Vendor the part of MLCommons' submission checker that reads a system description, for
tests/test_export.py (docs/export.md "mlperf-system" says how to refresh).

    git clone https://github.com/mlcommons/inference   # or a snapshot of it
    python scripts/extract_mlperf_checker.py INFERENCE_CHECKOUT_OR_GIT_DIR COMMIT

From tools/submission/submission_checker/ at COMMIT: checks/base.py and
checks/system_check.py byte for byte; constants.py with only the names system_check.py
reads (SYSTEM_DESC_*, VALID_AVAILABILITIES), each assignment copied as written; utils.py
with `is_number` and `lower_list` as written; loader.py with the `SubmissionLogs` class as
written. configuration/configuration.py is a stub (`Config` is only a type annotation in
system_check.py; the real one loads every benchmark's rules). Standard library only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = "tools/submission/submission_checker"
OUT = Path(__file__).resolve().parent.parent / "tests" / "external" / "mlperf_submission_checker"


def _show(repo: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"{commit}:{path}"]
        if repo.endswith(".git") or Path(repo, "HEAD").exists()
        else ["git", "-C", repo, "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _segments(source: str, keep: set[str]) -> str:
    tree = ast.parse(source)
    out = []
    for node in tree.body:
        names: set[str] = set()
        if isinstance(node, ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names = {node.name}
        if names & keep:
            seg = ast.get_source_segment(source, node)
            assert seg is not None
            out.append(seg)
    return "\n\n\n".join(out) + "\n"


def main() -> None:
    repo, commit = sys.argv[1], sys.argv[2]
    head = f"# From mlcommons/inference {commit}, {SRC}/{{}} (Apache-2.0); extracted by\n"
    head += "# scripts/extract_mlperf_checker.py: only the names the system check reads.\n\n"
    pkg = OUT / "submission_checker"
    (pkg / "checks").mkdir(parents=True, exist_ok=True)
    (pkg / "configuration").mkdir(parents=True, exist_ok=True)
    for f in ("__init__.py", "checks/__init__.py", "configuration/__init__.py"):
        (pkg / f).write_text("")
    for f in ("checks/base.py", "checks/system_check.py"):
        (pkg / f).write_text(_show(repo, commit, f"{SRC}/{f}"))
    system = (pkg / "checks/system_check.py").read_text()
    constants = _show(repo, commit, f"{SRC}/constants.py")
    names = {
        n
        for n in ast.parse(constants).body
        if isinstance(n, ast.Assign)
        for n in [t.id for t in n.targets if isinstance(t, ast.Name)]
        if n in system
    }
    (pkg / "constants.py").write_text(head.format("constants.py") + _segments(constants, names))
    utils = _show(repo, commit, f"{SRC}/utils.py")
    (pkg / "utils.py").write_text(
        head.format("utils.py") + _segments(utils, {"is_number", "lower_list"})
    )
    loader = _show(repo, commit, f"{SRC}/loader.py")
    (pkg / "loader.py").write_text(head.format("loader.py") + _segments(loader, {"SubmissionLogs"}))
    (pkg / "configuration/configuration.py").write_text(
        "# A stub: system_check.py uses Config only as a type annotation and reads one\n"
        "# attribute of it, skip_meaningful_fields_emptiness_check (False for official\n"
        "# submissions).\n\n\nclass Config:\n    skip_meaningful_fields_emptiness_check = False\n"
    )
    (OUT / "LICENSE.md").write_text(_show(repo, commit, "LICENSE.md"))
    (OUT / "ORIGIN.md").write_text(
        f"# Origin\n\nmlcommons/inference at commit {commit}, `{SRC}/`, Apache-2.0 "
        "(LICENSE.md).\nVendored by `scripts/extract_mlperf_checker.py` (its docstring says "
        "what is kept\nand what is a stub); used by `tests/test_export.py` to run MLCommons' "
        "own\nsystem check on `tuner export --format mlperf-system`.\n"
    )


if __name__ == "__main__":
    main()
