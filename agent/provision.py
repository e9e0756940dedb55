"""`tuner provision`: a node with its OS and ROCm made ready for tuner (docs/provision.md).

Two passes of playbooks/provision.yml through ansible-runner: `facts` (read only: what each
node has, which Python and platform it needs wheels for), then the controller builds (once,
cached in the state folder) or takes the operator's wheelhouse, and `apply` pushes it and
makes the node's runtime (agent/provision_node.py). Nodes never need an index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from agent.errors import BadInput, Failed
from agent.runner import ProgressFn, run_playbook

VENV = "/opt/tuner/venv"
# tuner's node-side packages (the ranges of pyproject.toml): the GPU collector (psutil,
# pyudev), the node agent (pyudev, prometheus_client), the launch probe (pyzmq). amdsmi is
# added per node (ROCm's own, else the wheel of the node's ROCm version).
NODE_REQUIREMENTS = [
    "psutil>=5.9,<8",
    "pyudev>=0.24,<1",
    "prometheus_client>=0.20,<1",
    "pyzmq>=25,<28",
]
BUILD_REQUIREMENTS = ["pip", "setuptools"]  # pip runs from its wheel; setuptools builds amdsmi


class HostProvision(BaseModel):
    host: str
    status: str  # changed | would change | unchanged | failed | unreachable
    message: str = ""
    steps: list[str] = []
    os: str | None = None
    kernel: str | None = None
    rocm_version: str | None = None
    amdgpu_version: str | None = None
    amdsmi_library: str | None = None
    amdsmi_package: str | None = None  # in the node's runtime (after the run)
    amdsmi_share: str | None = None  # ROCm's package source in /opt/rocm/share/amd_smi
    python: str | None = None
    venv: str | None = None
    privilege: str | None = None  # root | sudo | none
    wheelhouse: str | None = None  # the tar of the controller's wheelhouse this node got


class ProvisionReport(BaseModel):
    command: str = "provision"
    check: bool = False
    inventory: str
    wheelhouse_supplied: bool = False
    hosts: list[HostProvision]
    artifacts: list[str] = []

    @property
    def failed(self) -> bool:
        return any(h.status in ("failed", "unreachable") for h in self.hosts)


def check_wheelhouse(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BadInput("not a folder", field="--wheelhouse", file=path)
    if not any(p.glob("pip-*.whl")):
        raise BadInput(
            "has no pip wheel (nodes run pip from it): build it with `pip download pip "
            "setuptools ...` (docs/provision.md)",
            field="--wheelhouse",
            file=path,
        )
    return p.resolve()


def platform_key(f: dict[str, Any]) -> tuple[str, str, str]:
    """(python X.Y, machine, glibc X.Y) of a node, from its facts."""
    py = ".".join(str(f.get("python") or "").split(".")[:2])
    m = re.match(r"glibc (\d+\.\d+)", str(f.get("libc") or ""))
    return py, str(f.get("machine") or ""), m.group(1) if m else ""


def pip_platform_args(py: str, machine: str, glibc: str) -> list[str]:
    """`pip download` options for a node's interpreter: CPython X.Y, its ABI, and every
    manylinux tag its glibc accepts (PEP 600: manylinux_2_M for M <= the node's)."""
    major, minor = glibc.split(".") if glibc else ("2", "17")
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(int(minor), 4, -1)]
    if int(minor) >= 17:
        tags.append(f"manylinux2014_{machine}")
    args = ["--only-binary=:all:", "--python-version", py, "--implementation", "cp"]
    abi = "cp" + py.replace(".", "")
    for a in (abi, "abi3", "none"):
        args += ["--abi", a]
    for t in [*tags, "any"]:
        args += ["--platform", t]
    return args


