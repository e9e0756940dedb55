"""Running the BIOS layer beside the OS layer: validation, rolling batches, reports.

`tuner apply`: every flag and every host's BMC variables are checked first (exit 2, nothing
touched). Then the BIOS playbook runs batch by batch (`--batch-size`), each batch a normal
ansible-runner run limited to its hosts, and tuner counts failed hosts across batches: once
more than `--max-failed` hosts have failed, no new batch starts (the hosts left are "not
started" and nothing is done to them, OS included). Then the OS playbook runs on every host
that was started, after the BIOS reboots, so runtime OS values are set on the booted system.

`tuner verify`: OS verify, BIOS verify (GETs only) and the cross-layer checks.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent import report
from agent.bios.models import BiosAttribute, BiosRun, CrossCheck, HostBios
from agent.errors import BadInput
from agent.inventory import Inventory, InventoryHost
from agent.profiles import Profile
from agent.runner import HostOutcome, ProgressFn, run_playbook

PASSWORD_ENV = "TUNER_BMC_PASSWORD"
URL = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(/[^\s]*)?$")
REBOOT = ("never", "if-needed")
_env_password: list[str] = []  # TUNER_BMC_PASSWORD, taken out of the environment


def take_env_password() -> None:
    """Move TUNER_BMC_PASSWORD out of this process's environment before Ansible runs.

    ansible-runner records the whole environment of each run in its artifacts (the
    `command` file): a password left there would be written to disk. tuner hands it to the
    module as a temporary 0600 file instead (see `_password_file`)."""
    pw = os.environ.pop(PASSWORD_ENV, None)
    if pw:
        _env_password[:] = [pw]


@contextmanager
def _password_file() -> Iterator[dict[str, str]]:
    """Extra vars naming a temporary file holding the environment's password (if any)."""
    if not _env_password:
        yield {}
        return
    d = tempfile.mkdtemp(prefix="tuner-bmc-")
    try:
        f = Path(d) / "password"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_env_password[0] + "\n")
        yield {"tuner_bmc_password_file": str(f)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class BiosOptions:
    reboot: str = "never"
    batch_size: int | None = None
    max_failed: int | None = None
    insecure: bool = False
    ca_bundle: str | None = None
    timeout: float = 30.0
    reset_timeout: float = 1200.0
    poll: float = 2.0


def check_options(o: BiosOptions) -> BiosOptions:
    if o.reboot not in REBOOT:
        raise BadInput(f"must be never or if-needed, got {o.reboot!r}", field="--reboot")
    if o.insecure and o.ca_bundle:
        raise BadInput("--insecure and --ca-bundle exclude each other", field="--insecure")
    if o.ca_bundle is not None:
        p = Path(o.ca_bundle)
        if not p.is_file() or not os.access(p, os.R_OK):
            raise BadInput(f"{o.ca_bundle} is not a readable file", field="--ca-bundle")
        o.ca_bundle = str(p.resolve())
    return o


def _templated(v: Any) -> bool:
    return isinstance(v, str) and ("{{" in v or "{%" in v)


def has_bios(prof: Profile) -> bool:
    return bool(prof.bios.model_dump(exclude_none=True, exclude_defaults=True))


def bmc_hosts(inv: Inventory) -> tuple[list[InventoryHost], list[str]]:
    """Hosts with a BMC (bmc_url), validated; and the names of the hosts without one."""
    with_bmc, without = [], []
    for h in inv.hosts:
        if "bmc_url" not in h.vars:
            without.append(h.name)
            continue
        where = f"host {h.name!r}"
        url = h.vars["bmc_url"]
        if not _templated(url) and (not isinstance(url, str) or not URL.match(url)):
            raise BadInput(
                f"{where}: bmc_url must be an http(s):// URL of the BMC, got {url!r}",
                file=inv.path,
                field="bmc_url",
            )
        user = h.vars.get("bmc_username")
        if not isinstance(user, str) or not user:
            raise BadInput(f"{where}: bmc_username is missing", file=inv.path, field="bmc_username")
        pw_file = h.vars.get("bmc_password_file")
        if pw_file is not None and not _templated(pw_file):
            p = Path(str(pw_file))
            if not p.is_file() or not os.access(p, os.R_OK):
                raise BadInput(
                    f"{where}: bmc_password_file {pw_file} is not a readable file",
                    file=inv.path,
                    field="bmc_password_file",
                )
        if (
            "bmc_password" not in h.secret_vars
            and pw_file is None
            and not (_env_password or os.environ.get(PASSWORD_ENV))
        ):
            raise BadInput(
                f"{where}: no BMC password: set bmc_password (Ansible vault), "
                f"bmc_password_file, or the environment variable {PASSWORD_ENV}",
                file=inv.path,
                field="bmc_password",
            )
        ca = h.vars.get("bmc_ca_bundle")
        if ca is not None and not _templated(ca) and not Path(str(ca)).is_file():
            raise BadInput(
                f"{where}: bmc_ca_bundle {ca} is not a file", file=inv.path, field="bmc_ca_bundle"
            )
        with_bmc.append(h)
    return with_bmc, without


def extravars(mode: str, prof: Profile, o: BiosOptions) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "tuner_bios_mode": mode,
        "tuner_bios_settings": prof.bios.model_dump(exclude_none=True),
        "tuner_bios_reboot": o.reboot,
        "tuner_bmc_insecure": o.insecure,
        "tuner_bmc_timeout": o.timeout,
        "tuner_bmc_reset_timeout": o.reset_timeout,
        "tuner_bmc_poll": o.poll,
    }
    if o.ca_bundle:
        ev["tuner_bmc_ca_bundle"] = o.ca_bundle
    return ev


