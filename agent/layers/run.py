"""The orchestrator: one command over the selected layers, in rolling batches.

1. Every selected layer validates its host variables (`targets`) before anything is touched:
   bad input exits 2 with nothing sent.
2. The hosts are cut into batches (`--batch-size`; apply and rollback only, not --check).
   In each batch the layers run in their `order`, in two groups around the reboot point:
   first the layers with a part in the reboot (`Layer.reboot` "waits": their changes need a
   reboot, e.g. the kernel command line; "resets": they can reset a node themselves, e.g.
   the BIOS through the BMC, and reset the waiting hosts too), then the reboot plan
   (`Reboots`, `_reboot`): the hosts still waiting are rebooted through the OS, once per
   node, and the waiting layers read what the reboot brought (`rebooted`); then the other
   layers (the OS), so runtime values are set on the booted system. Each step is a normal
   ansible-runner run limited to the batch's hosts.
3. tuner counts failed (or unreachable) hosts across batches: once more than `--max-failed`
   have failed, no new batch starts; the hosts left are `not started` in every layer.
4. Each host's report gets every layer's part (`layers`: status, message, detail); the
   host's status is the worst of its layers' (RANK); on verify the cross-layer checks
   registered with the layers (`Layer.crosses`) run where all the layers they need ran.

Nothing here names a layer: agent/layers/__init__.py `REGISTRY` lists them.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from agent import layers as registry
from agent import report, view
from agent.errors import BadInput
from agent.inventory import InventoryHost
from agent.layers.base import HostResult, Layer, Run

# Host statuses, worst first: the host's status is the first any of its layers has.
RANK: dict[str, tuple[str, ...]] = {
    "apply": ("unreachable", "failed", "not started", "changed", "would change", "unchanged"),
    "verify": ("unreachable", "failed", "drift", "pending", "ok"),
    "rollback": (
        "unreachable",
        "failed",
        "not started",
        "pending reboot",
        "restored",
        "would restore",
        "nothing to do",
    ),
}
BAD = ("failed", "unreachable")


def worst(command: str, statuses: list[str]) -> str:
    order = RANK[command]
    if not statuses:
        return order[-1]
    return min(statuses, key=lambda s: order.index(s) if s in order else 0)


def execute(run: Run, layers: list[Layer]) -> Any:
    """Run `run.command` over `layers` (in the order given) -> the command's report."""
    run.options.check()
    # secrets leave the environment before any Ansible run could record them
    run.options.credentials.take(*registry.secrets())
    for layer in layers:
        layer.check_options(run)
    run.reboots.allowed = (
        run.reboot == "if-needed" and not run.check and run.command in ("apply", "rollback")
    )
    active = [layer for layer in layers if layer.wants(run)]
    layers_by_name = {layer.name: layer.label for layer in active}
    if not active and run.command == "rollback":  # no layer has anything recorded
        return _report(run, [], {h.name: {} for h in run.inv.hosts}, _batches(run, 0))
    if not active:
        names = ", ".join(layer.name for layer in layers)
        raise BadInput(
            f"the profile sets nothing for the selected layer(s) ({names})", field="--layer"
        )
    plans: list[tuple[Layer, set[str], dict[str, str]]] = []
    for layer in active:  # validate everything first
        hosts_of_layer, skipped = layer.targets(run)
        plans.append((layer, {h.name for h in hosts_of_layer}, skipped))

    if run.command == "apply" and not run.check:
        refused: dict[str, str] = {}
        for layer, targets, _ in plans:
            picked = [h for h in run.inv.hosts if h.name in targets]
            if picked and type(layer).refused is not Layer.refused:
                phase = getattr(run.progress, "phase", None)
                if phase is not None:
                    phase(
                        f"{layer.label}: checking {view.fold([h.name for h in picked])} "
                        "before changing anything",
                        0,
                    )
            for name, why in layer.refused(run, picked).items():
                refused[name] = f"{layer.label}: {why}"
        _refuse(refused)

    hosts = run.inv.hosts
    rolling = run.command in ("apply", "rollback") and not run.check and run.batch_size
    size = max(1, min(run.batch_size or len(hosts), len(hosts))) if rolling else len(hosts)
    size = max(size, 1)
    batches: list[list[InventoryHost]] = [hosts[i : i + size] for i in range(0, len(hosts), size)]
    numbered = len(batches) > 1
    results: dict[str, dict[str, HostResult]] = {h.name: {} for h in hosts}
    info = _batches(run, size)
    why_not = (
        f"not started: more than --max-failed {run.max_failed} "
        f"{'host' if run.max_failed == 1 else 'hosts'} failed"
    )
    started = time.monotonic()
    for i, batch in enumerate(batches, 1):
        if info.stopped:
            for h in batch:
                for layer, targets, _ in plans:
                    if h.name in targets:
                        results[h.name][layer.name] = layer.not_started(run, why_not, i)
            continue
        info.batches += 1
        batch_start = time.monotonic()
        before = [p for p in plans if p[0].reboot != "none"]
        after = [p for p in plans if p[0].reboot == "none"]
        for group in (before, after):
            if group is after:  # the reboot point: once per node, for every layer
                _reboot(run, plans, batch, results, info)
            for layer, targets, skipped in group:
                todo = [h for h in batch if h.name in targets]
                if todo:
                    _phase(run, layer, todo, i, len(batches), batch_start - started, batch_start)
                    step = getattr(layer, run.command if not run.check else _check_step(run))
                    got, artifacts = step(run, todo, i if numbered else None)
                    info.artifacts.append(artifacts)
                    for name, res in got.items():
                        results[name][layer.name] = res
                for h in batch:
                    if h.name in skipped:
                        results[h.name][layer.name] = layer.skipped(run, skipped[h.name])
        failed_now = sum(1 for h in batch if any(r.status in BAD for r in results[h.name].values()))
        info.failed += failed_now
        if run.max_failed is not None and info.failed > run.max_failed and i < len(batches):
            info.stopped = True
    _refuse(
        {
            name: f"{layers_by_name[layer]}: {res.message}"
            for name, got in results.items()
            for layer, res in got.items()
            if res.facts.get("bad_input")
        }
    )
    return _report(run, plans, results, info)


