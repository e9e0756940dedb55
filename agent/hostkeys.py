"""SSH host-key policy (docs/security.md): a leaf module (stdlib and agent.errors only), so
that the inventory's checks (agent/inventory.py) and the runner (agent/runner.py) share it
without importing each other.

Host keys are verified unless TUNER_SSH_HOST_KEY_CHECKING=no; tuner's ssh_args put
StrictHostKeyChecking=yes first; ssh's host-key failures are said plainly."""

from __future__ import annotations

import os

# Opt-out of SSH host key verification (docs/security.md): only this exact variable.
HOST_KEYS_ENV = "TUNER_SSH_HOST_KEY_CHECKING"


def host_keys_checked() -> bool:
    """SSH host keys are verified unless TUNER_SSH_HOST_KEY_CHECKING=no (docs/security.md)."""
    v = os.environ.get(HOST_KEYS_ENV, "").strip().lower()
    if v in ("", "yes", "true", "1", "on"):
        return True
    if v in ("no", "false", "0", "off"):
        return False
    from agent.errors import BadInput

    raise BadInput(f"must be yes or no, got {v[:40]!r}", field=HOST_KEYS_ENV)


def ssh_args(check_keys: bool) -> str:
    """Ansible's ssh_args: they come first on ssh's command line, and ssh takes the first
    value of an option, so StrictHostKeyChecking=yes here wins over any inventory's."""
    args = "-C -o ControlMaster=auto -o ControlPersist=300s"
    return args + (" -o StrictHostKeyChecking=yes" if check_keys else "")


def host_key_reason(msg: str) -> str:
    """ssh's host key failures, said plainly (ssh's own text is mostly a banner)."""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in msg:
        return (
            "SSH host key changed: the key this host offers is not the one in known_hosts "
            "(refused; if the host was reinstalled, update known_hosts)"
        )
    if "Host key verification failed" in msg or "No matching host key" in msg:
        return (
            "SSH host key not verified: this host's key is not in known_hosts (refused; add it "
            "with ssh-keyscan after checking its fingerprint)"
        )
    return ""