def host_bios(o: HostOutcome, batch: int | None = None) -> HostBios:
    f = o.facts
    attrs = [BiosAttribute.model_validate(r) for r in o.results if isinstance(r, dict)]
    common: dict[str, Any] = {
        "vendor": f.get("vendor"),
        "bmc_vendor": f.get("bmc_vendor"),
        "registry": f.get("registry"),
        "reboot": f.get("reboot") or "not needed",
        "warnings": f.get("warnings") or [],
        "settings_messages": f.get("settings_messages") or [],
        "topology": f.get("topology") or {},
        "attributes": attrs,
        "batch": batch,
        "sent": bool(f.get("sent")),
    }
    if o.status == "ok":
        return HostBios(status=f.get("status", "failed"), **common)
    msg = o.message or "failed"
    if o.status == "unreachable":
        msg = f"could not run the BIOS task on the control node: {msg}"
    return HostBios(status="failed", message=msg, **common)


def run_bios(
    mode: str,
    prof: Profile,
    inv: Inventory,
    hosts: list[InventoryHost],
    o: BiosOptions,
    *,
    check: bool = False,
    forks: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, HostBios], BiosRun]:
    """Run the BIOS playbook over `hosts` in batches; stop once the failure cap is exceeded."""
    ev = extravars(mode, prof, o)
    size = len(hosts) if (check or mode != "apply" or not o.batch_size) else o.batch_size
    size = max(1, min(size, len(hosts)))
    batches = [hosts[i : i + size] for i in range(0, len(hosts), size)]
    out: dict[str, HostBios] = {}
    info = BiosRun(
        reboot=o.reboot,  # type: ignore[arg-type]
        batch_size=size,
        max_failed=o.max_failed,
        batches=0,
        failed=0,
        stopped=False,
    )
    for i, batch in enumerate(batches, 1):
        if info.stopped:
            for h in batch:
                out[h.name] = HostBios(
                    status="not started",
                    batch=i,
                    message=f"not started: more than --max-failed {o.max_failed} hosts failed",
                )
            continue
        sub = inv.model_copy(update={"hosts": batch})
        with _password_file() as pwvars:
            outcomes, artifacts = run_playbook(
                "bios.yml",
                sub,
                {**ev, **pwvars},
                check=check,
                forks=forks,
                progress=progress,
                module="tuner_bios",
            )
        info.batches += 1
        info.artifacts.append(artifacts)
        for name, oc in outcomes.items():
            hb = host_bios(oc, i if len(batches) > 1 else None)
            out[name] = hb
            if hb.status == "failed":
                info.failed += 1
        if o.max_failed is not None and info.failed > o.max_failed and i < len(batches):
            info.stopped = True
    return out, info


def _skipped(why: str) -> HostBios:
    return HostBios(status="skipped", message=why)


NO_BMC = "no BMC in the inventory (bmc_url): BIOS settings not applied"


# ----------------------------------------------------------------------------- apply