def _phase(
    run: Run,
    layer: Layer,
    todo: list[InventoryHost],
    i: int,
    n: int,
    before: float,
    batch_start: float,
) -> None:
    """Tell the progress which step starts: `BIOS batch 2/4: apply on node[05-08]`, with
    the time left once earlier batches tell it (`before`: seconds the i-1 batches took;
    batches of one run take about the same time)."""
    phase = getattr(run.progress, "phase", None)
    if phase is None:
        return
    word = (_check_step(run) + " (--check)") if run.check else run.command
    where = f"{layer.label} batch {i}/{n}" if n > 1 else layer.label
    text = f"{where}: {word} on {view.fold([h.name for h in todo])}"
    if i > 1:
        left = before / (i - 1) * (n - i + 1) - (time.monotonic() - batch_start)
        text += f" (about {max(left, 0):.0f} s left)"
    phase(text, len(todo))


def _is_sim(h: InventoryHost) -> bool:
    v = h.vars.get("tuner_sim")
    return v is True or (isinstance(v, str) and v.lower() in ("true", "yes", "1"))


def _reboot(
    run: Run,
    plans: list[tuple[Layer, set[str], dict[str, str]]],
    batch: list[InventoryHost],
    results: dict[str, dict[str, HostResult]],
    info: report.Batches,
) -> None:
    """The reboot point of a batch, after the layers with a part in the reboot: the hosts a
    layer waits on that no layer reset yet are rebooted through the OS (Ansible's reboot
    module; in the simulator, the node tree's reboot), once per node; then each waiting
    layer reads what the reboot brought (`Layer.rebooted`)."""
    plan = run.reboots
    if plan.allowed:
        waiting = set(plan.pending([h.name for h in batch]))
        for sim, module in ((True, "tuner_sim_reboot"), (False, "ansible.builtin.reboot")):
            part = [h for h in batch if h.name in waiting and _is_sim(h) == sim]
            if not part:
                continue
            outcomes, art = run.playbook(
                "reboot.yml",
                part,
                {"tuner_reboot_timeout": int(run.options.reboot_timeout)},
                module=module,
                progress=False,
            )
            info.artifacts.append(art)
            for name, o in outcomes.items():
                if o.status == "ok":
                    plan.did(name, "simulator" if sim else "os")
                else:
                    plan.failed[name] = o.message
    for layer, targets, _ in plans:
        if layer.reboot != "waits":
            continue
        todo = [h for h in batch if h.name in targets and layer.name in results[h.name]]
        if todo:
            got = {h.name: results[h.name][layer.name] for h in todo}
            info.artifacts += layer.rebooted(run, todo, got)


def _refuse(refused: dict[str, str]) -> None:
    """Input only a host could judge was refused there (nothing sent to it): exit 2."""
    if refused:
        raise BadInput(
            "refused by the host, nothing changed: "
            + "; ".join(f"{n}: {why}" for n, why in sorted(refused.items())),
            field="profile / inventory",
        )


