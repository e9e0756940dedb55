"""Capture bundles: assemble, redact, write (a folder or a .tar.gz) and read back safely.

A bundle is plain files (docs/capture.md): ``README.md``, ``manifest.json`` (tuner version,
time, host, what was read, what could not be read and why, sha256 and size per file),
``node/...`` (files of the node under their own paths), ``kernel-log.txt``,
``pci-drivers.txt``, ``amdsmi/calls.json`` (every amdsmi call of the GPU collector with its
status and raw answer) and ``bmc/redfish/v1/.../index.json`` (the BMC's resources in the DMTF
mockup layout). Pure apart from ``write_bundle`` / ``read_bundle``.

Reading is defensive: a bundle is untrusted input. ``read_bundle`` accepts only regular files
and folders, paths inside the bundle's one folder (no absolute path, no ``..``, no link,
device or FIFO), bounded sizes and counts, and a manifest whose hashes match every file; any
other bundle is ``BadInput`` (exit 2), raised before the caller writes anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent.errors import BadInput

FORMAT = "tuner-capture/1"
MANIFEST = "manifest.json"
README = "README.md"
CALLS = "amdsmi/calls.json"
MAX_FILES = 50_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")

# ------------------------------------------------------------------ redaction

UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
MAC = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:])")
SERIAL_KEY = re.compile(
    r"serial|uuid|servicetag|service_tag|macaddress|mac_address|^guid$|chassis_?tag", re.I
)
# gpu-state lines of a simulated node (docs/sim-gpu-state.md) that carry identities
STATE_LINE = re.compile(
    r"^(\s*(?:uuid|hip_uuid|asic_serial|board\.product_serial)\s*=\s*)(\"?)([^\"#\n]*?)(\"?)(\s*(?:#.*)?)$",
    re.M,
)
PLACEHOLDERS = {"", "n/a", "na", "none", "null", "not specified", "to be filled by o.e.m.", "0"}
NULL_MACS = {"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"}


class Redactor:
    """Replaces serials, UUIDs and MACs by tokens of the same shape, consistently: the same
    value gets the same token in every file of every bundle this redactor sees (one
    ``tuner capture`` run), so duplicates across nodes stay visible."""

    def __init__(self) -> None:
        self.map: dict[str, str] = {}
        self._n = 0

    def token(self, value: str) -> str:
        if value in self.map:
            return self.map[value]
        if value.lower() in PLACEHOLDERS or set(value) <= {"0", "-", ":", "x", " "}:
            return value
        self._n += 1
        n = self._n
        if UUID.fullmatch(value):
            tok = f"00000000-0000-4000-8000-{n:012x}"
            tok = tok.upper() if value.isupper() else tok
        elif MAC.fullmatch(value):
            if value.lower() in NULL_MACS:
                return value
            sep = value[2]
            tok = sep.join(["02", "00", "00", f"{n >> 16 & 255:02x}", f"{n >> 8 & 255:02x}"])
            tok += f"{sep}{n & 255:02x}"
            tok = tok.upper() if value.isupper() else tok
        elif re.fullmatch(r"(0x)?[0-9A-Fa-f]{8,}", value):
            prefix = "0x" if value.lower().startswith("0x") else ""
            digits = len(value) - len(prefix)
            tok = prefix + f"{0xEDAC7000 + n:X}".rjust(digits, "0")[-digits:]
        elif value.startswith("GPU-") and re.fullmatch(r"GPU-[0-9A-Fa-f]+", value):
            tok = "GPU-" + f"{0xEDAC7000 + n:x}".rjust(len(value) - 4, "0")
        else:
            tok = f"REDACTED-{n:04d}"
        self.map[value] = tok
        return tok

    def _json(self, v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            return {k: self._json(x, str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [self._json(x, key) for x in v]
        if isinstance(v, str) and SERIAL_KEY.search(key):
            return self.token(v)
        return v

    def collect(self, files: dict[str, bytes]) -> None:
        """First pass: learn every identity (keyed JSON values, state lines, UUIDs, MACs)."""
        for path, data in files.items():
            text = data.decode("utf-8", errors="replace")
            if path.endswith(".json"):
                try:
                    self._json(json.loads(text))
                except ValueError:
                    pass
            for m in STATE_LINE.finditer(text):
                self.token(m.group(3).strip())
            for rx in (UUID, MAC):
                for m in rx.finditer(text):
                    self.token(m.group(0))

    def apply(self, files: dict[str, bytes]) -> dict[str, bytes]:
        """Second pass: replace every learned value wherever it appears (longest first)."""
        known = sorted(
            ((k, v) for k, v in self.map.items() if k != v and len(k) >= 6),
            key=lambda kv: -len(kv[0]),
        )
        rx = re.compile("|".join(re.escape(k) for k, _ in known)) if known else None
        out: dict[str, bytes] = {}
        for path, data in files.items():
            text = data.decode("utf-8", errors="replace")
            if path.endswith(".json"):
                try:
                    doc = self._json(json.loads(text))
                    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
                except ValueError:
                    pass
            text = STATE_LINE.sub(
                lambda m: (
                    m.group(1)
                    + m.group(2)
                    + self.token(m.group(3).strip())
                    + m.group(4)
                    + m.group(5)
                ),
                text,
            )
            if rx is not None:
                text = rx.sub(lambda m: self.map[m.group(0)], text)
            out[path] = text.encode("utf-8")
        return out


# ------------------------------------------------------------------ assemble


def safe_name(host: str) -> str:
    name = SAFE_NAME.sub("_", host).lstrip(".") or "node"
    return name[:100]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jdump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def assemble(
    host: str,
    node: dict[str, Any] | None,
    calls: list[dict[str, Any]] | None,
    bmc: dict[str, Any] | None,
    meta: dict[str, Any],
    not_read: dict[str, str],
) -> dict[str, bytes]:
    """The bundle's files (manifest and README excluded) from what was read."""
    files: dict[str, bytes] = {}
    if node:
        for rel, text in node.get("files", {}).items():
            files[f"node/{rel}"] = str(text).encode("utf-8")
        for name, text in node.get("derived", {}).items():
            files[name] = str(text).encode("utf-8")
        not_read.update(node.get("not_read") or {})
    if calls is not None:
        files[CALLS] = jdump(calls)
    if bmc:
        for path, doc in bmc.get("docs", {}).items():
            files[path] = jdump(doc)
        not_read.update(bmc.get("not_read") or {})
    return files


