"""What a simulated node's kernel shows of PCIe errors and amdgpu events.

* PCIe AER counters: ``/sys/bus/pci/devices/<bdf>/aer_dev_correctable``, ``aer_dev_nonfatal``
  and ``aer_dev_fatal`` of every GPU (and, through ``write_aer_files``, every simulated NIC),
  in the kernel's format: one ``<name> <count>`` line per error bit the kernel names, then
  ``TOTAL_ERR_COR`` / ``TOTAL_ERR_NONFATAL`` / ``TOTAL_ERR_FATAL`` (Linux
  drivers/pci/pcie/aer.c ``aer_correctable_error_string`` / ``aer_uncorrectable_error_string``
  and ``aer_stats_dev_attr``; Documentation/ABI/testing/sysfs-bus-pci-devices-aer_stats).
* The kernel log since boot: ``var/log/dmesg`` of the node tree (what ``tuner capture`` and
  the gate's collector read under a node root), dmesg's raw format ``[seconds.micro] text``:
  each enumerated GPU's probe lines, then the node's ``kernel_events`` in the amdgpu driver's
  message formats (agent/gpu/checks/kernellog.py lists them with their source).

docs/sim-gpu-state.md "PCIe AER and the kernel log".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from agent.sim.gpu.state import NodeGpuState

# Linux 6.x aer.c: the names the sysfs files print, in bit order.
CORRECTABLE = (
    "RxErr",
    "BadTLP",
    "BadDLLP",
    "Rollover",
    "Timeout",
    "NonFatalErr",
    "CorrIntErr",
    "HeaderOF",
)
UNCORRECTABLE = (
    "Undefined",
    "DLP",
    "SDES",
    "TLP",
    "FCP",
    "CmpltTO",
    "CmpltAbrt",
    "UnxCmplt",
    "RxOF",
    "MalfTLP",
    "ECRC",
    "UnsupReq",
    "ACSViol",
    "UncorrIntErr",
    "BlockedTLP",
    "AtomicOpBlocked",
    "TLPBlockedErr",
    "PoisonTLPBlocked",
)
FILES = (
    ("aer_dev_correctable", "correctable", CORRECTABLE, "TOTAL_ERR_COR"),
    ("aer_dev_nonfatal", "nonfatal", UNCORRECTABLE, "TOTAL_ERR_NONFATAL"),
    ("aer_dev_fatal", "fatal", UNCORRECTABLE, "TOTAL_ERR_FATAL"),
)
DMESG = "var/log/dmesg"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AerState(_Model):
    """A PCI device's AER counters since boot: error name -> count (names as the kernel
    prints them; an uncorrectable error is fatal or non-fatal by the device's severity
    register, so the same names serve both)."""

    present: bool = True  # False: no aer_dev_* files (no AER capability, firmware-first)
    correctable: dict[str, int] = Field(default_factory=dict)
    nonfatal: dict[str, int] = Field(default_factory=dict)
    fatal: dict[str, int] = Field(default_factory=dict)

    @field_validator("correctable")
    @classmethod
    def _cor(cls, v: dict[str, int]) -> dict[str, int]:
        return _names(v, CORRECTABLE)

    @field_validator("nonfatal", "fatal")
    @classmethod
    def _unc(cls, v: dict[str, int]) -> dict[str, int]:
        return _names(v, UNCORRECTABLE)


def _names(v: dict[str, int], known: tuple[str, ...]) -> dict[str, int]:
    for name, n in v.items():
        if name not in known:
            raise ValueError(f"unknown AER error {name!r}; one of {', '.join(known)}")
        if not 0 <= n <= 2**63:
            raise ValueError(f"AER count {name}={n} out of range")
    return v


EventKind = Literal["ring_timeout", "soft_recovered", "gpu_reset", "ras_uncorrectable"]


class KernelEvent(_Model):
    """An amdgpu event in the kernel log. ``gpu``: the GPU index whose PCI address the line
    names; None: the older ``DRM_ERROR`` form without one (ring timeouts only)."""

    kind: EventKind
    gpu: int | None = Field(default=0, ge=0, le=63)
    ring: str = Field(default="gfx_0.0.0", pattern=r"^[A-Za-z0-9_.]{1,32}$")
    at_s: float = Field(default=3600.0, gt=0, lt=10**9)  # seconds since boot


def aer_text(counts: dict[str, int], names: tuple[str, ...], total: str) -> str:
    lines = [f"{n} {counts.get(n, 0)}" for n in names]
    return "\n".join([*lines, f"{total} {sum(counts.values())}"]) + "\n"


def write_aer_files(dev: Path, aer: AerState | None = None) -> None:
    """The three aer_dev_* files of one PCI device folder (all zero without ``aer``)."""
    aer = aer or AerState()
    for fname, kind, names, total in FILES:
        p = dev / fname
        if not aer.present:
            p.unlink(missing_ok=True)
            continue
        p.write_text(aer_text(getattr(aer, kind), names, total))


def write_aer(root: Path, state: NodeGpuState) -> None:
    for g in state.gpus:
        dev = Path(root) / "sys/bus/pci/devices" / str(g.bdf)
        if dev.is_dir() and not dev.is_symlink():
            write_aer_files(dev, g.aer)


def _stamp(t: float) -> str:
    return f"[{t:12.6f}]"


def boot_lines(state: NodeGpuState) -> list[tuple[float, str]]:
    """The probe lines of each enumerated GPU (PCI enable, DRM init, KFD), at boot."""
    out: list[tuple[float, str]] = [(9.8, "[drm] amdgpu kernel modesetting enabled.")]
    for i, g in enumerate(state.gpus):
        if not g.enumerated:
            continue
        t = 10.0 + i * 0.9
        out += [
            (t, f"amdgpu {g.bdf}: enabling device (0000 -> 0002)"),
            (
                t + 0.6,
                f"[drm] Initialized amdgpu 3.63.0 20150101 for {g.bdf} on minor {g.drm_card}",
            ),
            (t + 0.7, f"kfd kfd: amdgpu: added device {g.vendor_id:04x}:{g.device_id:04x}"),
        ]
    return out


def event_lines(state: NodeGpuState) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for e in state.kernel_events:
        bdf = state.gpus[e.gpu].bdf if e.gpu is not None and e.gpu < len(state.gpus) else None
        dev = f"amdgpu {bdf}: amdgpu: " if bdf else ""
        t = e.at_s
        if e.kind == "ring_timeout":
            text = f"ring {e.ring} timeout, signaled seq=22143, emitted seq=22145"
            out.append(
                (t, dev + text if bdf else f"[drm:amdgpu_job_timedout [amdgpu]] *ERROR* {text}")
            )
        elif e.kind == "soft_recovered":
            out.append((t, f"{dev}ring {e.ring} timeout, but soft recovered"))
        elif e.kind == "gpu_reset":
            out += [(t, f"{dev}GPU reset begin!"), (t + 2.5, f"{dev}GPU reset(1) succeeded!")]
        elif e.kind == "ras_uncorrectable":
            ras = "uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!"
            out.append((t, dev + ras))
    return out


def write_kernel_log(root: Path, state: NodeGpuState) -> None:
    """``var/log/dmesg``: the boot lines and the node's events in time order. A node with no
    GPU and no event gets none (a node built from a bundle writes the captured one)."""
    if not state.gpus and not state.kernel_events:
        return
    lines = sorted(boot_lines(state) + event_lines(state), key=lambda x: x[0])
    p = Path(root) / DMESG
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink():
        p.unlink()
    p.write_text("".join(f"{_stamp(t)} {text}\n" for t, text in lines))
