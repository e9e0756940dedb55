"""`tuner launch`: start a multi-node run on exactly the usable GPUs (docs/launch.md).

plan.py is pure (head, ranks, shares, env and command per node); ssh.py and run.py are the
edges (fabric over SSH, process groups, stopping); probe.py is the pyzmq dress rehearsal of
the MLPerf multi-node topology that runs on the nodes.
"""
