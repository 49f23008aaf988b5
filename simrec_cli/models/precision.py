"""Which numerics inference runs in, chosen by what the device really executes fast.

bf16 autocast halves the convolution time on CPUs with native bf16 instructions (avx512_bf16, AMX) and on
GPUs that support it, but on other CPUs it is emulated and several times slower than fp32. So `auto` asks the
hardware (torch's own CPU probe, then /proc/cpuinfo) instead of guessing from the device type.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from simrec_cli.errors import SimrecError, quoted

PRECISIONS = ("auto", "fp32", "bf16")
# The CPU instruction sets that decide bf16 and int8 speed; printed beside every benchmark figure.
CPU_SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's flags from /proc/cpuinfo that matter for speed (empty where the file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.split(":", 1)[-1].split()) & frozenset(CPU_SPEED_FLAGS)


def _torch_cpu_probe(name: str) -> bool:
    """torch's own answer (cpuinfo, also on systems without /proc); False where this torch lacks the probe."""
    probe = getattr(torch.cpu, name, None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def cpu_has_native_bf16() -> bool:
    """True where bf16 matrix instructions exist (avx512_bf16 or AMX), so bf16 autocast is faster than fp32."""
    flags = cpu_flags()
    return (
        _torch_cpu_probe("_is_avx512_bf16_supported")
        or _torch_cpu_probe("_is_amx_tile_supported")
        or bool(flags & {"avx512_bf16", "amx_bf16"})
    )


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast is native (not emulated) on `device`."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses and, for `auto`, why."""

    name: str  # fp32 or bf16
    reason: str
    autocast_dtype: torch.dtype | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def resolve_precision(requested: str, device: torch.device) -> PrecisionChoice:
    """The concrete precision for `requested` on `device`."""
    if requested not in PRECISIONS:
        raise SimrecError(f"unknown precision {quoted(requested)}", f"use one of: {', '.join(PRECISIONS)}")
    if requested != "auto":
        return PrecisionChoice(requested, "as asked", torch.bfloat16 if requested == "bf16" else None)
    if fast_bf16(device):
        where = "GPU supports bf16" if device.type == "cuda" else "CPU has native bf16 (avx512_bf16/AMX)"
        return PrecisionChoice("bf16", f"auto: {where}", torch.bfloat16)
    where = "GPU lacks bf16" if device.type == "cuda" else "CPU has no native bf16, where it is emulated and slow"
    return PrecisionChoice("fp32", f"auto: {where}")