def _batches(run: Run, size: int) -> report.Batches:
    return report.Batches(
        batch_size=size, max_failed=run.max_failed, batches=0, failed=0, stopped=False
    )


def _check_step(run: Run) -> str:
    return "plan" if run.command == "apply" else run.command


def _report(
    run: Run,
    plans: list[tuple[Layer, set[str], dict[str, str]]],
    results: dict[str, dict[str, HostResult]],
    info: report.Batches,
) -> Any:
    layers = [layer for layer, _, _ in plans]
    names = [layer.name for layer in layers]
    artifacts = info.artifacts[-1] if info.artifacts else ""
    host_model = {
        "apply": report.HostApply,
        "verify": report.HostVerify,
        "rollback": report.HostRollback,
    }[run.command]
    hosts: list[Any] = []
    for h in run.inv.hosts:
        got = results[h.name]
        statuses = [got[name].status for name in names if name in got]
        hr = host_model(host=h.name, status=worst(run.command, statuses))
        for cls in registry.classes():  # schema 1's fields, kept for --json readers
            for key, value in cls.v1_keys(run.command, got.get(cls.name)).items():
                setattr(hr, key, value)
        for layer in layers:
            r = got.get(layer.name)
            if r is not None:
                hr.layers[layer.name] = report.LayerPart(
                    status=r.status, message=r.message, detail=r.detail
                )
        hr.message = _message(run, layers, got)
        if run.command == "verify":
            for cross in registry.crosses():
                if all(n in got for n in cross.needs):
                    hr.cross += cross.check(run.profile, got)
            if hr.status in ("ok", "pending") and any(
                getattr(c, "status", "") == "mismatch" for c in hr.cross
            ):
                hr.status = "drift"
        hosts.append(hr)
    from agent.runner import run_security

    common: dict[str, Any] = {
        "security": run_security(),  # the layers add what they relaxed (`finish`)
        "inventory": run.inv.path,
        "artifacts": artifacts,
        "layers": names,
        "summary": report.summary([x.status for x in hosts]),
        "hosts": hosts,
    }
    rep: Any
    if run.command == "apply":
        assert run.profile is not None
        rep = report.ApplyReport(profile=run.profile.name, check=run.check, batches=info, **common)
    elif run.command == "verify":
        assert run.profile is not None
        rep = report.VerifyReport(profile=run.profile.name, **common)
    else:
        rep = report.RollbackReport(check=run.check, batches=info, **common)
    for layer in layers:
        layer.finish(run, rep)
    return rep


def _message(run: Run, layers: list[Layer], got: dict[str, HostResult]) -> str:
    """Why a host failed (or was not started): the messages of layers that do not prefix
    them (the OS's) first and as they are, the others' after their label ("BIOS: ...")."""
    parts = []
    seen: set[str] = set()
    for layer in sorted(layers, key=lambda x: x.prefix_messages):
        r = got.get(layer.name)
        if r is None or not r.message or r.status not in (*BAD, "not started"):
            continue
        if r.message in seen:
            continue
        seen.add(r.message)
        parts.append(f"{layer.label}: {r.message}" if layer.prefix_messages else r.message)
    return "; ".join(parts)


# --------------------------------------------------------------------------- tables


def print_report(r: Any, layers: list[Layer], console: Console, detail: bool = False) -> None:
    """Each layer's table (hosts with the same result grouped; `detail`: every host and
    row), then the fleet's line."""
    ran = set(r.layers)
    for layer in layers:
        if layer.name in ran:
            layer.table(r, console, detail)
    line = view.fleet_line([h.status for h in r.hosts]) + "."
    if isinstance(r, report.VerifyReport):
        verdict = "conforms" if r.exit_code == 0 else "does NOT conform"
        line += f" The fleet {verdict}."
        if any(h.status == "pending" for h in r.hosts):
            line += " pending: values are set and take effect at the next reboot."
    else:
        if r.check:
            line += " Nothing was changed (--check)."
        line += f" Run log: {r.artifacts}"
        b = r.batches
        if b is not None and b.batches > 1:
            cap = "none" if b.max_failed is None else str(b.max_failed)
            line += (
                f"\n{view.n_of(b.batches, 'batch', 'batches')} of up to {b.batch_size}, "
                f"{b.failed} failed (cap {cap})" + (", stopped at the cap" if b.stopped else "")
            )
    bad = [h.host for h in r.hosts if h.status in (*BAD, "not started", "drift")]
    if bad:
        line += f"\nNeeds attention: {escape(view.fold(bad))}"
    console.print(line, soft_wrap=True)