def apply_all(
    prof: Profile,
    inv: Inventory,
    o: BiosOptions,
    *,
    check: bool,
    forks: int | None,
    progress: ProgressFn | None,
) -> report.ApplyReport:
    """BIOS (batches, reboots) then OS on the hosts started; one report."""
    take_env_password()
    bios: dict[str, HostBios] = {}
    info: BiosRun | None = None
    if has_bios(prof):
        with_bmc, without = bmc_hosts(inv)
        for name in without:
            bios[name] = _skipped(NO_BMC)
        if with_bmc:
            got, info = run_bios(
                "plan" if check else "apply",
                prof,
                inv,
                with_bmc,
                o,
                check=check,
                forks=forks,
                progress=progress,
            )
            bios.update(got)
    not_started = [n for n, b in bios.items() if b.status == "not started"]
    started = [h for h in inv.hosts if h.name not in not_started]
    os_specs = prof.os_settings()
    outcomes: dict[str, HostOutcome] = {}
    artifacts = info.artifacts[-1] if info and info.artifacts else ""
    if started and (os_specs or not has_bios(prof)):
        sub = inv.model_copy(update={"hosts": started})
        extra = {
            "tuner_mode": "apply",
            "tuner_settings": os_specs,
            "tuner_persist": prof.os.persist,
        }
        outcomes, artifacts = run_playbook(
            "os.yml", sub, extra, check=check, forks=forks, progress=progress, module="tuner_os"
        )
    else:
        outcomes = {h.name: HostOutcome(host=h.name, status="ok") for h in started}
    r = report.build_apply(prof.name, check, inv.path, artifacts, outcomes, prof.missing_ok)
    by_name = {h.host: h for h in r.hosts}
    hosts = []
    for h in inv.hosts:
        ha = by_name.get(h.name) or report.HostApply(host=h.name, status="not started", settings=[])
        hb = bios.get(h.name)
        if hb is not None:
            ha.bios = hb
            ha.status = _combine_apply(ha.status, hb, check)
            if hb.status in ("failed", "not started") and not ha.message:
                ha.message = f"BIOS: {hb.message}"
        hosts.append(ha)
    r.hosts = hosts
    r.summary = report._summary([h.status for h in hosts])
    r.bios = info
    return r


def _combine_apply(os_status: str, hb: HostBios, check: bool) -> Any:
    """The host's status from both layers (the worst wins; BIOS work counts as a change)."""
    if os_status in ("failed", "unreachable", "not started"):
        return os_status
    b = hb.status
    if b in ("failed", "not started"):
        return b
    if check:
        return "would change" if b in ("would change", "pending reboot") else os_status
    if b == "changed" or (b == "pending reboot" and hb.sent):
        return "changed"
    return os_status


# ----------------------------------------------------------------------------- verify


def verify_all(
    prof: Profile,
    inv: Inventory,
    o: BiosOptions,
    *,
    forks: int | None,
    progress: ProgressFn | None,
) -> report.VerifyReport:
    take_env_password()
    extra = {
        "tuner_mode": "verify",
        "tuner_settings": prof.os_settings(),
        "tuner_persist": prof.os.persist,
    }
    outcomes, artifacts = run_playbook(
        "os.yml", inv, extra, forks=forks, progress=progress, module="tuner_os"
    )
    r = report.build_verify(prof.name, inv.path, artifacts, outcomes, prof.missing_ok)
    if not has_bios(prof):
        return r
    with_bmc, without = bmc_hosts(inv)
    bios: dict[str, HostBios] = {n: _skipped(NO_BMC) for n in without}
    if with_bmc:
        got, _ = run_bios("verify", prof, inv, with_bmc, o, forks=forks, progress=progress)
        bios.update(got)
    for h in r.hosts:
        hb = bios.get(h.host)
        h.bios = hb
        h.cross = cross_checks(prof, hb, h.facts)
        if h.status in ("failed", "unreachable"):
            continue
        if hb is not None and hb.status == "failed":
            h.status = "failed"
            h.message = h.message or f"BIOS: {hb.message}"
        elif (hb is not None and hb.status == "drift") or any(
            c.status == "mismatch" for c in h.cross
        ):
            h.status = "drift"
    r.summary = report._summary([h.status for h in r.hosts])
    return r


