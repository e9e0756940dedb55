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
from agent.paths import write_file
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
# what `tuner check --local [--slurm]` imports on a node besides the above (found by running
# it with only these: the CLI, the models, the tables, the policy files); tuner itself is
# installed with --no-deps, so Ansible, fabric, sushy and the rest stay on the controller.
LOCAL_REQUIREMENTS = [
    "typer>=0.12,<1",
    "pydantic>=2.5,<3",
    "rich>=13,<16",
    "PyYAML>=6,<7",
]
RUNTIME_REQUIREMENTS = [*NODE_REQUIREMENTS, *LOCAL_REQUIREMENTS]
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
    tuner: str | None = None  # tuner's version in the node's runtime (/opt/tuner/venv/bin/tuner)
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
    own = sorted(w.name for w in p.glob("tuner-*.whl") if TUNER_WHEEL.match(w.name))
    if len(own) > 1:
        raise BadInput(
            f"holds more than one tuner wheel ({', '.join(own)}): keep the one the nodes "
            "should run",
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


STAMP = ".tuner-wheelhouse.json"  # in a cached wheelhouse: its platform and wheel hashes


def wheel_hashes(d: Path) -> dict[str, str]:
    """name -> sha256 of every wheel in a folder."""
    from agent.provision_node import sha256_file

    return {
        w.name: sha256_file(str(w))
        for w in sorted(d.iterdir())
        if w.name.endswith(".whl") and w.is_file() and not w.is_symlink()
    }


def verify_wheels(d: Path, recorded: dict[str, str]) -> dict[str, str]:
    """The wheels of a wheelhouse against the sha256 recorded when they were downloaded (or,
    for --wheelhouse, read at the start of the run): a wheel changed, added or removed since
    is refused naming the file (exit 2), before anything is pushed."""
    have = sorted(p for p in d.iterdir() if p.name.endswith(".whl"))
    for w in have:
        if w.is_symlink() or not w.is_file():
            raise BadInput("a wheel must be a plain file, not a link", file=str(w))
        if w.name not in recorded:
            raise BadInput(
                "not among the wheels whose sha256 tuner recorded (added since): "
                "remove it, or the folder to download again",
                file=str(w),
            )
    now = wheel_hashes(d)
    for name, sha in recorded.items():
        if name not in now:
            raise BadInput("recorded at download but missing now", file=str(d / name))
        if now[name] != sha:
            raise BadInput(
                f"changed since it was downloaded (sha256 {now[name][:16]}..., recorded "
                f"{sha[:16]}...): refused; remove {d} to download again",
                file=str(d / name),
            )
    return now


def build_wheelhouse(
    state: Path, key: tuple[str, str, str], amdsmi: list[str]
) -> tuple[Path, dict[str, str]]:
    """The cached wheelhouse for a node platform with these amdsmi versions; built with the
    controller's pip (whatever index it is configured with) the first time only, in a temp
    folder beside it renamed at the end; the sha256 of every wheel is recorded then and
    checked on every later use (`verify_wheels`)."""
    import shutil
    import tempfile

    py, machine, glibc = key
    reqs = [
        *BUILD_REQUIREMENTS,
        *RUNTIME_REQUIREMENTS,
        *[f"amdsmi=={v}" for v in sorted(amdsmi)],
    ]
    digest = hashlib.sha256(json.dumps([key, reqs]).encode()).hexdigest()[:12]
    d = state / "wheelhouse" / f"cp{py.replace('.', '')}-{machine}-glibc{glibc}-{digest}"
    stamp = d / STAMP
    if stamp.is_file():
        try:
            doc = json.loads(stamp.read_text(encoding="utf-8"))
            recorded = doc["wheels"]
            assert isinstance(recorded, dict)
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
            raise BadInput(
                f"not a record tuner wrote ({e}): remove {d} to download again", file=str(stamp)
            ) from e
        return d, verify_wheels(d, recorded)
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.", suffix=".tuner-tmp", dir=d.parent))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(tmp),
            *pip_platform_args(py, machine, glibc),
            *reqs,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.startswith("ERROR")]
            raise Failed(
                f"cannot build the wheelhouse for Python {py} on {machine} (glibc {glibc}) "
                f"with `pip download`: {' '.join(lines)[-500:] or r.returncode}; supply one "
                "with --wheelhouse DIR (docs/provision.md)"
            )
        hashes = wheel_hashes(tmp)
        record = {"platform": key, "requirements": reqs, "wheels": hashes}
        write_file(tmp / STAMP, json.dumps(record, indent=1))
        if d.exists():  # an older, unrecorded build: replaced whole
            shutil.rmtree(d)
        os.rename(tmp, d)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return d, hashes


# what tuner's wheel is built from (pyproject.toml's [tool.hatch.build] and its readme)
SOURCE_PARTS = ("pyproject.toml", "README.md", "agent", "playbooks", "profiles", "checks")
TUNER_WHEEL = re.compile(r"^tuner-([^-]+)-py3-none-any\.whl$")


