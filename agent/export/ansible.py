"""Ansible inventory (YAML, or JSON with the same structure: Ansible's yaml plugin reads
both) with groups usable, degraded, excluded, failed, head, workers.

Host variables: the address variables (ansible_host, ansible_port, ansible_user) and
tuner_usable_gpus (runtime indices), tuner_gpu_mask (ROCR_VISIBLE_DEVICES), tuner_status,
tuner_reason. Checked by `ansible-inventory -i FILE --list` in tests/test_export.py.

Every string host variable came from a report, so from nodes: it is marked unsafe
(agent/export/encode.py: `!unsafe` in YAML, `{"__ansible_unsafe": ...}` in JSON), and
Ansible never renders a `{{ }}` in it as a template (tests/test_trust.py runs a playbook on
the export to prove it). Host names are checked to be host names.
"""

from __future__ import annotations

import json
from typing import Any

from agent.export import gpu_mask, pick_head
from agent.export.encode import (
    ansible_json,
    ansible_unsafe,
    hostname,
    user_name,
    yaml_block,
)
from agent.gpu.gate import GpuInventory, NodeEntry


def hostvars(n: NodeEntry) -> dict[str, Any]:
    hv: dict[str, Any] = {}
    # how to reach the node: host names, ports and user names only (never a template)
    if n.address:
        hv["ansible_host"] = hostname(n.address, f"node {n.name}: address")
    if n.port:
        hv["ansible_port"] = n.port
    if n.user:
        hv["ansible_user"] = user_name(n.user, f"node {n.name}: user")
    # what the gate said: text from nodes, marked unsafe
    tv: dict[str, Any] = {
        "tuner_status": n.status,
        "tuner_reason": n.reason,
        "tuner_usable_gpus": [g.index for g in n.usable if g.index is not None],
        "tuner_usable_gpu_uuids": [g.uuid for g in n.usable if g.uuid],
        "tuner_gpu_mask": gpu_mask(n),
    }
    hv.update(ansible_unsafe(tv))
    return hv


def groups(inv: GpuInventory) -> dict[str, list[str]]:
    head = pick_head(inv)
    usable = [n.name for n in inv.nodes if n.usable]
    return {
        "usable": usable,
        "degraded": [n.name for n in inv.nodes if n.status == "degraded"],
        "excluded": [n.name for n in inv.nodes if n.status == "excluded"],
        "failed": [n.name for n in inv.nodes if n.status == "failed"],
        "head": [head.name] if head else [],
        "workers": [u for u in usable if head is None or u != head.name],
    }


def render(inv: GpuInventory, as_json: bool = False) -> str:
    doc = {
        "all": {
            "hosts": {
                hostname(n.name, f"nodes.{i}.name"): hostvars(n) for i, n in enumerate(inv.nodes)
            },
            "vars": {
                "tuner_gate_passed": inv.gate.passed,
                "tuner_usable_gpus_total": inv.usable_gpus,
            },
            "children": {
                g: {"hosts": {h: None for h in hosts}} for g, hosts in groups(inv).items()
            },
        }
    }
    if as_json:
        return json.dumps(ansible_json(doc), indent=2) + "\n"
    head = "# Written by `tuner export --format ansible` from a tuner usable-GPU inventory.\n"
    # written directly (encode.yaml_block), what PyYAML's dumper gives, several times faster
    return head + yaml_block(doc)
