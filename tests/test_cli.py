"""The CLI's conventions: help (placeholders, choices, examples, 80 columns), --version,
completion, status and the run history. In-process where possible: fast, no fleet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import run_tuner

from agent import history
from agent.cli import app
from agent.clihelp import EXAMPLES, apply_conventions


def _commands() -> list[tuple[str, Any, Any]]:
    """(path, click command, its context) for the root and every (sub)command."""
    root = typer.main.get_command(app)
    apply_conventions(root)
    found: list[tuple[str, Any, Any]] = []

    def walk(cmd: Any, path: str, parent: Any) -> None:
        ctx = type(parent)(cmd, info_name=path.split(" ")[-1] or "tuner", parent=parent)
        found.append((path, cmd, ctx))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, f"{path} {name}".strip(), ctx)

    ctx0 = typer.Context(root, info_name="tuner")
    found.append(("", root, ctx0))
    for name, sub in root.commands.items():
        walk(sub, name, ctx0)
    return found


@pytest.mark.parametrize("path", [p for p, _, _ in _commands()])
def test_help_conventions(path: str) -> None:
    _, cmd, ctx = next(c for c in _commands() if c[0] == path)
    text = cmd.get_help(ctx)
    assert "<" not in text.replace("<=", ""), text  # no <str>, <bool>, <int range>
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "Example" in text and path in EXAMPLES, f"add an example for `tuner {path}`"
    cut = [ln for ln in text.splitlines() if ln.endswith("...") and "Usage:" not in ln]
    assert not cut, text  # command summaries are not cut short
    for p in cmd.params:
        if p.param_type_name == "option" and not p.is_flag:
            assert p.metavar and p.metavar.upper() == p.metavar or "|" in p.metavar, p.opts


def test_choices_and_flags_in_help() -> None:
    apply = next(c for p, c, _ in _commands() if p == "apply")
    ctx = typer.Context(apply, info_name="apply")
    text = apply.get_help(ctx)
    assert "--reboot never|if-needed" in text
    assert "--check " in text and "--check <" not in text
    sim_up = next(c for p, c, _ in _commands() if p == "sim up")
    assert "--connection auto|ssh|local" in sim_up.get_help(typer.Context(sim_up))


def test_version_help_and_completion(tmp_path: Path) -> None:
    v = run_tuner("--version", state=tmp_path)
    assert v.rc == 0 and v.out.startswith("tuner ")
    h = run_tuner("--help", state=tmp_path, env=dict(os.environ, COLUMNS="200"))
    assert h.rc == 0 and max(len(line) for line in h.out.splitlines()) <= 80
    c = run_tuner(
        state=tmp_path,
        env=dict(os.environ, _TUNER_COMPLETE="complete_bash", COMP_WORDS="tuner sim ",
                 COMP_CWORD="2"),
    )  # fmt: skip
    assert c.rc == 0 and {"up", "down", "reboot", "scenarios"} <= set(c.out.split())


def test_tables_for_profiles_and_scenarios(tmp_path: Path) -> None:
    p = run_tuner("profiles", "list", state=tmp_path)
    assert p.rc == 0 and "┃ profile" in p.out and "inference-nps4" in p.out
    s = run_tuner("sim", "scenarios", state=tmp_path)
    assert s.rc == 0 and "┃ scenario" in s.out and "mlperf-llama2-70b" in s.out
    assert run_tuner("sim", "scenarios", "--json", state=tmp_path).json()["scenarios"]


def test_status_without_fleet_or_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = run_tuner("status", "--json", state=state)
    assert r.rc == 0
    doc = r.json()
    assert doc["sim"] is None and doc["runs"] == [] and doc["state_dir"] == str(state)
    human = run_tuner("status", state=state)
    assert "simulated fleet: none" in human.out and "runs: none yet" in human.out
    assert not history.history_file(state).exists()  # status is not a run


def test_history_records_runs_not_bad_input(tmp_path: Path) -> None:
    history.record(tmp_path, ["apply", "-p", "inference"], 0, 1.5,
                   {"summary": {"hosts": 2, "by_status": {"changed": 2}}})  # fmt: skip
    history.record(tmp_path, ["apply", "-p", "nope"], 2, 0.1, None)  # bad input: not a run
    history.record(tmp_path, ["sim", "up", "--nodes", "2"], 0, 3.0, {"nodes": [{}, {}]})
    history.record(tmp_path, ["profiles", "list"], 0, 0.1, None)
    history.record(tmp_path, ["check"], 1, 9.0,
                   {"gate": {"passed": False}, "usable_gpus": 7, "installed_gpus": 8})  # fmt: skip
    runs = history.recent(tmp_path, 10)
    assert [r["command"] for r in runs] == ["check", "sim up", "apply"]
    assert runs[0]["summary"] == {"gate": "failed", "usable_gpus": 7, "installed_gpus": 8}
    assert runs[2]["summary"]["by_status"] == {"changed": 2} and runs[2]["exit_code"] == 0
    with history.history_file(tmp_path).open("a") as f:
        f.write("not json\n")
    assert len(history.recent(tmp_path, 2)) == 2
    doc = json.loads(history.history_file(tmp_path).read_text().splitlines()[0])
    assert doc["args"] == ["apply", "-p", "inference"]


def _ssh_masters(cp_dir: Path) -> list[str]:
    """Running `ssh` connection masters whose socket is in `cp_dir` (from /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmd.startswith("ssh: ") and str(cp_dir) in cmd:
            found.append(cmd)
    return found


@pytest.mark.fleet
def test_lab_edges_state_dir_progress_status_and_ssh_masters(tmp_path: Path) -> None:
    from conftest import CONNECTION

    from agent.paths import control_path_dir

    lab = tmp_path / "lab"
    other = tmp_path / "default"  # TUNER_STATE_DIR of the commands: not the lab
    up = run_tuner("sim", "up", "-n", "2", "--cores-per-socket", "2", "--bmc-vendor", "none",
                   "--connection", CONNECTION, "--state-dir", str(lab), state=other)  # fmt: skip
    try:
        assert up.rc == 0, up.err
        assert f"export TUNER_STATE_DIR={lab}" in up.out
        assert f"tuner sim down --state-dir {lab}" in up.out
        phases = [ln for ln in up.err.splitlines() if ln.startswith("sim up: ")]
        assert any("building 2 node trees" in p for p in phases), up.err
        st = run_tuner("status", "--json", state=lab).json()
        assert st["sim"]["nodes"] == 2 and st["runs"][0]["command"] == "sim up"
        if CONNECTION == "ssh":
            assert st["sim"]["sshd_running"] == 2
        rb = run_tuner("rollback", "--check", state=lab)
        assert rb.rc == 0, rb.err
        if CONNECTION == "ssh":
            assert _ssh_masters(control_path_dir(lab))  # ControlPersist kept them
    finally:
        down = run_tuner("sim", "down", "--state-dir", str(lab), state=other)
    assert down.rc == 0 and "sim down: " in down.err
    assert not _ssh_masters(control_path_dir(lab))
    runs = run_tuner("status", "--json", state=lab).json()["runs"]
    assert [r["command"] for r in runs][:3] == ["sim down", "rollback", "sim up"]
    assert runs[1]["summary"]["by_status"] == {"nothing to do": 2}


def test_control_path_fits_a_unix_socket(tmp_path: Path) -> None:
    from agent.paths import control_path_dir

    assert control_path_dir(Path("/tmp/lab")) == Path("/tmp/lab/cp")
    deep = Path("/tmp/pytest-of-root/pytest-100/popen-gw1/test_killed_apply_rolls_back_a0/state")
    for state in (deep, tmp_path / ("x" * 200)):
        d = control_path_dir(state)
        assert len(str(d)) + 1 + 10 + 17 < 108  # Ansible's hash, ssh's temporary suffix
        assert d == control_path_dir(state)  # the same folder for `sim down` to find


def test_history_summarizes_host_lists() -> None:
    """provision and agent documents have hosts with a status each and no summary block:
    `tuner status` still counts them."""
    doc = {
        "command": "provision",
        "hosts": [{"host": "a", "status": "changed"}, {"host": "b", "status": "failed"}],
    }
    assert history.summarize(doc) == {"hosts": 2, "by_status": {"changed": 1, "failed": 1}}