def source_dir() -> Path | None:
    """The checkout tuner runs from (an editable install, a source tree), else None."""
    top = Path(__file__).resolve().parent.parent
    try:
        text = (top / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return top if re.search(r'^name\s*=\s*"tuner"', text, re.M) else None


def source_digest(top: Path) -> str:
    """sha256 over the files tuner's wheel is built from (paths and bytes; no caches)."""
    h = hashlib.sha256()
    for part in SOURCE_PARTS:
        p = top / part
        files = [p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else []
        for f in files:
            rel = f.relative_to(top).as_posix()
            if "__pycache__" in f.parts or rel.endswith(".pyc") or not f.is_file():
                continue
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def tuner_wheel(state: Path) -> tuple[Path, str]:
    """tuner's own wheel for the nodes (pure Python: one for every platform), built once
    from the controller's source with `pip wheel --no-deps` and cached in the state folder
    under the hash of that source (a changed source builds a new one). Its sha256 is
    recorded then and checked on every later use, like the downloaded wheels."""
    import shutil
    import tempfile
    from importlib.metadata import PackageNotFoundError, distribution

    top = source_dir()
    dist = None
    if top is None:  # installed from a wheel: the same wheel again, from its RECORD
        try:
            dist = distribution("tuner")
        except PackageNotFoundError as e:
            raise Failed(
                "cannot make tuner's wheel for the nodes: no source tree and no installed "
                "tuner distribution; pass a folder holding tuner's wheel with --wheelhouse"
            ) from e
        record = dist.read_text("RECORD") or ""
        key = hashlib.sha256(record.encode()).hexdigest()
    else:
        key = source_digest(top)
    d = state / "wheelhouse" / f"tuner-{key[:16]}"
    stamp = d / STAMP
    if stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text(encoding="utf-8"))["wheels"]
            assert isinstance(recorded, dict) and len(recorded) == 1
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
            raise BadInput(
                f"not a record tuner wrote ({e}): remove {d} to build again", file=str(stamp)
            ) from e
        hashes = verify_wheels(d, recorded)
        name = next(iter(hashes))
        return d / name, hashes[name]
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.", suffix=".tuner-tmp", dir=d.parent))
    try:
        # build isolation fetches the build backend (hatchling) through the controller's
        # index, unless this Python has it already (an air-gapped controller)
        if top is None:
            assert dist is not None
            name, blob = repack(dist)
            write_file(tmp / name, blob)
            hashes = wheel_hashes(tmp)
        else:
            iso = ["--no-build-isolation"] if _has_module("hatchling") else []
            cmd = [
                sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                "-q", "-w", str(tmp), *iso, str(top),
            ]  # fmt: skip
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            hashes = wheel_hashes(tmp)
            if r.returncode != 0 or len(hashes) != 1 or not TUNER_WHEEL.match(next(iter(hashes))):
                lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
                raise Failed(
                    f"cannot build tuner's wheel from {top} with `pip wheel --no-deps`: "
                    f"{' '.join(lines[-3:])[-500:] or sorted(hashes)}"
                )
        source = str(top) if top is not None else f"installed {dist and dist.version}"
        write_file(tmp / STAMP, json.dumps({"source": source, "wheels": hashes}, indent=1))
        if d.exists():
            shutil.rmtree(d)
        os.rename(tmp, d)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    name = next(iter(hashes))
    return d / name, hashes[name]


# what pip writes on install and a wheel does not carry (PEP 376/610/627)
INSTALL_ONLY = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def repack(dist: Any) -> tuple[str, bytes]:
    """An installed tuner (from its wheel) as that wheel again: the files its RECORD lists
    inside site-packages, each checked against the sha256 RECORD holds (a file changed
    since the install is refused), the dist-info without pip's install-time files, a new
    RECORD; fixed times, sorted, so the same install makes the same bytes. The console
    script is left out: pip makes bin/tuner from entry_points.txt on the node."""
    import base64
    import io
    import zipfile

    info = f"tuner-{dist.version}.dist-info"
    members: list[tuple[str, bytes]] = []
    for f in dist.files or []:
        rel = f.as_posix()
        parts = rel.split("/")
        if parts[0] == ".." or "__pycache__" in parts or rel.endswith(".pyc"):
            continue
        if parts[0] == info and parts[-1] in INSTALL_ONLY:
            continue
        data = Path(str(f.locate())).read_bytes()
        if f.hash is not None:
            got = base64.urlsafe_b64encode(hashlib.new(f.hash.mode, data).digest())
            if got.rstrip(b"=").decode() != f.hash.value:
                raise BadInput(
                    "differs from what pip installed (its RECORD hash): refused; reinstall tuner",
                    file=str(f.locate()),
                )
        members.append((rel, data))
    if not any(n == f"{info}/METADATA" for n, _ in members):
        raise Failed(f"the installed tuner has no {info}/METADATA: reinstall tuner")
    buf = io.BytesIO()
    lines = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, data in sorted(members, key=lambda m: (m[0].startswith(info), m[0])):
            zi = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr, zi.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            lines.append(f"{rel},sha256={digest.decode()},{len(data)}")
        lines.append(f"{info}/RECORD,,")
        zi = zipfile.ZipInfo(f"{info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0))
        zi.external_attr, zi.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
        z.writestr(zi, "\n".join(lines) + "\n")
    return f"tuner-{dist.version}-py3-none-any.whl", buf.getvalue()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def pack(
    d: Path,
    state: Path,
    wheels: dict[str, str] | None = None,
    extra: dict[str, tuple[Path, str]] | None = None,
) -> tuple[Path, str]:
    """One tar of the wheelhouse's wheels (what is pushed) and its sha256, cached beside the
    wheelhouses; the same wheels always make the same bytes (sorted, no times, no owners).
    `wheels`: the verified sha256 of each wheel (default: read now); `extra`: wheels from
    elsewhere (tuner's own: name -> (path, sha256)); a wheel that differs while it is
    packed is refused, and a cached tar is used only when its bytes still hash to the
    recorded value."""
    import io
    import tarfile

    from agent.provision_node import sha256_file

    wheels = dict(wheels if wheels is not None else wheel_hashes(d))
    paths = {name: d / name for name in wheels}
    for name, (path, sha) in (extra or {}).items():
        wheels[name], paths[name] = sha, path
    h = hashlib.sha256(json.dumps(sorted(wheels.items())).encode())
    out = state / "wheelhouse" / f"push-{h.hexdigest()[:16]}.tar"
    sums = out.with_name(out.name + ".sha256")
    if out.is_file() and sums.is_file():
        want = sums.read_text(encoding="utf-8").strip()
        if sha256_file(str(out)) == want:
            return out, want
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(wheels):
            data = paths[name].read_bytes()
            if hashlib.sha256(data).hexdigest() != wheels[name]:
                raise BadInput("changed while tuner read it: refused", file=str(paths[name]))
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    write_file(out, blob)
    write_file(sums, digest + "\n")
    return out, digest


def _host(name: str, status: str, msg: str, f: dict[str, Any], steps: list[str]) -> HostProvision:
    keys = (
        "os kernel rocm_version amdgpu_version amdsmi_library amdsmi_package amdsmi_share "
        "python venv privilege"
    ).split()
    extra = {"tuner": f.get("tuner_version")}
    return HostProvision(
        host=name, status=status, message=msg, steps=steps, **{k: f.get(k) for k in keys}, **extra
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
    expects: dict[str, dict[str, Any]] = {}
    # the operator's wheelhouse: its wheels' sha256 as the run first reads them (checked
    # again before packing; the nodes check them before installing)
    supplied = wheel_hashes(wheelhouse) if wheelhouse is not None else {}
    if ready:
        groups: dict[tuple[str, str, str], list[str]] = {}
        for n in ready:
            groups.setdefault(platform_key(facts[n]), []).append(n)
        # tuner itself (`tuner check --local [--slurm]` on the node): the operator's
        # wheel when the folder has one, else built from this controller's source
        own = sorted(n for n in supplied if TUNER_WHEEL.match(n))  # one at most
        extra: dict[str, tuple[Path, str]] = {}
        if own:
            tuner_pkg = {"wheel": own[0], "sha256": supplied[own[0]]}
        else:
            _phase(progress, "tuner's own wheel (controller: built once per source, cached)", 0)
            path, sha = tuner_wheel(state)
            extra[path.name] = (path, sha)
            tuner_pkg = {"wheel": path.name, "sha256": sha}
        m = TUNER_WHEEL.match(tuner_pkg["wheel"])
        tuner_pkg["version"] = m.group(1) if m else ""
        if wheelhouse is None:
            _phase(progress, "the wheelhouse (controller: pip download once, cached)", 0)
        for key, names in groups.items():
            if wheelhouse is not None:
                d = wheelhouse
                hashes = verify_wheels(d, supplied)  # unchanged since the run read it
            else:
                need = sorted(
                    {
                        ".".join(re.findall(r"\d+", str(facts[n].get("rocm_version")))[:3])
                        for n in names
                        if not facts[n].get("amdsmi_share") and facts[n].get("rocm_version")
                    }
                )
                d, hashes = build_wheelhouse(state, key, need)
            tar, tar_sha = pack(d, state, hashes, extra)
            expect = {"tar": tar_sha, "wheels": {**hashes, **{k: v[1] for k, v in extra.items()}}}
            for n in names:
                houses[n] = str(tar)
                expects[n] = expect
        sub = inv.model_copy(update={"hosts": [h for h in inv.hosts if h.name in ready]})
        _phase(progress, "the runtime (venv, wheelhouse, amdsmi, tuner)", len(ready))
        outcomes2, art2 = run_playbook(
            "provision.yml",
            sub,
            {
                "tuner_mode": "apply",
                "tuner_venv": VENV,
                "tuner_wheelhouses": houses,
                "tuner_wheelhouse_expect": expects,
                "tuner_requirements": RUNTIME_REQUIREMENTS,
                "tuner_package": tuner_pkg,
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
            f"Python {h.python or '-'}; tuner {h.tuner or '-'}; privilege {h.privilege or '-'}"
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
