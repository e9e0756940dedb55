"""The nic layer: the scale-out NICs of each host (MTU, ring sizes, IRQ affinity, PCIe Max
Read Request and relaxed ordering, the RoCE type of service), via Ansible
(playbooks/nic.yml, the `tuner_nic` module; host-side logic in agent/nic.py).

The profile's `nic` section names one NIC model (pollara-400, thor2, connectx-7); a host
without a port of that model cannot take the profile: apply refuses it before anything is
changed anywhere, verify exits 2 too, naming the model and what the host has. The values are
runtime values (a reboot loses them), so the layer runs after the reboot step and the OS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from agent import nic, view
from agent.layers.base import HostResult, Layer, Results, Run
from agent.layers.os import SettingChange, SettingCheck
from agent.report import FileRestore
from agent.view import HostView, Row

if TYPE_CHECKING:
    from agent.inventory import InventoryHost
    from agent.runner import HostOutcome

# ------------------------------------------------------------------ the profile section


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


RingSize = Literal["max"] | Annotated[int, Field(strict=True, ge=1, le=1 << 20)]


class NicRings(_Strict):
    rx: RingSize | None = None
    tx: RingSize | None = None


class NicPcie(_Strict):
    max_read_request: Literal[128, 256, 512, 1024, 2048, 4096] | None = Field(
        default=None, description="PCIe Max_Read_Request_Size in bytes"
    )
    relaxed_ordering: StrictBool | None = None


class NicRoce(_Strict):
    dscp: Annotated[int, Field(strict=True, ge=0, le=63)] | None = Field(
        default=None, description="DSCP of RoCE traffic (RDMA CM default ToS = dscp << 2)"
    )
    pfc_priority: Annotated[int, Field(strict=True, ge=0, le=7)] | None = Field(
        default=None, description="the lossless priority: PFC on it only (dcb pfc)"
    )


class NicSection(_Strict):
    """The profile's `nic` section: the scale-out NICs of one model (docs/profiles.md "nic"),
    applied per port."""

    model: Literal["pollara-400", "thor2", "connectx-7"] | None = None
    interfaces: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,15}$")]] = Field(
        default=[], max_length=64, description="only these ports (default: every port)"
    )
    mtu: Annotated[int, Field(strict=True, ge=68, le=65535)] | None = None
    rings: NicRings = NicRings()
    irq_affinity: Literal["numa"] | None = None
    pcie: NicPcie = NicPcie()
    roce: NicRoce = NicRoce()

    @model_validator(mode="after")
    def _model(self) -> NicSection:
        sets = self.model_dump(exclude_none=True, exclude={"model", "interfaces"})
        if any(v not in ({}, []) for v in sets.values()) and self.model is None:
            raise ValueError(
                "model is required when the nic section sets anything "
                "(pollara-400, thor2 or connectx-7)"
            )
        if self.roce.pfc_priority is not None and self.model in nic.NO_DCB:
            raise ValueError(
                f"roce.pfc_priority: {self.model} has no kernel DCB interface (its PFC is set "
                "with AMD's nicctl, which tuner does not drive); leave it out for this model"
            )
        return self


def nic_settings(n: NicSection) -> dict[str, Any]:
    """The section -> the tuner_nic module's `settings` ({} when it sets nothing)."""
    if n.model is None:
        return {}
    out: dict[str, Any] = {"model": n.model, "interfaces": list(n.interfaces)}
    values = {
        "mtu": n.mtu,
        "rings": n.rings.model_dump(exclude_none=True) or None,
        "irq_affinity": n.irq_affinity,
        "max_read_request": n.pcie.max_read_request,
        "relaxed_ordering": n.pcie.relaxed_ordering,
        "roce_tos": None if n.roce.dscp is None else n.roce.dscp << 2,
        "pfc_priority": n.roce.pfc_priority,
    }
    out.update({k: v for k, v in values.items() if v is not None})
    return out


class HostNic(BaseModel):
    """The nic layer's part of a host report (`layers.nic.detail`; docs/json.md).

    `status` is the layer's own word (apply unchanged / changed / would change / failed /
    not started / skipped; verify ok / drift / failed; rollback nothing to do / would
    restore / restored / failed / not started). Setting ids are `nic.<interface>.<setting>`."""

    status: str
    message: str = ""
    model: str | None = None  # the profile's NIC model (apply, verify)
    settings: list[SettingChange] = []  # apply
    checks: list[SettingCheck] = []  # verify
    files: list[FileRestore] = []  # rollback: files, config-space registers, ring sizes
    batch: int | None = None