def cross_checks(prof: Profile, hb: HostBios | None, facts: dict[str, Any]) -> list[CrossCheck]:
    """The OS must show what the BIOS decides: NUMA nodes = NPS x sockets, SMT off = 1."""
    if not facts or hb is None or hb.status not in ("ok", "drift"):
        return []  # no BIOS read (no BMC, or it failed): nothing to compare the OS with
    topo = hb.topology
    out: list[CrossCheck] = []
    nps, src = topo.get("nps"), "bios"
    if nps is None:
        nps, src = prof.bios.nps, "profile"
    sockets = facts.get("sockets")
    if nps is not None and sockets:
        want = sockets * nps if nps else 1
        actual = facts.get("numa_nodes")
        ok = actual == want
        out.append(
            CrossCheck(
                id="numa_nodes",
                wanted=str(want),
                actual=None if actual is None else str(actual),
                status="unknown" if actual is None else ("ok" if ok else "mismatch"),
                source=src,  # type: ignore[arg-type]
                message=""
                if ok
                else f"NPS {nps} x {sockets} sockets should give {want} NUMA nodes",
            )
        )
    smt, src = topo.get("smt"), "bios"
    if smt is None:
        smt, src = prof.bios.smt, "profile"
    tpc = facts.get("threads_per_core")
    if smt is not None:
        ok = tpc == 1 if smt is False else (tpc is not None and tpc > 1)
        out.append(
            CrossCheck(
                id="threads_per_core",
                wanted="1" if smt is False else ">1",
                actual=None if tpc is None else str(tpc),
                status="unknown" if tpc is None else ("ok" if ok else "mismatch"),
                source=src,  # type: ignore[arg-type]
                message="" if ok else f"SMT {'off' if smt is False else 'on'} in the BIOS",
            )
        )
    return out


# ----------------------------------------------------------------------------- tables


def _bios_rows(t: Table, host: str, hb: HostBios, show_ok: bool = False) -> None:
    rows = [a for a in hb.attributes if show_ok or a.status not in ("ok", "unchanged")]
    head = f"{hb.vendor or ''} {hb.status}".strip()
    if hb.reboot != "not needed":
        head += f", reboot {hb.reboot}"
    if not rows:
        t.add_row(host, f"({len(hb.attributes)} attributes)", "", report._st(hb.status), hb.message)
    for i, a in enumerate(rows):
        value = f"{a.current} -> {a.wanted}"
        if a.after is not None:
            value += f" (now {a.after})"
        elif a.pending is not None:
            value += f" (pending {a.pending})"
        t.add_row(
            host if i == 0 else "",
            f"{a.attribute} ({a.setting})",
            value,
            report._st(a.status),
            a.message,
        )
    if rows and hb.message:
        t.add_row("", "", "", report._st(hb.status), hb.message)
    for w in hb.warnings + hb.settings_messages:
        t.add_row("", "", "", "note", w)
    t.add_row("", "", "", "", f"[dim]{head}[/]")


def print_apply(r: report.ApplyReport, console: Console) -> None:
    report.print_apply(r, console)
    if not any(h.bios for h in r.hosts):
        return
    t = Table(title="BIOS" + (" --check" if r.check else ""))
    for col in ("host", "attribute (setting)", "current -> wanted", "status", "message"):
        t.add_column(col)
    for h in r.hosts:
        if h.bios:
            _bios_rows(t, h.host, h.bios)
    console.print(t)
    if r.bios:
        b = r.bios
        cap = "none" if b.max_failed is None else str(b.max_failed)
        console.print(
            f"BIOS: {b.batches} batch(es) of up to {b.batch_size}, reboot {b.reboot}, "
            f"{b.failed} failed (cap {cap})" + (", stopped at the cap" if b.stopped else "")
        )
    if not r.check and any(h.bios and h.bios.reboot == "needed" for h in r.hosts):
        console.print(
            "BIOS values are pending: they take effect at the next reboot "
            "(tuner apply --reboot if-needed)."
        )


def print_verify(r: report.VerifyReport, console: Console) -> None:
    report.print_verify(r, console)
    if not any(h.bios or h.cross for h in r.hosts):
        return
    t = Table(title="BIOS and cross-layer checks")
    for col in ("host", "attribute (setting)", "current -> wanted", "status", "message"):
        t.add_column(col)
    for h in r.hosts:
        if h.bios:
            _bios_rows(t, h.host, h.bios)
        for c in h.cross:
            t.add_row(
                "" if h.bios else h.host,
                f"OS {c.id} (from {c.source})",
                f"{c.actual} -> {c.wanted}",
                report._st("ok" if c.status == "ok" else "drift"),
                c.message,
            )
    console.print(t)
