#!/usr/bin/env bash
# Set up, lint, type-check and run every test. The fleet tests use a real sshd per simulated
# node: on Debian as root, OpenSSH's server is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server) \
        >/dev/null
fi
./scripts/setup.sh
.venv/bin/ruff check agent tests playbooks bench
.venv/bin/mypy agent
# Two pytest workers (pytest-xdist), one test file at a time each (--dist loadfile: a file's
# module-scoped fleet starts once): the fleet tests mostly wait on Ansible, sshd and the BMCs.
# The longest files start first and a few long tests are units of their own
# (tests/xdist_plan.py, seconds in tests/durations.json). TUNER_TEST_WORKERS=0 runs serially;
# docs/performance.md has the figures.
workers=${TUNER_TEST_WORKERS:-2}
xdist=()
if [ "$workers" != 0 ]; then
    xdist=(-n "$workers" --dist loadfile)
fi
if [ $# -eq 0 ]; then
    # everything: the parallel run, then the tests marked serial, alone on the machine
    .venv/bin/python -m pytest -q "${xdist[@]}" -m "not serial"
    .venv/bin/python -m pytest -q -p no:xdist -m serial
else
    .venv/bin/python -m pytest -q "${xdist[@]}" "$@"
fi