APPLY = ("unchanged", "changed", "would change")
VERIFY = ("ok", "drift")
ROLLBACK = ("nothing to do", "would restore", "restored")


class NicLayer(Layer):
    name = "nic"
    label = "NIC"
    order = 40  # after the OS: runtime values, set on the booted system
    section = "nic"
    module = "tuner_nic"
    reboot = "none"  # a reboot loses the values: they are set after the reboot point

    @classmethod
    def schema(cls) -> type[BaseModel]:
        return NicSection

    @staticmethod
    def settings(run: Run) -> dict[str, Any]:
        return {} if run.profile is None else nic_settings(run.profile.section("nic"))

    def wants(self, run: Run) -> bool:
        if run.command == "rollback" or run.profile is None:
            return True  # the host's record says whether there is anything to restore
        return len(self.settings(run)) > 2  # more than the model and the interfaces

    def targets(self, run: Run) -> tuple[list[InventoryHost], dict[str, str]]:
        return list(run.inv.hosts), {}

    def _run(
        self,
        run: Run,
        hosts: list[InventoryHost],
        mode: str,
        check: bool = False,
        progress: bool = True,
    ) -> tuple[dict[str, HostOutcome], str]:
        args: dict[str, Any] = {"mode": mode}
        if run.profile is not None and mode != "rollback":
            args["settings"] = self.settings(run)
        extra = {nic.PLAYBOOK_VARS[k]: v for k, v in nic.TUNER_NIC.check(args).items()}
        return run.playbook(
            "nic.yml", hosts, extra, check=check, module="tuner_nic", progress=progress
        )

    def facts(self, run: Run, hosts: list[InventoryHost]) -> tuple[dict[str, dict[str, Any]], str]:
        outcomes, artifacts = self._run(run, hosts, "facts")
        return {n: o.facts for n, o in outcomes.items()}, artifacts

    def refused(self, run: Run, hosts: list[InventoryHost]) -> dict[str, str]:
        """Hosts without a port of the profile's NIC model (or without its interfaces)."""
        if run.profile is None or not hosts:
            return {}
        want = self.settings(run)
        outcomes, _ = self._run(run, hosts, "facts", progress=False)
        out: dict[str, str] = {}
        for name, o in outcomes.items():
            if o.status != "ok":
                continue  # unreachable: apply reports it as such
            ports = o.facts.get("ports") or []
            mine = [p["if"] for p in ports if p.get("model") == want["model"]]
            missing = [i for i in want.get("interfaces") or [] if i not in mine]
            if not mine:
                out[name] = nic.lacks(want["model"], ports)
            elif missing:
                out[name] = f"no {want['model']} port named {', '.join(missing)} (nic.interfaces)"
        return out

    @staticmethod
    def _word(o: HostOutcome, known: tuple[str, ...]) -> str:
        if o.status == "unreachable":
            return "unreachable"
        word = str(o.facts.get("status", ""))
        if o.status != "ok" or word not in known:
            return "failed"
        return word

    @staticmethod
    def _message(o: HostOutcome) -> str:
        return str(o.facts.get("message") or ("" if o.status == "ok" else o.message))

    def plan(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=True)

    def apply(self, run: Run, hosts: list[InventoryHost], batch: int | None) -> tuple[Results, str]:
        return self._apply(run, hosts, batch, check=run.check)

    def _apply(
        self, run: Run, hosts: list[InventoryHost], batch: int | None, check: bool
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "apply", check)
        model = self.settings(run).get("model")
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, APPLY)
            msg = self._message(o)
            rows = [SettingChange.model_validate(r) for r in o.facts.get("settings") or []]
            d = HostNic(status=status, message=msg, model=model, settings=rows, batch=batch)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(
                status, msg if status in ("failed", "unreachable") else "", d, facts
            )
        return out, artifacts

    def verify(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "verify")
        model = self.settings(run).get("model")
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, VERIFY)
            msg = self._message(o)
            rows = [SettingCheck.model_validate(r) for r in o.facts.get("settings") or []]
            d = HostNic(status=status, message=msg, model=model, checks=rows, batch=batch)
            facts = {"bad_input": bool(o.facts.get("bad_input"))}
            out[name] = HostResult(
                status, msg if status in ("failed", "unreachable") else "", d, facts
            )
        return out, artifacts

    def rollback(
        self, run: Run, hosts: list[InventoryHost], batch: int | None
    ) -> tuple[Results, str]:
        outcomes, artifacts = self._run(run, hosts, "rollback", run.check)
        out: Results = {}
        for name, o in outcomes.items():
            status = self._word(o, ROLLBACK)
            msg = self._message(o)
            files = [FileRestore.model_validate(r) for r in o.facts.get("files") or []]
            d = HostNic(status=status, message=msg, files=files, batch=batch)
            out[name] = HostResult(status, msg if status in ("failed", "unreachable") else "", d)
        return out, artifacts

    def skipped(self, run: Run, why: str) -> HostResult:
        ok = {"apply": "unchanged", "verify": "ok", "rollback": "nothing to do"}[run.command]
        return HostResult(ok, "", HostNic(status="skipped", message=why))

    def not_started(self, run: Run, why: str, batch: int) -> HostResult:
        return HostResult("not started", why, HostNic(status="not started", message=why))

    def part(self, host: Any) -> HostNic | None:
        d = host.detail(self.name)
        return d if d is None or isinstance(d, HostNic) else HostNic.model_validate(d)

    def reasons(self, part: Any) -> list[str]:
        if part is None:
            return []
        out = [
            f"{c.id} is {c.actual!r}, profile wants {c.wanted!r}"
            for c in part.checks
            if c.status in ("drift", "failed")
        ]
        if not out and part.status in ("drift", "failed"):
            out.append(f"NIC {part.status}: {part.message}".rstrip(": "))
        return out

    # ------------------------------------------------------------------------ tables

    def views(self, r: Any) -> tuple[str, list[str], list[HostView]] | None:
        hosts = [(h, p) for h in r.hosts if (p := self.part(h)) is not None]
        if not hosts:
            return None
        check = " --check" if getattr(r, "check", False) else ""
        if r.command == "apply":
            title = f"NIC: tuner apply --profile {r.profile}{check}"
            return title, ["setting", "before -> after"], [_apply_view(h, p) for h, p in hosts]
        if r.command == "verify":
            title = f"NIC: tuner verify --profile {r.profile}"
            views = [_verify_view(h, p) for h, p in hosts]
            return title, ["setting", "wanted", "actual"], views
        if all(p.status == "nothing to do" and not p.files for _, p in hosts):
            return None  # no NIC record on any host: no table to read
        views = [_rollback_view(h, p) for h, p in hosts]
        return f"NIC: tuner rollback{check}", ["file, register or setting"], views


