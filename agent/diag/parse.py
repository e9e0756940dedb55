"""Parsers for the output of AMD's diagnostic tools, as the tools print it (pure, stdlib).

Formats follow the tools' own source and published samples (docs/diagnostics.md):
- ROCm Validation Suite (`rvs`): every line is `[LEVEL] [secs.usecs] message`
  (src/rvsliblogger.cpp); the gst result is `[action] [GPU:: id] GFLOPS n Target GFLOPS: t
  met: TRUE|FALSE` (gst.so/src/gst_worker.cpp); iet ends a GPU with `pass: TRUE|FALSE`; pbqt
  and pebb print `p2p-bandwidth[i/n] [GPU:: idx - id - bdf] [GPU:: ...] ... X GBps` and
  `pcie-bandwidth [i/n] [CPU:: c] [GPU:: idx - id - bdf] ... X GBps`; babel a table per GPU
  (`GPU Id  Function  MBytes/sec  Max MB/s  Min MB/s  Avg MB/s`); the summary box maps each
  GPU id to its BDF and gives each action's PASS/FAIL (docs/ug1main.md's MI355X samples).
- rccl-tests (`all_reduce_perf` etc.): `#`-prefixed header, one row per message size with
  out-of-place and in-place `time algbw busbw #wrong`, then `# Out of bounds values : N
  OK|FAILED` and `# Avg bus bandwidth : X` (src/common.cu).

A parser never raises on odd text: what it cannot read is counted in `unparsed` and the
caller decides (a test whose output gives no result for a GPU makes that GPU unknown)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_RVS_LINE = re.compile(r"^\[(RESULT|ERROR|INFO|DEBUG|TRACE|NONE)\s*\]\s*\[\s*[\d.]+\s*\]\s?(.*)$")
_ACTION = re.compile(r"^\[([^\]]+)\]\s+(.*)$")
_GPU_ID = r"\[GPU::\s*(\d+)\]"
_GPU_FULL = r"\[GPU::\s*(\d+)\s*-\s*(\d+)\s*-\s*([0-9a-fA-F:.]+)\]"
_GST_RESULT = re.compile(
    _GPU_ID + r"\s+GFLOPS\s+(\d+)\s+Target GFLOPS:\s*(\d+)\s+met:\s*(TRUE|FALSE)"
)
_GST_INTERVAL = re.compile(_GPU_ID + r"\s+GFLOPS\s+(\d+)\s*$")
_PASS = re.compile(_GPU_ID + r"\s+pass:\s*(TRUE|FALSE)", re.IGNORECASE)
_POWER = re.compile(_GPU_ID + r"\s+Power\(W\)\s+([\d.]+)")
_P2P_BW = re.compile(
    r"p2p-bandwidth\s*\[\s*\d+/\d+\]\s+"
    + _GPU_FULL
    + r"\s+"
    + _GPU_FULL
    + r"\s+bidirectional:\s*(true|false)\s+([\d.]+)\s+GBps"
)
_PCIE_BW = re.compile(
    r"pcie-bandwidth\s*\[\s*\d+/\d+\]\s+\[CPU::\s*(\d+)\]\s+"
    + _GPU_FULL
    + r"\s+h2d::(true|false)\s+d2h::(true|false)\s+([\d.]+)\s+GBps"
)
_BABEL_ROW = re.compile(
    r"^\s*(\d+)\s+(Read|Write|Copy|Mul|Add|Triad|Dot)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$"
)
_SUMMARY_GPU = re.compile(r"^\|\s*(.+?)\s+-\s+(\d+)\s*\|(?:\s*(.+?)\s+-\s+(\d+)\s*\|)?\s*$")
_SUMMARY_LOC = re.compile(
    r"^\|\s*(\d+)\s+-\s+(\d+)\s+-\s+([0-9a-fA-F:.]+)\s*\|(?:\s*(\d+)\s+-\s+(\d+)\s+-\s+([0-9a-fA-F:.]+)\s*\|)?\s*$"
)
_SUMMARY_ACTION = re.compile(r"^\|\s*(\S+)\s*\|\s*([A-Z]+)\s*\|\s*(PASS|FAIL\w*)\s*\|\s*$")
_ERROR_GPU = re.compile(r"^\s*\w+\s+(\d+)\s+(.*)$")  # `[action] gst 42583 blas error !!!`


@dataclass
class RvsGpu:
    """What one RVS run said of one GPU (ids as RVS prints them: the KFD gpu_id)."""

    gpu_id: int
    bdf: str | None = None
    gflops: float | None = None  # gst: the sustained result
    target_gflops: float | None = None
    met: bool | None = None  # gst's verdict
    passed: bool | None = None  # iet and others: `pass: TRUE|FALSE`
    max_power_w: float | None = None
    h2d_gbps: list[float] = field(default_factory=list)  # pebb, per CPU socket
    d2h_gbps: list[float] = field(default_factory=list)
    babel_mbps: dict[str, float] = field(default_factory=dict)  # function -> MBytes/s (best)
    errors: list[str] = field(default_factory=list)


@dataclass
class RvsLog:
    action: str | None = None
    module: str | None = None
    gpus: dict[int, RvsGpu] = field(default_factory=dict)
    links: dict[tuple[int, int], float] = field(default_factory=dict)  # (src id, dst id) -> GB/s
    actions: dict[str, str] = field(default_factory=dict)  # summary: action -> PASS/FAIL
    product: dict[int, str] = field(default_factory=dict)  # gpu id -> "AMD Instinct MI355X"
    errors: list[str] = field(default_factory=list)  # ERROR lines not tied to a GPU
    lines: int = 0
    unparsed: int = 0

    def gpu(self, gpu_id: int) -> RvsGpu:
        return self.gpus.setdefault(gpu_id, RvsGpu(gpu_id))


def parse_rvs(text: str) -> RvsLog:
    """Read one RVS run's console output (any module; several actions may follow)."""
    log = RvsLog()
    pending_names: list[int] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        log.lines += 1
        m = _RVS_LINE.match(line)
        if m is None:
            if not _summary_line(log, line, pending_names) and not _babel_line(log, line):
                log.unparsed += 1
            continue
        level, msg = m.group(1), m.group(2).strip()
        if msg.startswith("Action name :"):
            log.action = msg.split(":", 1)[1].strip()
            continue
        if msg.startswith("Module name :"):
            log.module = msg.split(":", 1)[1].strip()
            continue
        a = _ACTION.match(msg)
        body = a.group(2) if a else msg
        if level == "ERROR":
            e = _ERROR_GPU.match(body)
            if e:
                log.gpu(int(e.group(1))).errors.append(e.group(2).strip())
            else:
                log.errors.append(msg)
            continue
        if _rvs_result(log, body):
            continue
        if not body or _babel_line(log, body):
            continue
    return log


