"""Active diagnostics (`tuner check|ready --level 2|3`): AMD's own test tools per node under
one time budget, their real output parsed, verdicts per GPU and per link, and at level 3 an
all-reduce across the nodes (docs/diagnostics.md).

| module | does |
| --- | --- |
| `parse.py` | the tools' output formats (RVS, rccl-tests, TransferBench), pure |
| `policy.py` | checks/diagnostics.yml: tests, levels, costs, thresholds with sources |
| `plan.py` | which tests fit the budget, most telling per second first; what was skipped |
| `evaluate.py` | parsed output -> per-GPU and per-link verdicts (pass, warn, fail, unknown) |
| `narrow.py` | a failing multi-GPU test narrowed to the GPU at fault (leave-one-out) |
| `stragglers.py` | fleet-relative outliers (median absolute deviation) |
| `node.py` | node side, stdlib: find the tools, run one under a deadline, kill its group |
| `cluster.py` | across nodes: bisect over nodes (stdlib; launching node and controller) |
| `run.py` | the fleet run (Ansible), the cross-node phase, the join with level 1 |
| `local.py` | the same on this node, in-process (`check --local --level N`) |
"""
