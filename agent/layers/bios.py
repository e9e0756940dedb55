"""The BIOS layer: each host's BIOS through its BMC (Redfish), via Ansible (tuner_bios).

The `tuner_bios` module runs on the control node, one task per host (playbooks/bios.yml);
planning is agent/bios/plan.py, the client agent/bios/redfish.py, the record of values before
tuner's first change agent/bios/record.py (under $TUNER_STATE_DIR/bios/originals/).
Every host's BMC variables (bmc_url, bmc_username, a password source) are checked before
anything is sent (exit 2). The BMC password never reaches Ansible's artifacts: it is taken out
of the environment into the run's `Credentials` (the layer's `secrets`) and handed to the
module as a temporary 0600 file.

Its part in the reboot plan is "resets": with --reboot if-needed its apply resets, through
the BMC, the hosts whose values wait, and the hosts other layers wait on
(`run.reboots.waiting`), once for all; it tells the plan which hosts it reset.

Statuses: the host's BIOS part (`HostBios`, `HostBiosRollback`) keeps the layer's own words
(pending reboot, ...); `HostResult.status` is the host word the orchestrator combines.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agent import view
from agent.bios import record
from agent.bios.models import (
    BiosAttribute,
    BiosRestore,
    BiosRun,
    CrossCheck,
    HostBios,
    HostBiosRollback,
)
from agent.bios.plan import load_intents
from agent.errors import BadInput
from agent.layers.base import Credentials, Cross, HostResult, Layer, Results, Run
from agent.modargs import TUNER_BIOS
from agent.paths import state_dir
from agent.view import HostView, Row

if TYPE_CHECKING:
    from rich.console import Console

    from agent.inventory import Inventory, InventoryHost
    from agent.profiles import Profile
    from agent.runner import HostOutcome

PASSWORD_ENV = "TUNER_BMC_PASSWORD"
URL = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(/[^\s]*)?\Z")


@contextmanager
def _password_file(creds: Credentials) -> Iterator[dict[str, str]]:
    """Extra vars naming a temporary file holding the environment's password (if any)."""
    pw = creds.get(PASSWORD_ENV)
    if not pw:
        yield {}
        return
    d = tempfile.mkdtemp(prefix="tuner-bmc-")
    try:
        f = Path(d) / "password"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pw + "\n")
        yield {"tuner_bmc_password_file": str(f)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class BiosOptions:
    """The BIOS layer's own options (the run's `RunOptions.layers["bios"]`)."""

    insecure: bool = False
    ca_bundle: str | None = None
    timeout: float = TUNER_BIOS.default("timeout")  # seconds to wait for a BMC answer
    poll: float = TUNER_BIOS.default("poll_interval")  # seconds between polls while booting


def check_options(o: BiosOptions) -> BiosOptions:
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


def section(prof: Profile) -> Any:
    """The profile's bios section (a profiles.BiosSection)."""
    return prof.section(BiosLayer.section or "")


def has_bios(prof: Profile) -> bool:
    return bool(section(prof).model_dump(exclude_none=True, exclude_defaults=True))


def bmc_hosts(
    inv: Inventory, only: set[str] | None = None, creds: Credentials | None = None
) -> tuple[list[InventoryHost], list[str]]:
    """Hosts with a BMC (bmc_url), validated; and the names of the hosts without one.

    `only`: validate and return only these hosts (the others are neither)."""
    with_bmc, without = [], []
    plain_http: list[str] = []
    for h in inv.hosts:
        if only is not None and h.name not in only:
            continue
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
        if isinstance(url, str) and url.lower().startswith("http://"):
            plain_http.append(h.name)  # allowed by bmc_allow_http (agent/inventory.py)
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
            and not (creds is not None and creds.get(PASSWORD_ENV))
            and not os.environ.get(PASSWORD_ENV)
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
    if plain_http:
        sys.stderr.write(
            f"warning: bmc_allow_http: the BMC password of {', '.join(plain_http[:10])}"
            f"{' and more' if len(plain_http) > 10 else ''} crosses the network in clear text "
            "(http://)\n"
        )
    return with_bmc, without


def records_dir() -> str:
    return record.record_dir(str(state_dir()))


def extravars(
    mode: str, run: Run, o: BiosOptions, hosts: list[InventoryHost] | None = None
) -> dict[str, Any]:
    prof = run.profile
    also = run.reboots.pending([h.name for h in hosts or []]) if run.reboots.allowed else []
    TUNER_BIOS.check({"mode": mode, "reboot": run.reboot})  # the names of agent/modargs.py
    ev: dict[str, Any] = {
        "tuner_bios_mode": mode,
        # the profile's bios section, and the planner's display names and alternatives
        # (agent/bios/intents.json), which the module cannot read beside its code
        "tuner_bios_settings": (
            {**section(prof).model_dump(exclude_none=True), "_intents": load_intents()}
            if prof
            else {}
        ),
        "tuner_bios_record_dir": records_dir(),
        "tuner_bios_reboot": run.reboot,
        "tuner_bmc_insecure": o.insecure,
        "tuner_bmc_timeout": o.timeout,
        "tuner_bmc_reset_timeout": run.options.reboot_timeout,
        "tuner_bmc_poll": o.poll,
        "tuner_bios_also_reset": sorted(also) if mode == "apply" else [],
    }
    if o.ca_bundle:
        ev["tuner_bmc_ca_bundle"] = o.ca_bundle
    return ev


def host_bios(o: HostOutcome, batch: int | None) -> HostBios:
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


def host_rollback(o: HostOutcome, batch: int | None) -> HostBiosRollback:
    f = o.facts
    attrs = [BiosRestore.model_validate(r) for r in o.results if isinstance(r, dict)]
    common: dict[str, Any] = {
        "bmc_vendor": f.get("bmc_vendor"),
        "system": f.get("system"),
        "serial": f.get("serial"),
        "reboot": f.get("reboot") or "not needed",
        "batch": batch,
        "sent": bool(f.get("sent")),
        "warnings": f.get("warnings") or [],
        "attributes": attrs,
    }
    if o.status == "ok":
        return HostBiosRollback(status=f.get("status", "failed"), **common)
    msg = o.message or "failed"
    if o.status == "unreachable":
        msg = f"could not run the BIOS task on the control node: {msg}"
    return HostBiosRollback(status="failed", message=msg, **common)


NO_BMC = "no BMC in the inventory (bmc_url): BIOS settings not applied"
NO_RECORD = "tuner never changed this host's BIOS (no record): nothing to restore"

# The layer's own status -> the host word (see HostResult) for each command.
APPLY_STATUS = {
    "unchanged": "unchanged",
    "changed": "changed",
    "failed": "failed",
    "not started": "not started",
    "skipped": "unchanged",
}
VERIFY_STATUS = {"ok": "ok", "pending": "pending", "drift": "drift", "failed": "failed"}
ROLLBACK_STATUS = {
    "nothing to do": "nothing to do",
    "would restore": "would restore",
    "restored": "restored",
    "pending reboot": "pending reboot",
    "failed": "failed",
    "skipped": "nothing to do",
    "not started": "not started",
}


def apply_status(hb: HostBios, check: bool) -> str:
    if hb.status in ("would change", "pending reboot") and check:
        return "would change"
    if hb.status == "pending reboot":
        return "changed" if hb.sent else "unchanged"  # sent now, or pending from before
    return APPLY_STATUS.get(hb.status, "failed")


def _cross(prof: Any, results: dict[str, HostResult]) -> list[Any]:
    from agent.layers.cross import cross_checks

    return cross_checks(prof, results["bios"].detail, results["os"].facts)


class BiosLayer(Layer):
    name = "bios"
    label = "BIOS"
    order = 20
    section = "bios"
    module = "tuner_bios"
    reboot = "resets"
    secrets = (PASSWORD_ENV,)
    # does the OS show what the BIOS decides (NUMA nodes = NPS x sockets, SMT)?
    crosses = (Cross(needs=("bios", "os"), check=_cross),)

    o: BiosOptions

    def __init__(self, options: BiosOptions | None = None) -> None:
        super().__init__(options)
        self.info: BiosRun | None = None

    @classmethod
    def schema(cls) -> type[BaseModel]:
        from agent.profiles import BiosSection

        return BiosSection

    @classmethod
    def options(cls) -> BiosOptions:
        return BiosOptions()

    @classmethod
    def from_cli(cls, flags: dict[str, Any]) -> BiosOptions:
        """--insecure, --ca-bundle, --bmc-timeout; the poll interval follows --reset-timeout."""
        o = BiosOptions(
            insecure=bool(flags.get("insecure", False)),
            ca_bundle=flags.get("ca_bundle"),
            timeout=flags.get("bmc_timeout", TUNER_BIOS.default("timeout")),
        )
        if "reset_timeout" in flags:
            o.poll = min(o.poll, max(0.2, float(flags["reset_timeout"]) / 100))
        return check_options(o)

    def check_options(self, run: Run) -> None:
        check_options(self.o)

    def wants(self, run: Run) -> bool:
        if run.command == "rollback":  # only when tuner recorded some host's BIOS values
            d = records_dir()
            return any(os.path.exists(record.record_path(d, h.name)) for h in run.inv.hosts)
        return run.profile is not None and has_bios(run.profile)

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        creds = run.options.credentials
        creds.take(*self.secrets)
        if run.command != "rollback":
            with_bmc, without = bmc_hosts(run.inv, creds=creds)
            return with_bmc, {n: NO_BMC for n in without}
        d = records_dir()
        recorded: set[str] = set()
        skipped: dict[str, str] = {}
        for h in run.inv.hosts:
            try:
                rec = record.load(d, h.name)
            except record.RecordError as e:
                raise BadInput(str(e), field="bios record") from None
            if rec["systems"]:
                recorded.add(h.name)
            else:
                skipped[h.name] = NO_RECORD
        with_bmc, without = bmc_hosts(run.inv, recorded, creds)
        for n in without:
            raise BadInput(
                f"host {n!r}: tuner recorded BIOS values for it, but the inventory gives no "
                "bmc_url to restore them through",
                file=run.inv.path,
                field="bmc_url",
            )
        return with_bmc, skipped

    def _run(
        self, run: Run, hosts: list[InventoryHost], mode: str, check: bool
    ) -> tuple[dict[str, HostOutcome], str]:
        if self.info is None:
            self.info = BiosRun(
                reboot=run.reboot,  # type: ignore[arg-type]
                batch_size=run.batch_size or len(run.inv.hosts),
                max_failed=run.max_failed,
                batches=0,
                failed=0,
                stopped=False,
            )
        pw = _password_file(run.options.credentials)
        with pw as pwvars, tempfile.TemporaryDirectory(prefix="tuner-stages-") as sd:
            outcomes, artifacts = run.playbook(
                "bios.yml",
                hosts,
                {**extravars(mode, run, self.o, hosts), **pwvars, "tuner_bios_stage_dir": sd},
                check=check,
                module="tuner_bios",
                stage_dir=Path(sd),
            )
        self.info.batches += 1
        self.info.artifacts.append(artifacts)
        return outcomes, artifacts

    def _results(
        self, run: Run, outcomes: dict[str, HostOutcome], batch: int | None, status: Any
    ) -> Results:
        out: Results = {}
        for name, oc in outcomes.items():
            hb = host_bios(oc, batch)
            facts = {"topology": hb.topology, "bad_input": bool(oc.facts.get("bad_input"))}
            out[name] = HostResult(status(hb), hb.message, hb, facts=facts)
            if hb.reboot == "done":
                run.reboots.did(name, "BIOS reset")
            if self.info is not None and hb.status == "failed":
                self.info.failed += 1
        return out

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        outcomes, artifacts = self._run(run, hosts, "plan", check=True)
        return {n: host_bios(o, None).model_dump(mode="json") for n, o in outcomes.items()}, (
            artifacts
        )

    def refused(self, run: Run, hosts: list[InventoryHost]) -> dict[str, str]:
        """apply: plan every BMC of the selection first (read only), so a value its registry
        forbids, or an unknown `bmc_system`, stops the run before any host is changed."""
        if run.command != "apply" or run.check or not hosts:
            return {}
        with _password_file(run.options.credentials) as pwvars:
            outcomes, _ = run.playbook(
                "bios.yml",
                hosts,
                {**extravars("plan", run, self.o), **pwvars},
                check=True,
                module="tuner_bios",
                progress=False,
            )
        bad = {n: o for n, o in outcomes.items() if o.facts.get("bad_input")}
        return {n: o.message or "bad input" for n, o in bad.items()}

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "plan", check=True)
        return self._results(run, outcomes, batch, lambda hb: apply_status(hb, True)), artifacts

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        if run.check:
            return self.plan(run, hosts, batch)
        outcomes, artifacts = self._run(run, hosts, "apply", check=False)
        return self._results(run, outcomes, batch, lambda hb: apply_status(hb, False)), artifacts

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "verify", check=False)
        return (
            self._results(run, outcomes, batch, lambda hb: VERIFY_STATUS.get(hb.status, "failed")),
            artifacts,
        )

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "restore", check=run.check)
        out: Results = {}
        for name, oc in outcomes.items():
            hr = host_rollback(oc, batch)
            if hr.reboot == "done":
                run.reboots.did(name, "BIOS reset")
            out[name] = HostResult(
                ROLLBACK_STATUS.get(hr.status, "failed"),
                hr.message,
                hr,
                facts={"bad_input": bool(oc.facts.get("bad_input"))},
            )
            if self.info is not None and hr.status == "failed":
                self.info.failed += 1
        return out, artifacts

    def skipped(self, run: Run, why: str) -> HostResult:
        if run.command == "rollback":
            return HostResult(
                "nothing to do", "", HostBiosRollback(status="nothing to do", message=why)
            )
        ok = "ok" if run.command == "verify" else "unchanged"
        return HostResult(ok, "", HostBios(status="skipped", message=why))

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        if run.command == "rollback":
            detail: Any = HostBiosRollback(status="not started", message=why, batch=batch)
        else:
            detail = HostBios(status="not started", message=why, batch=batch)
        return HostResult("not started", why, detail)

    @classmethod
    def v1_keys(cls, command: str, result: HostResult | None) -> dict[str, Any]:
        return {"bios": None if result is None else result.detail}

    def from_v1(self, command: str, host: dict[str, Any]) -> Any:
        return host.get("bios")

    def part(self, host: Any) -> Any:
        d = host.detail(self.name)
        if d is None or isinstance(d, HostBios | HostBiosRollback):
            return d
        from agent.report import HostRollback

        model = HostBiosRollback if isinstance(host, HostRollback) else HostBios
        return model.model_validate(d)

    def finish(self, run: Run, rep: Any) -> None:
        rep.security.bmc_tls_verified = not self.o.insecure  # what the run relaxed
        if run.command == "apply" and self.info is not None:
            if rep.batches is not None:
                self.info.batch_size = rep.batches.batch_size
                self.info.stopped = rep.batches.stopped
            rep.bios = self.info  # the report's run-level `bios` (docs/json.md)

    # ------------------------------------------------------------------------ tables

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        if r.command == "rollback":
            title = "BIOS: tuner rollback" + (" --check" if r.check else "")
            views = [_rollback_view(h.host, b) for h, b in self._parts(r) if b]
            return title, ["attribute", "now -> original"], views
        cols = ["attribute (setting)", "current -> wanted"]
        if r.command == "apply":
            title = "BIOS: tuner apply --profile " + r.profile + (" --check" if r.check else "")
            return title, cols, [_bios_view(h.host, b) for h, b in self._parts(r) if b]
        views = [_verify_view(h, b) for h, b in self._parts(r) if b or h.cross]
        return "BIOS and cross-layer checks", cols, views

    def _parts(self, r: Any) -> list[tuple[Any, Any]]:
        return [(h, self.part(h)) for h in r.hosts]

    def table(self, r: Any, console: Console, detail: bool = False) -> None:
        super().table(r, console, detail)
        parts = [b for _, b in self._parts(r) if b is not None]
        info = getattr(r, "bios", None)
        if isinstance(info, dict):
            info = BiosRun.model_validate(info)
        if r.command == "apply" and info and parts:
            b = info
            cap = "none" if b.max_failed is None else str(b.max_failed)
            console.print(
                f"BIOS: {view.n_of(b.batches, 'batch', 'batches')} of up to {b.batch_size}, "
                f"reboot {b.reboot}, {b.failed} failed (cap {cap})"
                + (", stopped at the cap" if b.stopped else "")
            )
        if r.command == "apply" and r.check:
            if any(b.reboot == "would reboot" for b in parts):
                console.print("BIOS: the hosts marked `reboot would reboot` would be reset.")
        elif r.command == "apply" and any(b.reboot == "needed" for b in parts):
            console.print(
                "BIOS values are pending: they take effect at the next reboot "
                "(tuner apply --reboot if-needed)."
            )
        if r.command == "rollback" and any(b.status == "pending reboot" for b in parts):
            console.print(
                "BIOS originals are pending: they take effect at the next reboot "
                "(tuner rollback --layer bios --reboot if-needed)."
            )