def _notes(n: HostNic) -> list[str]:
    return [n.message] if n.message and n.status in ("failed", "unreachable", "not started") else []


def _apply_view(h: Any, n: HostNic) -> HostView:

    def row(s: SettingChange) -> Row:
        if s.status in ("changed", "would change"):
            return Row(s.status, (s.id, f"{s.before} -> {s.after}"))
        return Row(s.status, (s.id, f"{s.before}" if s.status == "unchanged" else ""))

    notes = _notes(n) + [f"{s.id}: {s.message}" for s in n.settings if s.message]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((s.status for s in n.settings), "setting") if n.settings else "",
        rows=[row(s) for s in n.settings if s.status != "unchanged"],
        all_rows=[row(s) for s in n.settings],
        notes=notes,
    )


def _verify_view(h: Any, n: HostNic) -> HostView:
    notes = _notes(n) + [f"{s.id}: {s.message}" for s in n.checks if s.message]
    rows = [Row(s.status, (s.id, s.wanted or "", s.actual or "")) for s in n.checks]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((s.status for s in n.checks), "setting") if n.checks else "",
        rows=[r for r, s in zip(rows, n.checks, strict=True) if s.status != "ok"],
        all_rows=rows,
        notes=notes,
    )


def _rollback_view(h: Any, n: HostNic) -> HostView:
    notes = _notes(n) + [f"{f.path}: {f.message}" for f in n.files if f.status == "failed"]
    return HostView(
        host=h.host,
        status=n.status,
        summary=view.counted((f.status for f in n.files), "file") if n.files else "",
        rows=[Row(f.status, (f.path,)) for f in n.files if f.status == "failed"],
        all_rows=[Row(f.status, (f.path,)) for f in n.files],
        notes=notes,
    )
