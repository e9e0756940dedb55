"""The kernel command line through the bootloader configuration, on one host (stdlib only).

Shipped to hosts as ``playbooks/module_utils/tuner_bootloader.py`` (a link to this file)
next to the ``tuner_cmdline`` module; it builds on ``tuner_knobs`` (the host root, the lock,
the originals record). One implementation serves apply, verify and rollback:

* ``detect`` picks the host's tool: ``grubby`` where BLS entries are the configuration
  (RHEL 8+), else a GRUB drop-in ``/etc/default/grub.d/90-tuner.cfg`` regenerated with
  ``update-grub`` (Debian/Ubuntu) or ``grub2-mkconfig -o ...`` -- only when that
  grub-mkconfig reads ``/etc/default/grub.d/*.cfg`` (a Debian patch; checked in its text).
  In the simulator (``sim``) only the node tree's own ``/usr/sbin/update-grub``, a marked
  stdlib script (agent/sim/grubsim.py), is ever run, with the node root as argument.
* ``apply`` saves the originals of every file it writes (``originals.json``, entries tagged
  ``layer: cmdline``), writes, regenerates; a failed regeneration puts the files back.
* ``verify`` compares the configuration and ``/proc/cmdline``: written but not booted is
  ``pending`` (a reboot applies it), booted is ``ok``.
* ``rollback`` restores the saved files byte for byte and regenerates.

Parameters are compared as whole tokens (``pci=realloc=off`` and ``pci=bfsort`` are two
parameters). ``remove`` of a bare ``name`` drops every ``name`` / ``name=...`` token except the
ones the profile adds; ``remove`` of ``name=value`` drops that token only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from typing import Any

try:  # on a host, as Ansible module_utils
    from ansible.module_utils.tuner_knobs import (  # type: ignore[import-not-found,unused-ignore]
        ORIGINALS,
        STATE_DIR,
        TMP_MARK,
        Host,
        KnobError,
        load_originals,
        locked,
        save_originals,
    )
except ImportError:  # on the controller (tests, docs)
    from agent.knobs import (
        ORIGINALS,
        STATE_DIR,
        TMP_MARK,
        Host,
        KnobError,
        load_originals,
        locked,
        save_originals,
    )

LAYER = "cmdline"
GRUB_DEFAULT = "/etc/default/grub"
DROPIN_DIR = "/etc/default/grub.d"
DROPIN = DROPIN_DIR + "/90-tuner.cfg"
PROC_CMDLINE = "/proc/cmdline"
BLS_DIR = "/boot/loader/entries"
SIM_MARK = "tuner-sim-update-grub"  # the simulator's update-grub carries this line
CMDLINE_VARS = ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")

# A kernel parameter: `name` or `name=value`; no quotes, whitespace or shell metacharacters.
TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-\[\]]*(=[A-Za-z0-9_.,:=+\-/@%~^]*)?$")
MAX_TOKEN = 256


class BootError(KnobError):
    """The bootloader configuration could not be read, written or regenerated."""


def name_of(token: str) -> str:
    return token.split("=", 1)[0]


# Parameters that change what boots or hand the machine a shell: adding or removing one is
# refused unless the operator names it (`--allow-boot-critical NAME`). Sources, each named in
# docs/kernel-cmdline.md "Boot-critical parameters": the kernel's kernel-parameters.txt
# (init, rdinit, root*, ro/rw, initrd, resume; words the kernel does not know go to init),
# systemd(1) and kernel-command-line(7) (the boot target, runlevels, emergency/rescue),
# systemd-debug-generator(8) (debug shell on tty9, masks, wants), systemd-run-generator(8),
# dracut.cmdline(7) (rd.break, rd.shell, rd.cmdline=ask) and initramfs-tools(7) (break=, boot=).
BOOT_CRITICAL: dict[str, str] = {
    "init": "runs another program as init",
    "rdinit": "runs another program as the initramfs' init",
    "root": "selects the root file system",
    "rootfstype": "changes how the root file system is mounted",
    "rootflags": "changes how the root file system is mounted",
    "nfsroot": "boots from another root file system",
    "ro": "changes whether the root file system is mounted read-only",
    "rw": "changes whether the root file system is mounted read-write",
    "initrd": "boots another initial ramdisk",
    "noinitrd": "boots without the initial ramdisk",
    "resume": "resumes another hibernation image instead of booting",
    "single": "boots into rescue mode (a root shell)",
    "s": "boots into rescue mode (a root shell)",
    "S": "boots into rescue mode (a root shell)",
    "1": "boots into rescue mode (a root shell)",
    "2": "boots another runlevel target",
    "3": "boots another runlevel target",
    "4": "boots another runlevel target",
    "5": "boots another runlevel target",
    "emergency": "boots into emergency mode (a root shell)",
    "rescue": "boots into rescue mode (a root shell)",
    "systemd.unit": "boots another target (emergency, rescue, ...)",
    "rd.systemd.unit": "boots the initramfs into another target",
    "systemd.debug_shell": "starts a root shell on tty9 at boot",
    "rd.systemd.debug_shell": "starts a root shell on tty9 in the initramfs",
    "systemd.mask": "masks units at boot",
    "rd.systemd.mask": "masks units in the initramfs",
    "systemd.wants": "starts more units at boot",
    "rd.systemd.wants": "starts more units in the initramfs",
    "systemd.run": "runs a command at boot",
    "systemd.run_success_action": "acts after the systemd.run command",
    "systemd.run_failure_action": "acts after the systemd.run command",
    "systemd.break": "stops the boot in a debug shell",
    "systemd.early_core_pattern": "writes early core dumps to a path",
    "rd.break": "stops the initramfs in a shell",
    "rd.shell": "drops to a shell when the initramfs fails",
    "rd.emergency": "boots the initramfs into emergency mode",
    "rd.rescue": "boots the initramfs into rescue mode",
    "rd.cmdline": "asks on the console for more parameters",
    "break": "stops the initramfs in a shell (initramfs-tools)",
    "boot": "changes the initramfs' boot script (initramfs-tools)",
}
# Boolean shell switches whose "off" value only takes a shell away.
_OFF_OK = ("rd.shell", "systemd.debug_shell", "rd.systemd.debug_shell")
_OFF = ("0", "no", "false", "off", "n")


def param_key(name: str) -> str:
    """systemd reads '-' and '_' in parameter names alike (systemd.debug-shell)."""
    return name.replace("-", "_")


def boot_critical(token: str) -> str:
    """Why adding or removing `token` changes what boots or opens a shell ('' when not)."""
    name, _, value = token.partition("=")
    key = param_key(name)
    why = BOOT_CRITICAL.get(key, "")
    if why and key in _OFF_OK and "=" in token and value.lower() in _OFF:
        return ""
    return why


def critical_refused(add: list[str], remove: list[str], allow: list[str]) -> list[str]:
    """The boot-critical changes `allow` does not name: 'adding init=/bin/sh (runs ...)'.
    `allow` names a parameter (`init`) or one exact token (`init=/sbin/tini`)."""
    names = {param_key(a) for a in allow}
    out = []
    for verb, tokens in (("adding", add), ("removing", remove)):
        for t in tokens:
            why = boot_critical(t)
            if why and t not in allow and param_key(name_of(t)) not in names:
                out.append(f"{verb} {t} ({why})")
    return out


def check_tokens(add: list[str], remove: list[str], allow: list[str] | None = None) -> str:
    """'' or what is wrong with the parameters (the controller checked them already)."""
    for t in [*add, *remove]:
        if not isinstance(t, str) or len(t) > MAX_TOKEN or not TOKEN.fullmatch(t):
            return f"not a kernel parameter: {t!r}"
    both = sorted(set(add) & set(remove))
    if both:
        return f"added and removed: {', '.join(both)}"
    refused = critical_refused(add, remove, list(allow or []))
    if refused:
        return (
            f"boot-critical, refused: {'; '.join(refused)}; name it with "
            "--allow-boot-critical to go ahead"
        )
    return ""


def wanted_tokens(current: list[str], add: list[str], remove: list[str]) -> list[str]:
    """A command line after the profile: removed tokens out, added ones appended once."""
    out = [t for t in current if not removes(t, add, remove)]
    for t in add:
        if t not in out:
            out.append(t)
    return out


def removes(token: str, add: list[str], remove: list[str]) -> bool:
    if token in add:
        return False
    return any(token == r or ("=" not in r and name_of(token) == r) for r in remove)


def booted_status(tokens: list[str], add: list[str], remove: list[str]) -> tuple[bool, list[str]]:
    """Is the profile in effect in these (booted) tokens -> (ok, what is off)."""
    off = [f"+{t}" for t in add if t not in tokens]
    off += [f"-{t}" for t in tokens if removes(t, add, remove)]
    return not off, off


# ---------------------------------------------------------------------------------------
# /etc/default/grub: a shell file. Only plain assignments of the two command-line variables
# are read (NAME="...", NAME='...', NAME=word); a value that needs the shell ($, `) is refused.

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_assignments(text: str, where: str) -> dict[str, str]:
    """The GRUB_CMDLINE_* values a shell file sets (last wins)."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _ASSIGN.match(line)
        if not m or m.group(1) not in CMDLINE_VARS:
            continue
        raw = m.group(2).strip()
        if any(c in raw for c in "$`\\"):
            raise BootError(
                f"{where}:{n}: {m.group(1)} uses the shell ({raw[:60]!r}); tuner only edits "
                "plain values: set it to a plain quoted value first"
            )
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as e:
            raise BootError(f"{where}:{n}: cannot read {m.group(1)}: {e}") from e
        out[m.group(1)] = " ".join(" ".join(words).split())
    return out