# ----------------------------------------------------------------------------- tables


def _head(name: str | None, counted: str, reboot: str) -> str:
    head = f"{name}: {counted}" if name else counted
    return head + (f"; reboot {reboot}" if reboot != "not needed" else "")


def _attr_row(a: BiosAttribute) -> Row:
    value = f"{a.current} -> {a.wanted}"
    if a.after is not None:
        value += f" (now {a.after})"
    elif a.pending is not None:
        value += f" (pending {a.pending})"
    return Row(a.status, (f"{a.attribute} ({a.setting})", value))


def _bios_notes(hb: HostBios) -> list[str]:
    notes = [hb.message] if hb.message else []
    notes += [f"{a.attribute}: {a.message}" for a in hb.attributes if a.message]
    return notes + hb.warnings + hb.settings_messages


def _bios_view(host: str, hb: HostBios) -> HostView:
    quiet = ("ok", "unchanged")
    return HostView(
        host=host,
        status=hb.status,
        summary=_head(
            hb.vendor,
            view.counted((a.status for a in hb.attributes), "attribute") if hb.attributes else "",
            hb.reboot,
        ),
        rows=[_attr_row(a) for a in hb.attributes if a.status not in quiet],
        all_rows=[_attr_row(a) for a in hb.attributes],
        notes=_bios_notes(hb),
    )


