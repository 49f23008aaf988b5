"""`train.*` settings: SimREC's training block with its names and defaults, plus device and AMP dtype."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from simrec_cli.settings.base import StrictModel, check_multiple_of_32

DEFAULT_SCALES = [(size, size) for size in range(224, 609, 32)]
MAX_AUTO_WORKERS = 8  # SimREC's num_workers, kept as the ceiling where a machine has the cores for more


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container or SLURM may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


EvaluationProtocolName = Literal["original", "clipped"]  # engine/protocol.py: the rules of each


class EvaluationSettings(StrictModel):
    """`train.evaluation`: how validation (and `simrec eval` of the run's checkpoints) evaluates."""

    eval_batch_size: int = Field(8, ge=1, description="Expressions per evaluation batch.")
    sequential: bool = Field(
        False,
        description="Read from SimREC configs and ignored: evaluation is always exact (every sample's result is "
        "gathered with its index and the sampler's padding dropped).",
    )
    protocol: EvaluationProtocolName = Field(
        "original",
        description="How hits are counted: `original` (SimREC's: boxes not clipped, IoU > 0.5, mask pixels > 0) or "
        "`clipped` (boxes clipped to the image, IoU >= 0.5, mask pixels > 0.5).",
    )


class DataLoaderSettings(StrictModel):
    """`train.data`: the data loader and the image normalisation."""

    pin_memory: bool = Field(True, description="Pin batches in page-locked memory (faster copies to a GPU).")
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="Loader processes per training process; 0 loads in the process. `auto`: one per core this "
        "process may use, the node's cores shared among its processes, at most 8 (more workers than cores slow "
        "the step they should feed).",
    )
    mean: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="Per-channel mean subtracted from the [0, 1] RGB image."
    )
    std: tuple[float, float, float] = Field(
        (1.0, 1.0, 1.0), description="Per-channel standard deviation the image is divided by; each above 0."
    )
    group_by_image: bool = Field(
        False,
        description="One training item per image with all its objects: the backbone runs once for them all and "
        "`train.batch_size` counts images. The flip and the augmentations are drawn once per image and move all "
        "its boxes and masks together.",
    )

    def resolved_num_workers(self, processes_on_node: int = 1) -> int:
        """The loader worker count: as set, or for `auto` this node's usable cores split among its processes."""
        if self.num_workers != "auto":
            return self.num_workers
        return min(MAX_AUTO_WORKERS, usable_cores() // max(1, processes_on_node))

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError("every std must be > 0")
        return value


class SchedulerSettings(StrictModel):
    """`train.scheduler`: the learning rate after the warmup, set every iteration."""

    name: Literal["cosine", "step"] = Field(
        "cosine", description="`cosine` decays from `base_lr` to `min_lr`; `step` multiplies by `lr_decay_rate`."
    )
    decay_epochs: list[int] = Field([30, 35, 37], description="`step`: the epochs at which the rate decays.")
    lr_decay_rate: float = Field(0.2, gt=0, le=1, description="`step`: the factor applied at each decay epoch.")


class AmpSettings(StrictModel):
    """`train.amp`: mixed precision (autocast) for training."""

    enabled: bool | Literal["auto"] = Field(
        False,
        description="Train under autocast in `dtype`; `auto`: bf16 on CPUs with native bf16 (AMX, avx512_bf16) "
        "and fp32 elsewhere.",
    )
    dtype: Literal["float16", "bfloat16"] = Field(
        "float16", description="The autocast type; float16 scales the loss, bfloat16 needs no scaler."
    )


class DdpSettings(StrictModel):
    """`train.ddp`: how the processes of a multi-process run talk."""

    backend: Literal["nccl", "gloo", "auto"] = Field(
        "auto", description="The collective backend; `auto`: nccl on GPUs, gloo on CPU."
    )
    init_method: str = Field(
        "env://",
        description="Read from SimREC configs and ignored: processes always meet through torchrun's environment.",
    )
    rendezvous_timeout: int = Field(
        300,
        ge=1,
        description="Seconds the nodes of a multi-node run wait for each other at start-up before stopping with "
        "one error line.",
    )


class EmaSettings(StrictModel):
    """`train.ema`: an exponential moving average of the weights, validated and saved as the model."""

    enabled: bool = Field(True, description="Keep the average and validate and save it.")
    alpha: float = Field(0.9997, gt=0, lt=1, description="The average's decay per optimizer step.")
    buffer_ema: bool = Field(True, description="Average the BatchNorm statistics too (else copy them).")


class EnabledFlag(StrictModel):
    """A switch: `enabled`."""

    enabled: bool = Field(False, description="Convert BatchNorm to SyncBatchNorm across processes (CUDA only).")


class AutoResumeSettings(StrictModel):
    """`train.auto_resume`: what `simrec train` does in a run directory that already has a checkpoint."""

    enabled: bool = Field(True, description="Continue from the run directory's `last.pth` when there is one.")


class MultiScaleTrainingSettings(StrictModel):
    """`train.multi_scale_training`: one input size drawn per step, shared by all processes."""

    enabled: bool = Field(True, description="Draw a size from `img_scales` for each step.")
    img_scales: list[tuple[int, int]] = Field(
        DEFAULT_SCALES, description="The [height, width] sizes to draw from; multiples of 32."
    )

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

    output_dir: Path | None = Field(
        None, description="The run directory; unset: a new `runs/train`, `runs/train2`, ..."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train; `auto`: CUDA when present.")
    warmup_epochs: int = Field(3, ge=0, description="Epochs of linear warmup from `warmup_lr`; shorter than `epochs`.")
    epochs: int = Field(25, ge=1, description="Epochs to train.")
    base_lr: float = Field(1e-4, gt=0, description="The learning rate after the warmup.")
    warmup_lr: float = Field(1e-7, ge=0, description="The learning rate the warmup starts from; at most `base_lr`.")
    min_lr: float = Field(1e-6, ge=0, description="The cosine schedule's final learning rate; at most `base_lr`.")
    batch_size: int = Field(
        8, ge=1, description="The global batch, divided among all processes (images with `data.group_by_image`)."
    )
    evaluation: EvaluationSettings = EvaluationSettings()
    log_period: int = Field(1, ge=1, description="Log the losses and the learning rate every N optimizer steps.")
    save_period: int = Field(
        1, ge=1, description="Write `last.pth` every N epochs (and always after the best and the last epoch)."
    )
    checkpoint_every_steps: int = Field(
        0,
        ge=0,
        description="Also write `last.pth` every N optimizer steps inside an epoch, with all a bit-exact resume "
        "from that step needs; a SIGTERM then saves one before the run stops. 0: only at the end of an epoch.",
    )
    data: DataLoaderSettings = DataLoaderSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    amp: AmpSettings = AmpSettings()
    ddp: DdpSettings = DdpSettings()
    ema: EmaSettings = EmaSettings()
    sync_bn: EnabledFlag = EnabledFlag()
    clip_grad_norm: float = Field(
        0.15, ge=0, description="Clip the gradients' global norm to this (after unscaling under AMP); 0: no clipping."
    )
    auto_resume: AutoResumeSettings = AutoResumeSettings()
    resume_path: Path | None = Field(None, description="Resume from this checkpoint instead of the run's `last.pth`.")
    vl_pretrain_weight: Path | None = Field(
        None, description="Start from this checkpoint's weights (ours or the original SimREC's) to fine-tune."
    )
    multi_scale_training: MultiScaleTrainingSettings = MultiScaleTrainingSettings()
    log_image: bool = Field(False, description="Write pictures of validation predictions to TensorBoard.")
    seed: int = Field(123456, description="Seeds every random draw (sentences, augmentation, sampling, weights).")
