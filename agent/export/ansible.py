"""Ansible inventory (YAML, or JSON with the same structure: Ansible's yaml plugin reads
both) with groups usable, degraded, excluded, failed, head, workers.

Host variables: the address variables (ansible_host, ansible_port, ansible_user) and
tuner_usable_gpus (runtime indices), tuner_gpu_mask (ROCR_VISIBLE_DEVICES), tuner_status,
tuner_reason. Checked by `ansible-inventory -i FILE --list` in tests/test_export.py.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from agent.export import gpu_mask, pick_head
from agent.gpu.gate import GpuInventory, NodeEntry


def hostvars(n: NodeEntry) -> dict[str, Any]:
    hv: dict[str, Any] = {}
    if n.address:
        hv["ansible_host"] = n.address
    if n.port:
        hv["ansible_port"] = n.port
    if n.user:
        hv["ansible_user"] = n.user
    hv["tuner_status"] = n.status
    hv["tuner_reason"] = n.reason
    hv["tuner_usable_gpus"] = [g.index for g in n.usable if g.index is not None]
    hv["tuner_usable_gpu_uuids"] = [g.uuid for g in n.usable if g.uuid]
    hv["tuner_gpu_mask"] = gpu_mask(n)
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
            "hosts": {n.name: hostvars(n) for n in inv.nodes},
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
        return json.dumps(doc, indent=2) + "\n"
    head = "# Written by `tuner export --format ansible` from a tuner usable-GPU inventory.\n"
    # libyaml's dumper when PyYAML has it: the pure-Python one takes a minute on 10,000 hosts
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return head + yaml.dump(doc, Dumper=dumper, sort_keys=False)