def finish(
    host: str,
    files: dict[str, bytes],
    meta: dict[str, Any],
    not_read: dict[str, str],
    redacted: bool,
) -> dict[str, bytes]:
    """Add README.md and manifest.json (hashes of every other file)."""
    files = dict(files)
    files[README] = readme(host, files, meta, not_read, redacted).encode("utf-8")
    manifest = {
        "format": FORMAT,
        **meta,
        "host": host,
        "redacted": redacted,
        "read": {
            "node_files": sum(1 for p in files if p.startswith("node/")),
            "amdsmi_calls": _count_calls(files.get(CALLS)),
            "bmc_resources": sum(1 for p in files if p.startswith("bmc/")),
        },
        "not_read": dict(sorted(not_read.items())),
        "files": {p: {"sha256": sha256(d), "bytes": len(d)} for p, d in sorted(files.items())},
    }
    files[MANIFEST] = jdump(manifest)
    return files


def _count_calls(data: bytes | None) -> int:
    if data is None:
        return 0
    try:
        return len(json.loads(data))
    except ValueError:
        return 0


def readme(
    host: str, files: dict[str, bytes], meta: dict[str, Any], not_read: dict[str, str], red: bool
) -> str:
    gpus = 0
    if CALLS in files:
        try:
            for c in json.loads(files[CALLS]):
                if c.get("fn") == "amdsmi_get_processor_handles" and c.get("code") == 0:
                    gpus = len(c.get("value") or [])
        except ValueError:
            pass
    lines = [
        f"# tuner capture of {host}",
        "",
        f"Taken {meta.get('created_at')} by tuner {meta.get('tuner_version')} (read only: "
        "nothing on the node or its BMC was changed)."
        + (
            " Serials, UUIDs and MACs are replaced by tokens (the same value, the same token)."
            if red
            else ""
        ),
        "",
        "Everything here is a plain file; no tuner is needed to read it.",
        "",
        "| path | what |",
        "| --- | --- |",
        "| `manifest.json` | tuner version, time, host, what was read, what could not be read "
        "and why, sha256 and size of every file |",
        "| `node/...` | files of the node under their own path: `node/proc/cpuinfo` is "
        "`/proc/cpuinfo` (/proc, the sysctls tuner manages, cpufreq, cpuidle, THP, NUMA nodes, "
        "the PCI devices of GPUs and NICs: link speed/width, numa_node, AER counters; "
        "os-release, ROCm and amdgpu versions) |",
        "| `kernel-log.txt` | the amdgpu/KFD lines of the kernel log since boot |",
        "| `pci-drivers.txt` | each captured PCI device and the driver bound to it |",
        f"| `amdsmi/calls.json` | every amdsmi call tuner's GPU collector made ({gpus} GPUs): "
        "function, arguments (`gpu[i]` = the i-th processor handle), status, raw answer |",
        "| `bmc/redfish/v1/.../index.json` | the BMC's Redfish resources (service root, "
        "System, Bios, its settings object, the attribute registry, managers), in the layout "
        "of DMTF's Redfish-Mockup-Server (`redfishMockupServer.py -D bmc` serves them) |",
        "",
        "Check the files against the manifest: `sha256sum` each path, or "
        "`tuner capture --read THIS_FOLDER`.",
        "",
    ]
    if not_read:
        lines += ["## Not read", ""]
        lines += [f"- `{p}`: {why}" for p, why in sorted(not_read.items())[:200]]
        if len(not_read) > 200:
            lines.append(f"- ... and {len(not_read) - 200} more (manifest.json lists all)")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ write