def _rvs_result(log: RvsLog, body: str) -> bool:
    if m := _GST_RESULT.search(body):
        g = log.gpu(int(m.group(1)))
        g.gflops, g.target_gflops = float(m.group(2)), float(m.group(3))
        g.met = m.group(4) == "TRUE"
        return True
    if _GST_INTERVAL.search(body) or "ramp up" in body or "ramp completed" in body:
        return True
    if m := _PASS.search(body):
        log.gpu(int(m.group(1))).passed = m.group(2).upper() == "TRUE"
        return True
    if m := _POWER.search(body):
        g = log.gpu(int(m.group(1)))
        w = float(m.group(2))
        g.max_power_w = w if g.max_power_w is None else max(g.max_power_w, w)
        return True
    if m := _P2P_BW.search(body):
        src, dst = int(m.group(2)), int(m.group(5))
        log.gpu(src).bdf = m.group(3).lower()
        log.gpu(dst).bdf = m.group(6).lower()
        log.links[(src, dst)] = float(m.group(8))
        return True
    if m := _PCIE_BW.search(body):
        g = log.gpu(int(m.group(3)))
        g.bdf = m.group(4).lower()
        bw = float(m.group(7))
        if m.group(5) == "true":
            g.h2d_gbps.append(bw)
        if m.group(6) == "true":
            g.d2h_gbps.append(bw)
        return True
    # topology lines before the measurements (`p2p [GPU::..] [GPU::..] peers:true ...`,
    # `pcie-bandwidth [CPU:: 0] [GPU:: ...] distance:20`) and progress text
    return bool(
        re.search(r"\bpeers:|\bdistance:|Starting the Babel|Running kernels|Array size", body)
    )


