"""The Ansible modules' arguments are typed once (agent/modargs.py): the modules' argument_spec
is generated from it, their documentation and the playbooks agree with it, and no default is
copied into a playbook."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from agent import modargs
from agent.modargs import TUNER_BIOS, TUNER_CMDLINE, TUNER_OS, Module
from agent.nic import TUNER_NIC

REPO = Path(__file__).resolve().parent.parent
COPIED = re.compile(r"^\{\{ *[\w().|{} ]*\| *default\(([^()]*)\) *\}\}$")
MODULES = {
    "tuner_os": (TUNER_OS, "os.yml"),
    "tuner_cmdline": (TUNER_CMDLINE, "cmdline.yml"),
    "tuner_bios": (TUNER_BIOS, "bios.yml"),
    "tuner_nic": (TUNER_NIC, "nic.yml"),  # defined in the layer's own agent/nic.py
}


def _documentation(module: str) -> dict:
    tree = ast.parse((REPO / "playbooks" / "library" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            return yaml.safe_load(ast.literal_eval(node.value))["options"]
    raise AssertionError(f"{module} has no DOCUMENTATION")


def _task_args(playbook: str, module: str) -> dict:
    play = yaml.safe_load((REPO / "playbooks" / playbook).read_text())
    for task in play[0]["tasks"]:
        if module in task:
            return task[module]
    raise AssertionError(f"{playbook} has no {module} task")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_spec_docs_and_playbook_agree(name: str) -> None:
    mod, playbook = MODULES[name]
    assert mod.name == name
    source = (REPO / "playbooks" / "library" / f"{name}.py").read_text()
    assert f"argument_spec={mod.name.upper()}.spec()" in source  # generated, not copied
    spec = mod.spec()
    docs = _documentation(name)
    assert set(docs) == set(spec), "DOCUMENTATION lists exactly the module's arguments"
    for arg, d in docs.items():
        assert d["type"] == spec[arg]["type"], arg
        if "default" in spec[arg]:
            assert d.get("default") == spec[arg]["default"], arg
        if "choices" in spec[arg]:
            assert d.get("choices") == spec[arg]["choices"], arg
    args = _task_args(playbook, name)
    assert set(args) <= set(spec), "the playbook passes only the module's arguments"
    for arg, value in args.items():
        # a default lives in agent/modargs.py only: `{{ var | default(X) }}` passes the
        # variable or omits the argument (derived values such as `not insecure` are not copies)
        m = COPIED.match(str(value))
        if m and "default" in spec[arg]:
            assert m.group(1) == "omit", (playbook, arg, value)


def test_spec_is_ansible_shaped_and_defaults_are_copies() -> None:
    spec = TUNER_OS.spec()
    assert spec["mode"] == {"type": "str", "required": True, "choices": list(modargs.MODES)}
    assert spec["settings"] == {"type": "list", "default": [], "elements": "dict"}
    spec["settings"]["default"].append("x")  # a caller's change never reaches the definition
    assert TUNER_OS.spec()["settings"]["default"] == []
    assert TUNER_BIOS.spec()["password"] == {"type": "str", "no_log": True}


def test_check_refuses_unknown_names_and_choices() -> None:
    m = Module("t", {"mode": modargs.Arg("str", choices=("a", "b"))})
    assert m.check({"mode": "a"}) == {"mode": "a"}
    with pytest.raises(ValueError, match="no argument 'mdoe'"):
        m.check({"mdoe": "a"})
    with pytest.raises(ValueError, match="must be one of"):
        m.check({"mode": "c"})
    with pytest.raises(KeyError):
        m.default("mode")


def test_layers_and_options_take_their_defaults_from_the_definitions() -> None:
    from agent import layers
    from agent.cli import options
    from agent.layers.base import RunOptions
    from agent.layers.bios import BiosOptions

    assert BiosOptions().timeout == TUNER_BIOS.default("timeout") == options.BMC_TIMEOUT
    assert BiosOptions().poll == TUNER_BIOS.default("poll_interval")
    assert RunOptions().reboot_timeout == TUNER_BIOS.default("reset_timeout")
    assert options.LOCK_TIMEOUT_S == TUNER_OS.default("lock_timeout")
    assert TUNER_CMDLINE.default("lock_timeout") == TUNER_OS.default("lock_timeout")
    for cls in layers.classes():  # every registered layer's module has its definition
        assert cls.module in {m.name for m, _ in MODULES.values()}