def target(out_dir: Path, host: str, archive: bool) -> Path:
    return out_dir / (safe_name(host) + (".tar.gz" if archive else ""))


def write_bundle(out_dir: Path, host: str, files: dict[str, bytes], archive: bool) -> Path:
    """Write a bundle atomically (a temporary sibling, then a rename); -> its path."""
    dest = target(out_dir, host, archive)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = safe_name(host)
    if archive:
        # exclusive, unpredictable temp file, then a rename: the one writer's promise
        fd, tmp = tempfile.mkstemp(prefix=f".{top}.", suffix=".tmp", dir=out_dir)  # one-writer:
        try:
            with (
                os.fdopen(fd, "wb") as raw,
                tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar,
            ):
                dirs: set[str] = set()
                for path in sorted(files):
                    parts = PurePosixPath(path).parts[:-1]
                    for i in range(len(parts) + 1):
                        d = "/".join((top, *parts[:i]))
                        if d not in dirs:
                            dirs.add(d)
                            ti = tarfile.TarInfo(d)
                            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                            tar.addfile(ti)
                    ti = tarfile.TarInfo(f"{top}/{path}")
                    ti.size, ti.mode = len(files[path]), 0o644
                    tar.addfile(ti, io.BytesIO(files[path]))
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".tmp", dir=out_dir))
    try:
        made: set[Path] = set()
        for path, data in files.items():
            p = tmpdir / path
            if p.parent not in made:  # thousands of files share a few hundred folders
                p.parent.mkdir(parents=True, exist_ok=True)
                made.add(p.parent)
            with open(p, "wb") as f:  # one-writer: inside the mkdtemp folder made above
                f.write(data)
        tmpdir.chmod(0o755)
        os.rename(tmpdir, dest)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return dest


# ------------------------------------------------------------------ read