def dropin_text(base: dict[str, str], add: list[str], remove: list[str]) -> str:
    """The drop-in: additions appended to GRUB_CMDLINE_LINUX; a variable holding a removed
    parameter is set again without it (computed from /etc/default/grub now: verify notices
    when that file changes later, and apply writes it again)."""
    lines = ["# Written by tuner (kernel command line). Rolled back by `tuner rollback`."]
    for var in CMDLINE_VARS:
        cur = base.get(var, "").split()
        kept = [t for t in cur if not removes(t, add, remove)]
        if kept != cur:
            lines.append(f'{var}="{" ".join(kept)}"')
    have = set(base.get("GRUB_CMDLINE_LINUX", "").split()) | set(
        base.get("GRUB_CMDLINE_LINUX_DEFAULT", "").split()
    )
    extra = [t for t in add if t not in have]
    if extra:
        lines.append(f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {" ".join(extra)}"')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The host's tool.


def _is_file(host: Host, p: str) -> bool:
    return os.path.isfile(host.path(p))


def _reads_dropins(host: Host, tool: str) -> bool:
    try:
        return "default/grub.d" in host.read(tool)
    except KnobError:
        return False


def detect(host: Host, sim: bool) -> dict[str, Any]:
    """Which tool regenerates this host's boot configuration -> {kind, argv, ...}."""
    if sim:
        tool = "/usr/sbin/update-grub"
        real = host.path(tool)
        if os.path.islink(real) or not os.path.isfile(real):
            raise BootError(f"simulated node: {tool} is not the simulator's script")
        if SIM_MARK not in host.read(tool):
            raise BootError(f"simulated node: {tool} is not the simulator's script (no mark)")
        # never the machine's tools: the node tree's script, told where the node root is
        return {"kind": "update-grub (simulated)", "argv": [sys.executable, real, host.root]}
    for grubby in ("/usr/sbin/grubby", "/sbin/grubby"):
        if _is_file(host, grubby) and os.path.isdir(host.path(BLS_DIR)):
            return {"kind": "grubby", "argv": [host.path(grubby)]}
    if _is_file(host, "/usr/sbin/update-grub"):
        mk = "/usr/sbin/grub-mkconfig"
        if not _reads_dropins(host, mk):
            raise BootError(f"{mk} does not read {DROPIN_DIR}/*.cfg: tuner cannot add a drop-in")
        return {"kind": "update-grub", "argv": [host.path("/usr/sbin/update-grub")]}
    for mk, cfg in (
        ("/usr/sbin/grub2-mkconfig", "/boot/grub2/grub.cfg"),
        ("/usr/sbin/grub-mkconfig", "/boot/grub/grub.cfg"),
    ):
        if _is_file(host, mk):
            if not _reads_dropins(host, mk):
                raise BootError(
                    f"{mk} does not read {DROPIN_DIR}/*.cfg (and no grubby with BLS entries): "
                    "tuner cannot change this host's kernel command line"
                )
            return {"kind": os.path.basename(mk), "argv": [host.path(mk), "-o", host.path(cfg)]}
    raise BootError(
        "no supported bootloader tool: grubby with BLS entries, update-grub or grub2-mkconfig"
    )


def _run(argv: list[str]) -> None:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BootError(f"{os.path.basename(argv[0])} failed: {e}") from e
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BootError(
            f"{' '.join(os.path.basename(a) for a in argv[:2])} exited {p.returncode}: "
            + " / ".join(tail)
        )


# ---------------------------------------------------------------------------------------
# Observe: the configuration tuner would write, and what the node booted with.


def _bls_entries(host: Host) -> list[str]:
    return [p for p in host.glob(BLS_DIR + "/*.conf") if not p.endswith("rescue.conf")]


def _bls_options(host: Host, path: str) -> list[str]:
    for line in host.read(path).splitlines():
        if line.startswith("options "):
            return line.split()[1:]
    return []


def observe(host: Host, add: list[str], remove: list[str], sim: bool) -> dict[str, Any]:
    """-> {tool, files: {path: wanted content or None}, config_ok, booted, booted_ok, off}."""
    tool = detect(host, sim)
    out: dict[str, Any] = {"tool": tool["kind"], "argv": tool["argv"], "files": {}}
    if tool["kind"] == "grubby":
        entries = _bls_entries(host)
        if not entries:
            raise BootError(f"no boot entries in {BLS_DIR}")
        oks = [booted_status(_bls_options(host, e), add, remove)[0] for e in entries]
        out["config_ok"] = all(oks)
        out["save"] = [*entries, GRUB_DEFAULT] if _is_file(host, GRUB_DEFAULT) else entries
    else:
        if not _is_file(host, GRUB_DEFAULT):
            raise BootError(f"{GRUB_DEFAULT} not found")
        base = parse_assignments(host.read(GRUB_DEFAULT), GRUB_DEFAULT)
        want = dropin_text(base, add, remove) if (add or remove) else None
        have = host.read(DROPIN) if host.exists(DROPIN) else None
        out["files"][DROPIN] = want
        out["config_ok"] = have == want
        out["save"] = [DROPIN]
    booted = host.read(PROC_CMDLINE).split() if host.exists(PROC_CMDLINE) else []
    ok, off = booted_status(booted, add, remove)
    out.update(booted=" ".join(booted), booted_ok=ok, off=off)
    return out


def _remember_files(host: Host, paths: list[str]) -> None:
    data = load_originals(host) or {"version": 1, "files": {}, "dirs": []}
    files = data["files"]
    changed = False
    for p in paths:
        if p in files:
            continue  # the first original wins
        exists = host.exists(p)
        files[p] = {
            "style": "file",
            "exists": exists,
            "raw": host.read(p) if exists else "",
            "order": len(files),
            "layer": LAYER,
        }
        changed = True
    if changed:
        save_originals(host, data)


def _result(o: dict[str, Any], status: str, message: str = "") -> dict[str, Any]:
    return {
        "tool": o.get("tool"),
        "status": status,
        "config": "as wanted" if o.get("config_ok") else "differs",
        "booted": o.get("booted", ""),
        "off": o.get("off", []),
        "message": message,
    }


def apply(
    host: Host,
    add: list[str],
    remove: list[str],
    sim: bool,
    check: bool,
    lock_timeout: float | None = None,
    allow: list[str] | None = None,
) -> dict[str, Any]:
    """-> {status: unchanged | would change | changed | failed, booted, ...}.

    `changed` and `unchanged` carry `pending` (written, not booted yet). `allow`: the
    boot-critical parameters the operator named (--allow-boot-critical)."""
    bad = check_tokens(add, remove, allow)
    if bad:
        return {"status": "failed", "message": bad, "bad_input": True}
    with locked(host, create=not check, timeout=lock_timeout):
        clean_temp_files(host, check)
        o = observe(host, add, remove, sim)
        if o["config_ok"]:
            r = _result(o, "unchanged")
            r["pending"] = not o["booted_ok"]
            return r
        if check:
            return _result(o, "would change")
        _probe_writable(host, o)
        _remember_files(host, o["save"])
        try:
            if o["tool"] == "grubby":
                argv = [*o["argv"], "--update-kernel=ALL"]
                if add:
                    argv.append("--args=" + " ".join(add))
                rm = [t for t in _bls_all(host) if removes(t, add, remove)]
                if rm:
                    argv.append("--remove-args=" + " ".join(sorted(set(rm))))
                _run(argv)
            else:
                _write_and_regenerate(host, o)
        except (BootError, OSError) as e:
            return _result(o, "failed", str(e))
        again = observe(host, add, remove, sim)
        if not again["config_ok"]:
            return _result(again, "failed", "the boot configuration differs after the write")
        r = _result(again, "changed")
        r["pending"] = not again["booted_ok"]
        return r


def _bls_all(host: Host) -> list[str]:
    return [t for e in _bls_entries(host) for t in _bls_options(host, e)]


def _probe_writable(host: Host, o: dict[str, Any]) -> None:
    """Fail before anything is written when a file tuner must write cannot be."""
    for p in o["files"]:
        real = host.path(p)
        if os.path.isdir(real):
            raise BootError(f"cannot write {p}: it is a directory")
        d = os.path.dirname(real)
        while not os.path.exists(d):
            d = os.path.dirname(d)
        if not os.path.isdir(d) or not os.access(d, os.W_OK):
            raise BootError(f"cannot write {p}: {d} is not a writable folder")


def _write_and_regenerate(host: Host, o: dict[str, Any]) -> None:
    """Write the drop-in, regenerate; on a failed regeneration put the drop-in back."""
    before = {p: (host.read(p) if host.exists(p) else None) for p in o["files"]}
    created: list[str] = []
    missing = [] if os.path.isdir(host.path(DROPIN_DIR)) else [DROPIN_DIR]
    if missing:  # recorded before it is made: a killed run's folder is rolled back too
        data = load_originals(host)
        if data is not None:
            data["dirs"] = list(dict.fromkeys(data.get("dirs", []) + missing))
            save_originals(host, data)
    try:
        for p, content in o["files"].items():
            if content is None:
                host.remove_file(p)
            else:
                host.write_file(p, content, created)
        _run(o["argv"])
    except (BootError, OSError) as e:
        for p, content in before.items():
            if content is None:
                host.remove_file(p)
            else:
                host.write_file(p, content, [])
        for d in reversed(created):
            try:
                os.rmdir(host.path(d))
            except OSError:
                pass
        raise BootError(f"{e}; the boot configuration was left as it was") from e


def clean_temp_files(host: Host, check: bool) -> list[str]:
    """Temp files a killed run left beside the drop-in."""
    found = host.glob(DROPIN_DIR + "/.*" + TMP_MARK) if host.exists(DROPIN_DIR) else []
    if not check:
        for p in found:
            host.remove_file(p)
    return found


def verify(host: Host, add: list[str], remove: list[str], sim: bool) -> dict[str, Any]:
    """-> ok (configured and booted), pending (configured, not booted yet), drift."""
    o = observe(host, add, remove, sim)
    if not o["config_ok"]:
        where = "the boot configuration" + (f" ({DROPIN})" if o["files"] else "")
        return _result(o, "drift", f"{where} does not hold the profile's command line")
    if not o["booted_ok"]:
        return _result(
            o, "pending", "in the boot configuration, not booted yet: " + " ".join(o["off"])
        )
    return _result(o, "ok")


def rollback(
    host: Host, sim: bool, check: bool, lock_timeout: float | None = None
) -> dict[str, Any]:
    """Restore the files the cmdline layer saved, byte for byte, and regenerate.

    -> {status: nothing to do | would restore | restored | failed, files: [...]}; the
    record keeps the other layers' entries (the OS layer's rollback archives it)."""
    with locked(host, create=False, timeout=lock_timeout):
        stale = clean_temp_files(host, check)
        data = load_originals(host)
        entries = {
            p: e for p, e in (data or {}).get("files", {}).items() if e.get("layer") == LAYER
        }
        if data is None or not entries:
            for d in (data or {}).get("dirs", []):
                if d.startswith(DROPIN_DIR) and not check:
                    try:  # a killed first run made the folder, wrote nothing yet
                        os.rmdir(host.path(d))
                    except OSError:
                        pass
            status = ("would restore" if check else "restored") if stale else "nothing to do"
            return {"status": status, "files": [], "message": ""}
        rows = []
        todo = []
        for p, e in entries.items():
            cur = host.read(p) if host.exists(p) else None
            orig = e["raw"] if e["exists"] else None
            if cur != orig:
                todo.append((p, orig))
            st = ("would restore" if check else "restored") if cur != orig else "unchanged"
            rows.append({"path": p, "status": st, "message": ""})
        if check:
            status = "would restore" if todo else "nothing to do"
            return {"status": status, "files": rows, "message": ""}
        try:
            for p, orig in todo:
                if orig is None:
                    host.remove_file(p)
                else:
                    host.write_file(p, orig, [])
            tool = detect(host, sim)
            if tool["kind"] != "grubby":  # BLS entries are the configuration: nothing to run
                _run(tool["argv"])
        except (BootError, OSError) as e:
            for r in rows:
                if r["status"] == "restored":
                    r["status"], r["message"] = "failed", str(e)
            return {"status": "failed", "files": rows, "message": str(e)}
        dirs = [d for d in data.get("dirs", []) if d.startswith(DROPIN_DIR)]
        for d in sorted(dirs, key=len, reverse=True):
            try:
                os.rmdir(host.path(d))
            except OSError:
                pass
        rest = {p: e for p, e in data["files"].items() if e.get("layer") != LAYER}
        if rest:
            data["files"] = rest
            data["dirs"] = [d for d in data.get("dirs", []) if d not in dirs]
            save_originals(host, data)
        else:  # nothing else recorded: archive the record as the OS rollback does
            import time

            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            hist = host.path(f"{STATE_DIR}/history")
            os.makedirs(hist, exist_ok=True)
            os.replace(
                host.path(ORIGINALS), os.path.join(hist, f"originals-rolled-back-{stamp}.json")
            )
        booted = host.read(PROC_CMDLINE).strip() if host.exists(PROC_CMDLINE) else ""
        status = "restored" if todo else "nothing to do"
        return {"status": status, "files": rows, "message": "", "booted": booted}