def build_wheelhouse(state: Path, key: tuple[str, str, str], amdsmi: list[str]) -> Path:
    """The cached wheelhouse for a node platform with these amdsmi versions; built with the
    controller's pip (whatever index it is configured with) the first time only."""
    py, machine, glibc = key
    reqs = [*BUILD_REQUIREMENTS, *NODE_REQUIREMENTS, *[f"amdsmi=={v}" for v in sorted(amdsmi)]]
    digest = hashlib.sha256(json.dumps([key, reqs]).encode()).hexdigest()[:12]
    d = state / "wheelhouse" / f"cp{py.replace('.', '')}-{machine}-glibc{glibc}-{digest}"
    stamp = d / ".tuner-wheelhouse.json"
    if stamp.is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(d),
        *pip_platform_args(py, machine, glibc),
        *reqs,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.startswith("ERROR")]
        raise Failed(
            f"cannot build the wheelhouse for Python {py} on {machine} (glibc {glibc}) with "
            f"`pip download`: {' '.join(lines)[-500:] or r.returncode}; supply one with "
            "--wheelhouse DIR (docs/provision.md)"
        )
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"platform": key, "requirements": reqs}, indent=1))
    os.replace(tmp, stamp)
    return d


def pack(d: Path, state: Path) -> Path:
    """One tar of the wheelhouse's wheels (what is pushed), cached beside the wheelhouses;
    the same wheels always make the same bytes (sorted, no times, no owners)."""
    import tarfile

    wheels = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith(".whl"))
    h = hashlib.sha256()
    for w in wheels:
        st = w.stat()
        h.update(f"{w.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    out = state / "wheelhouse" / f"push-{h.hexdigest()[:16]}.tar"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
        for w in wheels:
            info = t.gettarinfo(str(w), arcname=w.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with open(w, "rb") as f:
                t.addfile(info, f)
    os.replace(tmp, out)
    return out


def _host(name: str, status: str, msg: str, f: dict[str, Any], steps: list[str]) -> HostProvision:
    keys = (
        "os kernel rocm_version amdgpu_version amdsmi_library amdsmi_package amdsmi_share "
        "python venv privilege"
    ).split()
    return HostProvision(
        host=name, status=status, message=msg, steps=steps, **{k: f.get(k) for k in keys}
    )


def provision(
    inv: Any,
    check: bool,
    forks: int | None,
    progress: ProgressFn | None,
    state: Path,
    wheelhouse: Path | None = None,
) -> ProvisionReport:
    hosts: dict[str, HostProvision] = {}
    _phase(progress, "what each node has (read only)", len(inv.hosts))
    outcomes, art1 = run_playbook(
        "provision.yml",
        inv,
        {"tuner_mode": "facts", "tuner_venv": VENV},
        forks=forks,
        progress=progress,
        module="tuner_provision",
    )
    ready = []
    for name, o in outcomes.items():
        if o.status == "ok":
            ready.append(name)
        else:
            st = "unreachable" if o.status == "unreachable" else "failed"
            hosts[name] = _host(name, st, o.message or o.status, o.facts, [])
    facts = {n: outcomes[n].facts for n in ready}
    arts = [art1]
    houses: dict[str, str] = {}
    if ready:
        groups: dict[tuple[str, str, str], list[str]] = {}
        for n in ready:
            groups.setdefault(platform_key(facts[n]), []).append(n)
        if wheelhouse is None:
            _phase(progress, "the wheelhouse (controller: pip download once, cached)", 0)
        for key, names in groups.items():
            if wheelhouse is not None:
                d = wheelhouse
            else:
                need = sorted(
                    {
                        ".".join(re.findall(r"\d+", str(facts[n].get("rocm_version")))[:3])
                        for n in names
                        if not facts[n].get("amdsmi_share") and facts[n].get("rocm_version")
                    }
                )
                d = build_wheelhouse(state, key, need)
            tar = pack(d, state)
            for n in names:
                houses[n] = str(tar)
        sub = inv.model_copy(update={"hosts": [h for h in inv.hosts if h.name in ready]})
        _phase(progress, "the runtime (venv, wheelhouse, amdsmi)", len(ready))
        outcomes2, art2 = run_playbook(
            "provision.yml",
            sub,
            {
                "tuner_mode": "apply",
                "tuner_venv": VENV,
                "tuner_wheelhouses": houses,
                "tuner_requirements": NODE_REQUIREMENTS,
            },
            check=check,
            forks=forks,
            progress=progress,
            module="tuner_provision",
        )
        arts.append(art2)
        for name, o in outcomes2.items():
            steps = [str(r.get("step")) for r in o.results]
            f = o.facts or facts.get(name, {})
            if o.status == "ok":
                st = ("would change" if check else "changed") if steps else "unchanged"
                hosts[name] = _host(name, st, "", f, steps)
            else:
                st = "unreachable" if o.status == "unreachable" else "failed"
                hosts[name] = _host(name, st, o.message or o.status, f, steps)
            hosts[name].wheelhouse = houses.get(name)
        _install_agent(inv, hosts, check, forks, progress, arts)
    return ProvisionReport(
        check=check,
        inventory=inv.path,
        wheelhouse_supplied=wheelhouse is not None,
        hosts=[hosts[h.name] for h in inv.hosts],
        artifacts=arts,
    )


def _phase(progress: ProgressFn | None, text: str, hosts: int) -> None:
    """Tell a phase-aware progress (agent.runner.Progress) that a pass starts."""
    phase = getattr(progress, "phase", None)
    if phase is not None:
        phase(text, hosts)


def _install_agent(
    inv: Any,
    hosts: dict[str, HostProvision],
    check: bool,
    forks: int | None,
    progress: ProgressFn | None,
    arts: list[str],
) -> None:
    """The last pass: the node agent (playbooks/agent.yml, docs/agent.md) into the runtime
    made above, on the hosts whose runtime is ready. A failed install fails the host."""
    ok = [n for n, h in hosts.items() if h.status in ("changed", "unchanged", "would change")]
    if not ok:
        return
    sub = inv.model_copy(update={"hosts": [h for h in inv.hosts if h.name in ok]})
    _phase(progress, "the node agent", len(ok))
    outcomes, art = run_playbook(
        "agent.yml",
        sub,
        {"tuner_mode": "install"},
        check=check,
        forks=forks,
        progress=progress,
        module="tuner_agent",
    )
    arts.append(art)
    for name, o in outcomes.items():
        h = hosts[name]
        detail = o.results[0] if o.results else {}
        if o.status != "ok":
            h.status = "unreachable" if o.status == "unreachable" else "failed"
            h.message = "node agent: " + (o.message or o.status)
        elif detail.get("status") in ("installed", "would install"):
            h.steps.append("install the node agent (tuner-agent.service)")
            h.status = "would change" if check else "changed"


def print_report(r: ProvisionReport, console: Console) -> None:
    """Hosts with the same findings and steps as one row (agent/view.py); --json has all."""
    from agent.view import HostView, Row, counted, fleet_table

    views = []
    for h in r.hosts:
        pkg = h.amdsmi_package or (f"({h.amdsmi_share} in share)" if h.amdsmi_share else "-")
        found = (
            f"{h.os or '?'} / {h.kernel or '?'}; ROCm {h.rocm_version or '-'}; amdgpu "
            f"{h.amdgpu_version or '-'}; amdsmi lib {h.amdsmi_library or '-'} / pkg {pkg}; "
            f"Python {h.python or '-'}; privilege {h.privilege or '-'}"
        )
        step = "would change" if r.check else "changed"
        views.append(
            HostView(
                host=h.host,
                status=h.status,
                summary=found,
                rows=[Row(step, (s,)) for s in h.steps],
                notes=[h.message] if h.message else [],
            )
        )
    fleet_table(
        "tuner provision" + (" --check" if r.check else ""),
        ["found on the node / steps"],
        views,
        console,
    )
    console.print(counted((h.status for h in r.hosts), "host"))
