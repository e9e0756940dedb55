"""The SSH edge of `tuner launch`: fabric connections that verify host keys, the remote
command line (every value quoted, the command in its own process group), and stopping a
node's whole process group.

Host keys are verified by default: paramiko's RejectPolicy with the known_hosts file the
inventory names (`-o UserKnownHostsFile=...` in ansible_ssh_common_args / _extra_args), else
~/.ssh/known_hosts. Fabric alone would accept any key (AutoAddPolicy).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.errors import BadInput
from agent.inventory import InventoryHost
from agent.launch.plan import OTHER_MASKS, NodePlan

PGID_TAG = "tuner-pgid"
EXIT_TAG = "tuner-exit"
# The command's own wrapper. It runs as the new session's leader (setsid), so its PID is the
# process group id: printed first; then the command; then its exit status. The status line
# matters: a background child that keeps the output open would otherwise hide the exit until
# the channel closes.
WRAPPER = f'echo "{PGID_TAG} $$"; "$@"; rc=$?; echo "{EXIT_TAG} $rc"; exit $rc'
# The watchdog around it, tied to the controller's connection: the node's sshd keeps the
# channel's stdin open while tuner's SSH connection lives (tuner never writes to it or closes
# it). When the controller dies, whatever killed it (SIGKILL included), the kernel closes its
# socket, sshd closes the channel and the watchdog's read sees end of file: it sends TERM to
# the command's process group, and KILL 5 s later. fd 3 keeps the channel's stdin: a
# background list in a non-interactive shell gets /dev/null as its stdin (POSIX). The command
# gets /dev/null, so nothing it does can consume the watchdog's end of file. `setsid` started
# in the background is not a process group leader, so it does not fork: $! is the new group.
OUTER = (
    "exec 3<&0; "
    f"setsid sh -c '{WRAPPER}' tuner-launch \"$@\" </dev/null 3<&- & g=$!; "
    "{ while read -r _ <&3; do :; done; kill -TERM -$g 2>/dev/null; sleep 5; "
    "kill -KILL -$g 2>/dev/null; } </dev/null >/dev/null 2>&1 & w=$!; "
    "exec 3<&-; wait $g; rc=$?; { kill $w; wait $w; } >/dev/null 2>&1; exit $rc"
)


class Target(BaseModel):
    name: str
    address: str
    port: int | None
    user: str | None
    key_file: str | None
    known_hosts: str | None
    strict: bool = True
    python: str
    root: str


def _ssh_options(args: str) -> dict[str, str]:
    out: dict[str, str] = {}
    words = shlex.split(args)
    for i, w in enumerate(words):
        opt = None
        if w == "-o" and i + 1 < len(words):
            opt = words[i + 1]
        elif w.startswith("-o") and len(w) > 2:
            opt = w[2:]
        if opt and "=" in opt:
            k, v = opt.split("=", 1)
            out[k.strip().lower()] = v.strip()
    return out


def target_for(h: InventoryHost) -> Target:
    if h.vars.get("ansible_connection") == "local":
        raise BadInput(
            f"host {h.name!r}: ansible_connection is local; tuner launch reaches nodes over SSH",
            file=h.vars.get("inventory_file"),
        )
    opts: dict[str, str] = {}
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        v = h.vars.get(key)
        if isinstance(v, str) and v.strip():
            try:
                opts.update(_ssh_options(v))
            except ValueError as e:
                raise BadInput(f"host {h.name!r}: {key} cannot be parsed: {e}") from e
    port = h.vars.get("ansible_port")
    user = h.vars.get("ansible_user")
    from agent.inventory import node_python

    python = node_python(h)
    return Target(
        name=h.name,
        address=h.address,
        port=int(port) if port is not None and str(port).isdigit() else None,
        user=str(user) if user else None,
        key_file=h.key_file,
        known_hosts=opts.get("userknownhostsfile"),
        strict=opts.get("stricthostkeychecking", "yes").lower() != "no",
        python=str(python),
        root=h.root,
    )


PROBE_FILE = Path(__file__).with_name("probe.py")
# The probe goes to the node inside its command line: its source, zlib-compressed and base64
# encoded, run by the node's Python with `-c` (it needs only the standard library, pyzmq and
# amdsmi, which `tuner provision` installs). No file is written on the node, and the probe a
# node runs is always the controller's version.
PROBE_BOOT = (
    "import base64,sys,zlib;sys.argv[0]='tuner_probe.py';"
    "exec(compile(zlib.decompress(base64.b64decode('{blob}')),'tuner_probe.py','exec'))"
)


def probe_blob() -> str:
    import base64
    import zlib

    return base64.b64encode(zlib.compress(PROBE_FILE.read_bytes(), 9)).decode()


def probe_argv(python: str, root: str) -> list[str]:
    """The probe's command on a node: its Python, `-c` with the probe's source, its root."""
    return [python, "-c", PROBE_BOOT.format(blob=probe_blob()), "--root", root]


def short_probe(line: str) -> str:
    """`line` with the probe's source replaced by its name and size (for people)."""
    blob = probe_blob()
    return line.replace(blob, f"<tuner_probe.py: {PROBE_FILE.stat().st_size} bytes>")


def remote_command(p: NodePlan) -> str:
    """The line the node's shell runs. Every value is quoted (shlex.quote); env -u drops
    any other GPU mask the login environment may set; setsid gives the command its own
    session and process group, the watchdog (OUTER) ends that group when the controller's
    connection goes, and the command's exit status comes back."""
    env = [f"{k}={v}" for k, v in p.env.items()]
    unset = [w for m in OTHER_MASKS for w in ("-u", m)]
    words = ["sh", "-c", OUTER, "tuner-launch", "env", *unset, *env, *p.argv]
    return "exec " + " ".join(shlex.quote(w) for w in words)


def stop_command(pgid: int) -> str:
    """TERM to the whole group, up to 5 s for it to go, then KILL."""
    g = int(pgid)
    return (
        f"kill -TERM -{g} 2>/dev/null; i=0; "
        f"while kill -0 -{g} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
        f"kill -KILL -{g} 2>/dev/null; true"
    )


def connect(t: Target, timeout: float = 15) -> Any:
    """A fabric Connection that verifies the host key (RejectPolicy) before anything runs."""
    import paramiko
    from fabric import Config, Connection

    kwargs: dict[str, Any] = {"allow_agent": True, "look_for_keys": t.key_file is None}
    if t.key_file:
        kwargs["key_filename"] = [t.key_file]
    c = Connection(
        host=t.address,
        user=t.user,
        port=t.port or 22,
        connect_timeout=int(timeout),
        connect_kwargs=kwargs,
        config=Config(overrides={"load_ssh_configs": False}),
    )
    if t.strict:
        c.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if t.known_hosts:
            c.client.load_host_keys(str(Path(t.known_hosts).expanduser()))
        else:
            c.client.load_system_host_keys()
    return c