def _babel_line(log: RvsLog, line: str) -> bool:
    if m := _BABEL_ROW.match(line):
        g = log.gpu(int(m.group(1)))
        g.babel_mbps[m.group(2)] = float(m.group(3))
        return True
    s = line.strip()
    return s.startswith("---") or s.startswith("GPU Id") or s == "..."


def _summary_line(log: RvsLog, line: str, pending: list[int]) -> bool:
    s = line.strip()
    if not s.startswith(("|", "+")):
        return False
    if m := _SUMMARY_ACTION.match(s):
        if m.group(1) != "Action":
            log.actions[m.group(1)] = m.group(3)
        return True
    if m := _SUMMARY_LOC.match(s):
        bdfs = [m.group(3), m.group(6)]
        for pid, bdf in zip(pending, bdfs, strict=False):
            if bdf:
                log.gpu(pid).bdf = bdf.lower()
        pending.clear()
        return True
    if (m := _SUMMARY_GPU.match(s)) and "Instinct" in s:
        pending.clear()
        for name, num in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
            if num:
                log.product[int(num)] = name
                pending.append(int(num))
        return True
    return True  # the box's other rows (system overview, rules)


# ------------------------------------------------------------------------------ rccl-tests

_RCCL_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\w+)\s+(\w+)\s+(-?\d+\s+)?(.*)$")
_RCCL_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([\d.eE+-]+)")
_RCCL_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s*(OK|FAILED)")
_RCCL_RANK = re.compile(
    r"^#\s*Rank\s+(\d+).*?\bon\s+(\S+)\s+device\s+(\d+)\s+\[([0-9a-fA-Fx:.]+)\]\s*(.*)$"
)


@dataclass
class RcclRow:
    size: int
    count: int
    dtype: str
    redop: str
    oop_busbw: float | None
    oop_wrong: int | None
    ip_busbw: float | None
    ip_wrong: int | None


@dataclass
class RcclRun:
    rows: list[RcclRow] = field(default_factory=list)
    avg_busbw: float | None = None
    out_of_bounds: int | None = None
    ranks: dict[int, tuple[str, int, str]] = field(default_factory=dict)  # rank -> host, dev, bus
    unparsed: int = 0

    @property
    def wrong(self) -> int:
        return sum((r.oop_wrong or 0) + (r.ip_wrong or 0) for r in self.rows)

    def busbw_at(self, size: int, in_place: bool = True) -> float | None:
        """The bus bandwidth at the largest message size <= `size` (GB/s)."""
        best = [r for r in self.rows if r.size <= size]
        if not best:
            return None
        r = max(best, key=lambda r: r.size)
        return r.ip_busbw if in_place else r.oop_busbw


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _wrong(s: str) -> int | None:
    return int(s) if s.isdigit() else None  # `N/A` when validation is off


