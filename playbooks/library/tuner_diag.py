#!/usr/bin/python
"""Ansible module: run tuner's planned diagnostics on a node (AMD's RVS and rccl-tests).

Stresses the GPUs but changes no setting. All the work is in module_utils/tuner_diag_node.py
(= agent/diag/node.py); the output is parsed and judged on the controller."""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tuner_diag_node import run_cluster, run_plan

DOCUMENTATION = r"""
module: tuner_diag
short_description: Run tuner's active GPU diagnostics on a node
description:
  - Runs the planned AMD tools (ROCm Validation Suite modules, rccl-tests all_reduce_perf) on
    the node's GPUs, each under its deadline (its process group killed past it), and returns
    their raw output; an all-reduce below the threshold is rerun without each GPU in turn.
    Stresses the GPUs, changes no setting. Parsing and verdicts are tuner's, on the controller.
author: [tuner engineers]
options:
  root:
    description: The host root the tools are looked for under.
    type: path
    default: /
  tests:
    description: >-
      The planned tests in order, each {name, deadline} (rvs.pbqt, rvs.pebb, rvs.babel,
      rvs.gst, rvs.iet, rccl.all_reduce).
    type: list
    elements: dict
    default: []
  gpus:
    description: The GPUs to test, each {bdf, hip} (the HIP index with all GPUs visible).
    type: list
    elements: dict
    default: []
  narrow:
    description: Rerun a failing all-reduce without each GPU ({message_bytes, min_busbw}).
    type: dict
  budget:
    description: Seconds the tests may take on this node in all.
    type: float
  rvs:
    description: The rvs binary, when not where ROCm installs it.
    type: path
  all_reduce_perf:
    description: The rccl-tests all_reduce_perf binary, when not in /opt/rccl-tests/build.
    type: path
  transferbench:
    description: The TransferBench binary, when not in /opt/rocm/bin or /opt/transferbench/bin.
    type: path
  mpirun:
    description: The mpirun (Open MPI) that launches the cross-node all-reduce.
    type: path
  cluster:
    description: >-
      Level 3 across nodes, run from this node: {hosts, slots (host -> ranks), message_bytes,
      relative, floor, max_runs, deadline, budget}. The all-reduce under mpirun over the
      hosts, bisected over them when slow.
    type: dict
"""

EXAMPLES = r"""
- name: Level-2 diagnostics on a node
  tuner.tuner.tuner_diag:
    tests: [{name: rvs.pbqt, deadline: 90}, {name: rccl.all_reduce, deadline: 120}]
    gpus: [{bdf: "0000:05:00.0", hip: 0}, {bdf: "0000:15:00.0", hip: 1}]
"""

RETURN = r"""
facts:
  description: >-
    {runs: [{test, rc, seconds, timed_out, missing, output}], python}: each tool run as it
    went (cross-node runs are named rccl.all_reduce.cluster/<host,host,...>) and the
    interpreter the module ran under (the provisioned runtime).
  returned: always
  type: dict
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "tests": {"type": "list", "elements": "dict", "default": []},
            "gpus": {"type": "list", "elements": "dict", "default": []},
            "narrow": {"type": "dict", "default": None},
            "budget": {"type": "float", "default": None},
            "rvs": {"type": "path", "default": None},
            "all_reduce_perf": {"type": "path", "default": None},
            "transferbench": {"type": "path", "default": None},
            "mpirun": {"type": "path", "default": None},
            "cluster": {"type": "dict", "default": None},
        },
        supports_check_mode=False,
    )
    p = module.params
    tools = {k: p[k] for k in ("rvs", "all_reduce_perf", "transferbench", "mpirun") if p[k]}
    if p["cluster"]:
        runs = run_cluster(p["root"], p["cluster"], tools)
    else:
        runs = run_plan(p["root"], p["tests"], p["gpus"], p["narrow"], p["budget"], tools)
    module.exit_json(changed=False, facts={"runs": runs, "python": sys.executable})


if __name__ == "__main__":
    main()
