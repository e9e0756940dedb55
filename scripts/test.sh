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
.venv/bin/python -m pytest -q "$@"