@dataclass
class Bundle:
    path: str
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return str(self.manifest.get("host") or "")

    def json(self, path: str) -> Any:
        return json.loads(self.files[path])

    def text(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")


def _bad(path: str, why: str) -> BadInput:
    return BadInput(f"not a usable capture bundle: {why}", file=path)


def _check_rel(src: str, rel: str) -> str:
    p = PurePosixPath(rel)
    if rel.startswith("/") or rel.startswith("\\") or p.is_absolute():
        raise _bad(src, f"{rel!r} is an absolute path")
    if any(part in ("..", "") for part in rel.split("/")) or "\\" in rel or "\0" in rel:
        raise _bad(src, f"{rel!r} leaves the bundle's folder")
    return rel


def _read_folder(src: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    base = Path(src)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            rel = full.relative_to(base).as_posix()
            if stat.S_ISLNK(st.st_mode):
                raise _bad(src, f"{rel} is a symbolic link")
            if name in dirnames:
                if not stat.S_ISDIR(st.st_mode):
                    raise _bad(src, f"{rel} is not a regular file or folder")
                continue
            if not stat.S_ISREG(st.st_mode):
                raise _bad(src, f"{rel} is not a regular file (a device, FIFO or socket)")
            if st.st_nlink > 1:
                raise _bad(src, f"{rel} is a hard link")
            if st.st_size > MAX_FILE_BYTES:
                raise _bad(src, f"{rel} is larger than {MAX_FILE_BYTES} bytes")
            total += st.st_size
            if total > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
                raise _bad(src, f"larger than {MAX_TOTAL_BYTES} bytes or {MAX_FILES} files")
            files[_check_rel(src, rel)] = full.read_bytes()
    return files


def _read_archive(src: str) -> dict[str, bytes]:
    size = os.path.getsize(src)
    if size > MAX_ARCHIVE_BYTES:
        raise _bad(src, f"the archive is larger than {MAX_ARCHIVE_BYTES} bytes")
    files: dict[str, bytes] = {}
    total = 0
    top: str | None = None
    try:
        with tarfile.open(src, mode="r:gz") as tar:
            for m in tar:
                name = m.name
                _check_rel(src, name.rstrip("/") if m.isdir() else name)
                first = name.split("/", 1)[0]
                top = top or first
                if first != top:
                    raise _bad(src, f"{name!r} is outside the bundle's one folder {top!r}")
                if m.issym() or m.islnk():
                    raise _bad(src, f"{name} is a link")
                if m.isdir():
                    continue
                if not m.isfile():
                    raise _bad(src, f"{name} is not a regular file (a device or FIFO)")
                if "/" not in name:
                    raise _bad(src, f"{name} is outside the bundle's folder")
                if m.size > MAX_FILE_BYTES:
                    raise _bad(src, f"{name} is larger than {MAX_FILE_BYTES} bytes")
                total += m.size
                if total > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
                    raise _bad(src, f"larger than {MAX_TOTAL_BYTES} bytes or {MAX_FILES} files")
                f = tar.extractfile(m)
                if f is None:
                    raise _bad(src, f"{name} cannot be read")
                data = f.read(m.size + 1)
                if len(data) != m.size:
                    raise _bad(src, f"{name} is truncated")
                rel = name.split("/", 1)[1]
                if rel in files:
                    raise _bad(src, f"{name} appears twice")
                files[rel] = data
    except BadInput:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise _bad(src, f"the archive is truncated or corrupt ({type(e).__name__}: {e})") from None
    return files


def read_bundle(src: str) -> Bundle:
    """Read and check a bundle (folder or .tar.gz): BadInput unless every check passes."""
    p = Path(src)
    if p.is_symlink():
        raise _bad(src, "the bundle is a symbolic link")
    if p.is_dir():
        files = _read_folder(src)
    elif p.is_file():
        files = _read_archive(src)
    else:
        raise BadInput("no such bundle (a folder or a .tar.gz that tuner capture wrote)", file=src)
    raw = files.pop(MANIFEST, None)
    if raw is None:
        raise _bad(src, "no manifest.json")
    try:
        manifest = json.loads(raw)
    except ValueError as e:
        raise _bad(src, f"manifest.json does not parse: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(src, f"manifest.json is not a {FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise _bad(src, "manifest.json has no files table")
    for rel, info in listed.items():
        if not isinstance(rel, str) or not isinstance(info, dict):
            raise _bad(src, "manifest.json: a files entry is not {path: {sha256, bytes}}")
        _check_rel(src, rel)
        if rel not in files:
            raise _bad(src, f"{rel} is listed in the manifest but missing (truncated bundle?)")
        if sha256(files[rel]) != info.get("sha256"):
            raise _bad(src, f"{rel} does not match its sha256 in the manifest (corrupt)")
    extra = sorted(set(files) - set(listed))
    if extra:
        raise _bad(src, f"{extra[0]} is not in the manifest")
    host = manifest.get("host")
    if not isinstance(host, str) or not host or safe_name(host) != host:
        raise _bad(src, f"manifest.json: host {host!r} is not a host name")
    return Bundle(str(src), manifest, files)