def parse_rccl(text: str) -> RcclRun:
    """Read the output of an rccl-tests binary (with or without the `root` column)."""
    run = RcclRun()
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            s = "#" + line.lstrip()[1:]
            if m := _RCCL_AVG.match(s):
                run.avg_busbw = _num(m.group(1))
            elif m := _RCCL_OOB.match(s):
                run.out_of_bounds = int(m.group(1))
            elif m := _RCCL_RANK.match(s):
                run.ranks[int(m.group(1))] = (m.group(2), int(m.group(3)), m.group(4))
            continue
        m = _RCCL_ROW.match(line)
        if m is None:
            run.unparsed += 1
            continue
        rest = m.group(6).split()
        if len(rest) == 8:  # time algbw busbw wrong, twice
            oop, ip = rest[:4], rest[4:]
        elif len(rest) == 4:  # in-place only (-O 0)
            oop, ip = [], rest
        else:
            run.unparsed += 1
            continue
        run.rows.append(
            RcclRow(
                size=int(m.group(1)),
                count=int(m.group(2)),
                dtype=m.group(3),
                redop=m.group(4),
                oop_busbw=_num(oop[2]) if oop else None,
                oop_wrong=_wrong(oop[3]) if oop else None,
                ip_busbw=_num(ip[2]),
                ip_wrong=_wrong(ip[3]),
            )
        )
    return run


# ---------------------------------------------------------------------------- TransferBench

_TB_SECTION = re.compile(r"^\s*(Uni|Bi)directional copy peak bandwidth GB/s")
_TB_DEV = re.compile(r"(CPU|GPU)\s+(\d+)")
_TB_ROW = re.compile(r"^\s*(CPU|GPU)\s+(\d+)\s+(->|<-|<->)\s+(.*)$")
_TB_AVG = re.compile(r"^\s*Averages \(During\s*(UniDir|BiDir)\):\s*(.*)$")

Dev = tuple[str, int]  # ("GPU", 2): TransferBench's device (GPUs in HIP order, CPUs by NUMA)


@dataclass
class TbP2p:
    """`TransferBench p2p`: peak copy bandwidth between every pair of devices (GB/s)."""

    columns: list[Dev] = field(default_factory=list)
    uni: dict[tuple[Dev, Dev], float] = field(default_factory=dict)  # (src, dst) -> GB/s
    bi: dict[tuple[Dev, Dev], float] = field(default_factory=dict)  # `<->`: both ways summed
    averages: dict[str, list[float | None]] = field(default_factory=dict)  # UniDir/BiDir
    unparsed: int = 0

    def gpus(self) -> list[int]:
        return sorted({i for k, i in self.columns if k == "GPU"})


def parse_transferbench(text: str) -> TbP2p:
    """Read `TransferBench p2p` output (client/include/Presets/PeerToPeer.hpp): per
    direction a matrix `SRC+EXE\\DST  CPU 00 ... GPU 07`, rows `GPU 00  ->  v v ...`
    (`N/A` where no transfer ran), bidirectional rows `->`, `<-` and their sum `<->`, and
    `Averages (During UniDir): CPU->CPU CPU->GPU GPU->CPU GPU->GPU`."""
    out = TbP2p()
    section = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if m := _TB_SECTION.match(line):
            section = m.group(1)
            continue
        s = line.strip()
        if s.startswith("SRC"):
            out.columns = [(k, int(i)) for k, i in _TB_DEV.findall(s)]
            continue
        if m := _TB_AVG.match(line):
            out.averages[m.group(1)] = [_num(v) for v in m.group(2).split()]
            continue
        if (m := _TB_ROW.match(line)) and section and out.columns:
            vals = m.group(4).split()
            if len(vals) != len(out.columns):
                out.unparsed += 1
                continue
            src: Dev = (m.group(1), int(m.group(2)))
            arrow = m.group(3)
            for dst, v in zip(out.columns, vals, strict=True):
                bw = _num(v)  # N/A: not run
                if bw is None or dst == src:
                    continue
                if section == "Uni" and arrow == "->":
                    out.uni[(src, dst)] = bw
                elif section == "Bi" and arrow == "<->":
                    out.bi[(src, dst)] = bw
            continue
        if s.startswith(("CPU->CPU", "Bytes Per Direction", "TransferBench", "[", "...")) or (
            "=" in s and ":" in s
        ):
            continue  # the column titles of the averages, the env-var lines, the version
        out.unparsed += 1
    return out