def _as_dict(c: Any) -> Any:
    return c.model_dump() if isinstance(c, BaseModel) else c


def _verify_view(h: Any, hb: HostBios | None) -> HostView:
    v = _bios_view(h.host, hb) if hb else HostView(host=h.host, status="ok")
    crosses = [
        c if isinstance(c, CrossCheck) else CrossCheck.model_validate(_as_dict(c)) for c in h.cross
    ]
    bad = [c for c in crosses if c.status != "ok"]
    if bad and v.status == "ok":
        v.status = "drift"
    cross = [
        Row(c.status, (f"OS {c.id} (from {c.source})", f"{c.actual} -> {c.wanted}"))
        for c in crosses
    ]
    v.rows += [r for r, c in zip(cross, crosses, strict=True) if c.status != "ok"]
    v.all_rows = (v.all_rows if v.all_rows is not None else list(v.rows)) + cross
    if crosses:
        v.summary += (
            ("; " if v.summary else "")
            + "OS vs BIOS: "
            + view.counted((c.status for c in crosses), "check")
        )
    v.notes += [f"OS {c.id}: {c.message}" for c in bad if c.message]
    return v


def _rollback_view(host: str, hb: HostBiosRollback) -> HostView:
    def row(a: BiosRestore) -> Row:
        value = f"{a.current} -> {a.original}"
        if a.after is not None:
            value += f" (now {a.after})"
        return Row(a.status, (a.attribute, value))

    notes = [hb.message] if hb.message else []
    notes += [f"{a.attribute}: {a.message}" for a in hb.attributes if a.message]
    notes += [w for w in hb.warnings if w not in notes]
    return HostView(
        host=host,
        status=hb.status,
        summary=_head(
            hb.system,
            view.counted((a.status for a in hb.attributes), "attribute") if hb.attributes else "",
            hb.reboot,
        ),
        rows=[row(a) for a in hb.attributes if a.status != "unchanged"],
        all_rows=[row(a) for a in hb.attributes],
        notes=notes,
    )
