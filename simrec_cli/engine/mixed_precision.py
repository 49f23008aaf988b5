"""Which numerics a training run uses: `train.amp`, with `enabled: auto` deciding by the hardware.

On a CPU with native bf16 instructions (AMX, avx512_bf16), `auto` trains under bf16 autocast: several times
faster steps for the default SimREC at 416 (docs/benchmarks.md). On other CPUs bf16 is emulated and slower than
fp32, so `auto` stays in fp32; on GPUs it keeps SimREC's fp32 default (`train.amp.enabled=true` chooses AMP
there). `auto` is not the default: on `synthetic-tiny` it learned about a point less than fp32 at no gain in
speed (docs/training.md, "bf16 on CPU"). `auto` is kept in the settings and decided again when a run
resumes, so the same command behaves the same on each machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from simrec_cli.models.precision import cpu_flags, cpu_has_native_bf16
from simrec_cli.settings.train import AmpSettings

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class TrainingPrecision:
    """The autocast dtype of a run (None: fp32) and why it was chosen."""

    dtype: torch.dtype | None
    reason: str

    @property
    def scales_gradients(self) -> bool:
        """float16 needs a GradScaler against underflowing gradients; bf16 has float32's range."""
        return self.dtype == torch.float16

    def describe(self) -> str:
        name = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.dtype]
        return f"{name} ({self.reason})"


def training_precision(amp: AmpSettings, device: torch.device) -> TrainingPrecision:
    """What `amp` means on `device`."""
    if amp.enabled == "auto":
        if device.type == "cpu" and cpu_has_native_bf16():
            flags = ", ".join(sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"})) or "native bf16"
            return TrainingPrecision(
                torch.bfloat16, f"train.amp.enabled=auto: this CPU has {flags}; train.amp.enabled=false for fp32"
            )
        where = "a GPU: train.amp.enabled=true for AMP" if device.type == "cuda" else "this CPU has no native bf16"
        return TrainingPrecision(None, f"train.amp.enabled=auto on {where}")
    if not amp.enabled:
        return TrainingPrecision(None, "train.amp.enabled=false")
    return TrainingPrecision(DTYPES[amp.dtype], f"train.amp.enabled=true, train.amp.dtype={amp.dtype}")
