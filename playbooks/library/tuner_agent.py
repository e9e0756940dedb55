#!/usr/bin/python
"""Ansible module: install, remove or report tuner's node agent on one host.

The agent's code is module_utils/tuner_nodeagent.py (= agent/nodeagent.py) and
module_utils/tuner_knobs.py (= agent/knobs.py): this module writes their source under
/opt/tuner/lib/tuner_agent/ on the node, with the systemd unit that runs them.
"""

from __future__ import annotations

import inspect

from ansible.module_utils import tuner_knobs, tuner_nodeagent
from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: tuner_agent
short_description: Install, remove or report tuner's node agent under a host root
description:
  - The node agent re-applies tuner's last apply at boot and on udev events and writes
    Prometheus textfile metrics; this module installs its systemd unit, removes it or
    reports its state.
author: [tuner engineers]
options:
  mode:
    description: install, remove or status.
    type: str
    choices: [install, remove, status]
    required: true
  root:
    description: The host root.
    type: path
    default: /
  sim:
    description: A simulated node (no systemctl).
    type: bool
    default: false
  python:
    description: The Python the unit runs the agent with.
    type: str
    default: /opt/tuner/venv/bin/python
  textfile_dir:
    description: node_exporter's textfile collector folder.
    type: str
    default: /var/lib/prometheus/node-exporter
"""

EXAMPLES = r"""
- name: Install the node agent
  tuner.tuner.tuner_agent:
    mode: install
"""

RETURN = r"""
results:
  description: >-
    One row with the agent's state (installed, enabled, active, last result, files
    written).
  returned: always
  type: list
  elements: dict
"""

UNIT = tuner_nodeagent.UNIT_NAME


def _systemctl(module: AnsibleModule, *args: str, ok_rc: tuple[int, ...] = (0,)) -> str:
    rc, out, err = module.run_command(["systemctl", *args])
    if rc not in ok_rc:
        raise tuner_knobs.KnobError(f"systemctl {' '.join(args)}: rc {rc}: {(err or out).strip()}")
    return str(out).strip()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["install", "remove", "status"], "required": True},
            "root": {"type": "path", "default": "/"},
            "sim": {"type": "bool", "default": False},
            "python": {"type": "str", "default": tuner_nodeagent.VENV_PYTHON},
            "textfile_dir": {"type": "str", "default": tuner_nodeagent.TEXTFILE_DIR},
        },
        supports_check_mode=True,
    )
    p = module.params
    host = tuner_knobs.Host(root=p["root"], sim_kernel=p["sim"])
    # systemd is the node's own (not under a root): only on a real node at /.
    real = not p["sim"] and p["root"] == "/"
    try:
        if not p["python"].startswith("/") or any(c.isspace() for c in p["python"]):
            raise tuner_knobs.KnobError(
                f"python: an absolute path without spaces, got {p['python']!r}"
            )
        if p["mode"] == "install":
            sources = {
                "knobs.py": inspect.getsource(tuner_knobs),
                "nodeagent.py": inspect.getsource(tuner_nodeagent),
            }
            r = tuner_nodeagent.install(
                host, sources, p["python"], p["sim"], module.check_mode, p["textfile_dir"]
            )
            if real and not module.check_mode:
                if r["changed"]:
                    _systemctl(module, "daemon-reload")
                _systemctl(module, "enable", UNIT)
                _systemctl(module, "restart" if r["changed"] else "start", UNIT)
                r["enabled"] = True
            r["status"] = (
                ("would install" if module.check_mode else "installed")
                if r["changed"]
                else "unchanged"
            )
        elif p["mode"] == "remove":
            if real and not module.check_mode and host.exists(tuner_nodeagent.UNIT_PATH):
                _systemctl(module, "disable", "--now", UNIT)
            r = tuner_nodeagent.remove(host, module.check_mode, p["textfile_dir"])
            if real and r["changed"] and not module.check_mode:
                _systemctl(module, "daemon-reload")
            r["status"] = (
                ("would remove" if module.check_mode else "removed")
                if r["changed"]
                else "not installed"
            )
        else:
            r = tuner_nodeagent.status(host, p["textfile_dir"])
            if real and r["installed"]:
                r["active"] = _systemctl(module, "is-active", UNIT, ok_rc=(0, 3, 4))
                r["enabled"] = _systemctl(module, "is-enabled", UNIT, ok_rc=(0, 1, 4))
            r["changed"] = False
    except (tuner_knobs.KnobError, OSError) as e:
        module.fail_json(msg=f"tuner_agent {p['mode']} failed: {e}", results=[])
        return
    module.exit_json(changed=bool(r.pop("changed")), results=[r])


if __name__ == "__main__":
    main()
