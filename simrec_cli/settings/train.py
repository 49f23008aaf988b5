"""`train.*` settings: SimREC's training block with its names and defaults, plus device and AMP dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from simrec_cli.settings.base import StrictModel, check_multiple_of_32

DEFAULT_SCALES = [(size, size) for size in range(224, 609, 32)]


EvaluationProtocolName = Literal["original", "clipped"]  # engine/protocol.py: the rules of each


class EvaluationSettings(StrictModel):
    eval_batch_size: int = Field(8, ge=1)
    # Kept for SimREC configs; evaluation is always exact (per-sample gather, padding dropped).
    sequential: bool = False
    # How validation and `simrec eval` count: the original SimREC's (boxes not clipped, IoU > 0.5, mask pixels
    # > 0), or clipped (boxes clipped to the image, IoU >= 0.5, mask pixels > 0.5).
    protocol: EvaluationProtocolName = "original"


class DataLoaderSettings(StrictModel):
    pin_memory: bool = True
    num_workers: int = Field(8, ge=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # One training item per image with all its objects: the backbone runs once for them all (its features are
    # shared by the 3-5 expressions of a scene), and train.batch_size then counts images, not objects. The flip
    # and dataset.augmentations are drawn once per image and move all its boxes and masks together.
    group_by_image: bool = False

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError("every std must be > 0")
        return value


class SchedulerSettings(StrictModel):
    name: Literal["cosine", "step"] = "cosine"
    decay_epochs: list[int] = [30, 35, 37]
    lr_decay_rate: float = Field(0.2, gt=0, le=1)


class AmpSettings(StrictModel):
    # auto: bf16 autocast on CPUs with native bf16 (AMX, avx512_bf16), fp32 elsewhere (engine/mixed_precision.py).
    enabled: bool | Literal["auto"] = False
    dtype: Literal["float16", "bfloat16"] = "float16"


class DdpSettings(StrictModel):
    backend: Literal["nccl", "gloo", "auto"] = "auto"
    init_method: str = "env://"
    # Seconds the nodes of a multi-node run wait for each other at start-up before giving up with one error line.
    rendezvous_timeout: int = Field(300, ge=1)


class EmaSettings(StrictModel):
    enabled: bool = True
    alpha: float = Field(0.9997, gt=0, lt=1)
    buffer_ema: bool = True


class EnabledFlag(StrictModel):
    enabled: bool = False


class AutoResumeSettings(StrictModel):
    enabled: bool = True


class MultiScaleTrainingSettings(StrictModel):
    enabled: bool = True
    img_scales: list[tuple[int, int]] = DEFAULT_SCALES

    @field_validator("img_scales")
    @classmethod
    def _scales_multiple_of_32(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if not value:
            raise ValueError("img_scales needs at least one [height, width]")
        for scale in value:
            check_multiple_of_32(scale, "multi-scale size")
        return value


class TrainSettings(StrictModel):
    """`train.*`: schedule, optimisation tricks, checkpoints, logging and hardware."""

    output_dir: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    warmup_epochs: int = Field(3, ge=0)
    epochs: int = Field(25, ge=1)
    base_lr: float = Field(1e-4, gt=0)
    warmup_lr: float = Field(1e-7, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    batch_size: int = Field(8, ge=1)
    evaluation: EvaluationSettings = EvaluationSettings()
    log_period: int = Field(1, ge=1)
    save_period: int = Field(1, ge=1)
    # Also write last.pth every N optimizer steps inside an epoch (0 = only at the end of an epoch, as SimREC does),
    # with all a bit-exact resume from that step needs; a SIGTERM then saves one before the run stops.
    checkpoint_every_steps: int = Field(0, ge=0)
    data: DataLoaderSettings = DataLoaderSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    amp: AmpSettings = AmpSettings()
    ddp: DdpSettings = DdpSettings()
    ema: EmaSettings = EmaSettings()
    sync_bn: EnabledFlag = EnabledFlag()
    clip_grad_norm: float = Field(0.15, ge=0)
    auto_resume: AutoResumeSettings = AutoResumeSettings()
    resume_path: Path | None = None
    vl_pretrain_weight: Path | None = None
    multi_scale_training: MultiScaleTrainingSettings = MultiScaleTrainingSettings()
    log_image: bool = False
    seed: int = 123456
