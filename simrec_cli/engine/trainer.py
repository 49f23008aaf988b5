"""The training loop, top to bottom: build, (resume), train an epoch, validate, checkpoint, repeat.

Everything that decides randomness is seeded from `train.seed`, the epoch and the global step, and every
piece of state (weights, EMA, optimizer, scaler, RNGs, best metric) is checkpointed, so a resumed run is
bit-for-bit the run that was interrupted.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from simrec_cli.data.dataset import Batch, RefDataset, load_embedding, load_vocabulary, resize_batch
from simrec_cli.engine.checkpoint import (
    FORMAT_VERSION,
    KIND,
    RESUME_ENTRIES,
    atomic_save,
    capture_rng,
    checkpoint_settings,
    checkpoint_vocabulary,
    load_weights_strict,
    read_checkpoint,
    require_entries,
    restore_rng,
)
from simrec_cli.engine.distributed import (
    World,
    all_gather_objects,
    all_reduce_mean,
    any_rank,
    broadcast_buffers,
    broadcast_object,
    processes_on_this_node,
)
from simrec_cli.engine.ema import ModelEMA
from simrec_cli.engine.evaluator import evaluate_split
from simrec_cli.engine.metrics import SplitMetrics
from simrec_cli.engine.mixed_precision import TrainingPrecision, training_precision
from simrec_cli.engine.protocol import protocol_named
from simrec_cli.engine.resume import merge_for_resume
from simrec_cli.engine.rundir import (
    BEST,
    CONFIG,
    LAST,
    LOG,
    METRICS,
    OUTPUT_DIR_OPTION,
    PLOT,
    LoggingReporter,
    MetricsCsv,
    RunDirSnapshot,
    check_run_dir,
    mark_run_dir,
    plot_metrics,
)
from simrec_cli.engine.sampling import ResumableSampler
from simrec_cli.engine.schedule import LrSchedule
from simrec_cli.engine.stopping import DeferredStop
from simrec_cli.engine.visualize import log_prediction_images
from simrec_cli.errors import SimrecError
from simrec_cli.interruption import errors_after_a_stop_are_the_stop
from simrec_cli.models import build_model
from simrec_cli.models.inference import autocast
from simrec_cli.models.weights import load_pretrained_checkpoint, require_pretrained_files
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import Settings, settings_to_dict, settings_to_yaml
from simrec_cli.settings.train import usable_cores
from simrec_cli.storage.atomic import atomic_copy, atomic_write, remove_stale_temporaries
from simrec_cli.storage.targets import ensure_writable_dir

LOSS_KEYS = ("loss", "loss_det", "loss_seg")


@dataclass
class TrainResult:
    """Where the run lives and how it ended."""

    run_dir: Path
    best_acc50: float
    best_epoch: int
    epochs_done: int
    last_metrics: SplitMetrics | None


@dataclass
class EpochProgress:
    """How far the running epoch is: optimizer steps done and the sums behind its metrics.csv row.

    A step checkpoint stores it, so an epoch resumed in its middle reports the same mean losses as one run straight.
    """

    steps: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOSS_KEYS, 0.0))
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sums": dict(self.sums), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochProgress:
        return cls(int(data["steps"]), {key: float(value) for key, value in data["sums"].items()}, data["seconds"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(settings: Settings, model: nn.Module, precision: TrainingPrecision) -> torch.optim.Optimizer:
    """Adam (SimREC), AdamW or SGD over the trainable parameters only.

    The fused kernels update all parameters in one pass: the same algorithm, about 4x faster than the
    per-tensor loop on CPU (20 -> 3 ms a step for synthetic-tiny's 216 tensors). Not with fp16's GradScaler:
    on CPU, fused SGD leaves an uninitialised momentum buffer after a step the scaler skips.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optim, lr = settings.optim, settings.train.base_lr
    fused = not precision.scales_gradients
    if optim.name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=optim.momentum, weight_decay=optim.weight_decay, fused=fused)
    kind = torch.optim.AdamW if optim.name == "adamw" else torch.optim.Adam
    return kind(parameters, lr=lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay, fused=fused)


def scale_for_step(settings: Settings, step: int) -> tuple[int, int] | None:
    """The multi-scale size of one step: a function of seed and step, so every rank picks the same."""
    multi_scale = settings.train.multi_scale_training
    if not multi_scale.enabled:
        return None
    chooser = random.Random(settings.train.seed * 1_000_003 + step)
    return tuple(multi_scale.img_scales[chooser.randrange(len(multi_scale.img_scales))])  # type: ignore[return-value]


def restarts_so_far() -> int:
    """How often torchrun has restarted this run's workers after one of them failed (0 outside torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def find_resume_checkpoint(settings: Settings, run_dir: Path, explicit: Path | None) -> Path | None:
    """The checkpoint to continue from, if any.

    After torchrun restarted the workers, the run's own last.pth, whatever the command line said: it holds the
    latest state. Otherwise an explicit checkpoint, else `train.resume_path`, else (auto-resume) the run's last.pth.
    """
    candidate = run_dir / LAST
    if restarts_so_far() > 0 and candidate.is_file():
        return candidate
    if explicit is not None:
        return explicit
    if settings.train.resume_path is not None:
        return settings.train.resume_path
    if settings.train.auto_resume.enabled and candidate.is_file():
        return candidate
    return None


class Trainer:
    """Holds the pieces of one run; `run()` trains to `train.epochs`."""

    def __init__(self, settings: Settings, world: World, reporter: Reporter, resume: Path | None = None) -> None:
        if settings.train.output_dir is None:
            raise SimrecError("train.output_dir is not set", "set train.output_dir=runs/my-run")
        self.world = world
        self.run_dir = Path(settings.train.output_dir)
        self.reporter: Reporter = NullReporter()
        before = self._before = RunDirSnapshot(self.run_dir) if world.is_main else None
        try:
            self._start(settings, reporter, resume)
        except BaseException:  # a start that fails (bad data, Ctrl-C) leaves the run directory as it found it
            self._close_log()
            if before is not None:
                before.restore()
            raise

    def _start(self, settings: Settings, reporter: Reporter, resume: Path | None) -> None:
        """Check the inputs, build everything, and restore the checkpoint when resuming."""
        world = self.world
        if world.is_main:
            check_run_dir(self.run_dir)
            ensure_writable_dir(self.run_dir, "run directory", OUTPUT_DIR_OPTION)
            mark_run_dir(self.run_dir)
            remove_stale_temporaries(self.run_dir)
            self.reporter = LoggingReporter(reporter, self.run_dir / LOG)
        settings.check_world_size(world.size)
        if settings.train.sync_bn.enabled and world.device.type != "cuda":
            raise SimrecError(
                "train.sync_bn.enabled=true needs CUDA (SyncBatchNorm cannot train on CPU)",
                "set train.sync_bn.enabled=false",
            )
        if restarts_so_far() > 0:
            self.reporter.warning(
                f"torchrun restarted the workers after one failed (restart {restarts_so_far()} of "
                f"{os.environ.get('TORCHELASTIC_MAX_RESTARTS', '?')}); every process continues from the last checkpoint"
            )
        # Rank 0's choice for every rank: the run directory lives on node 0 (the others may not see it at all).
        self.resume_path = broadcast_object(world, find_resume_checkpoint(settings, self.run_dir, resume))
        self.state: dict[str, Any] | None = read_checkpoint(self.resume_path) if self.resume_path else None
        if self.state is not None:
            require_entries(self.state, RESUME_ENTRIES, self.resume_path)  # type: ignore[arg-type]
            settings = self._settings_for_resume(settings, self.resume_path)  # type: ignore[arg-type]
        self.settings = settings
        # weights to load into the model: checked now, not after the data and model are built
        require_pretrained_files(settings.model, settings.train.vl_pretrain_weight if self.state is None else None)
        if world.is_main:  # read (and checked) here, so a damaged file fails the start and changes nothing
            done = int(self.state["epoch"]) if self.state is not None else 0
            self.metrics_csv = MetricsCsv(self.run_dir / METRICS, keep_through_epoch=done)
        seed_everything(settings.train.seed)
        self._build()

    def _finished_already(self) -> TrainResult:
        """A run that has trained all its epochs: say so, and leave its directory exactly as it was."""
        self._close_log()
        if self._before is not None:
            self._before.restore()
        reporter = self.reporter.inner if isinstance(self.reporter, LoggingReporter) else self.reporter
        epochs, done = self.settings.train.epochs, self.start_epoch
        reporter.info(f"nothing to do: {self.run_dir} already finished {done} of train.epochs={epochs} epochs "
                      f"(to train on: simrec resume {self.run_dir} train.epochs={done + 10})")  # fmt: skip
        return TrainResult(self.run_dir, self.best_acc50, self.best_epoch, epochs, self.last_metrics)

    def _close_log(self) -> None:
        if isinstance(self.reporter, LoggingReporter):
            self.reporter.close()

    def _settings_for_resume(self, requested: Settings, path: Path) -> Settings:
        """The checkpoint's settings, with the few fields that may change on resume taken from `requested`."""
        merged = merge_for_resume(checkpoint_settings(self.state, path), requested, path)  # type: ignore[arg-type]
        state: dict[str, Any] = self.state  # type: ignore[assignment]
        steps = (state.get("epoch_progress") or {}).get("steps")
        within = f" and {steps} steps of epoch {state['epoch'] + 1}" if steps else ""
        self.reporter.info(f"resuming from {path} (epoch {state['epoch']} done{within})")
        return merged

    def _build(self) -> None:
        settings, world = self.settings, self.world
        if self.state is not None:
            self.vocabulary = checkpoint_vocabulary(self.state, self.resume_path)  # type: ignore[arg-type]
            embedding = None
        else:
            self.vocabulary = load_vocabulary(settings.dataset)
            embedding = load_embedding(settings.dataset, self.vocabulary, self.reporter)
            if embedding is not None:
                settings.model.language_encoder.word_embed_size = int(embedding.shape[1])
        masks = settings.model.name == "mcn"
        data_kwargs = {"mean": settings.train.data.mean, "std": settings.train.data.std, "reporter": self.reporter,
                       "seed": settings.train.seed}  # fmt: skip
        self.train_set = RefDataset(
            settings.dataset, settings.dataset.train_split, self.vocabulary, training=True, load_masks=masks,
            group_by_image=settings.train.data.group_by_image, **data_kwargs,
        )  # fmt: skip
        self.val_set = RefDataset(
            settings.dataset, settings.dataset.val_split, self.vocabulary, training=False, load_masks=masks,
            **data_kwargs,
        )  # fmt: skip
        model = build_model(settings.model, len(self.vocabulary), embedding, reporter=self.reporter)
        if settings.train.vl_pretrain_weight is not None and self.state is None:
            load_pretrained_checkpoint(model, settings.train.vl_pretrain_weight, self.reporter)
        if self.state is None:
            self._warn_if_random_backbone_is_frozen(model)
        model.to(world.device)
        if world.device.type == "cpu":
            model.to_channels_last()  # about 1.4x faster convolutions on CPU (slower on GPU)
        self.ema = (
            ModelEMA(model, settings.train.ema.alpha, settings.train.ema.buffer_ema)
            if settings.train.ema.enabled
            else None
        )
        self.precision = training_precision(settings.train.amp, world.device)
        self.optimizer = build_optimizer(settings, model, self.precision)
        self.scaler = torch.amp.GradScaler(world.device.type, enabled=self.precision.scales_gradients)
        per_process = settings.train.batch_size // world.size
        self.num_workers = settings.train.data.resolved_num_workers(processes_on_this_node())
        self.sampler = ResumableSampler(
            self.train_set, num_replicas=world.size, rank=world.rank, shuffle=True, seed=settings.train.seed,
            drop_last=True,
        )  # fmt: skip
        self.loader = DataLoader(
            self.train_set,
            batch_size=per_process,
            sampler=self.sampler,
            num_workers=self.num_workers,
            pin_memory=settings.train.data.pin_memory and world.device.type == "cuda",
            collate_fn=self.train_set.collate,
            drop_last=True,
        )
        if len(self.loader) == 0:
            raise SimrecError(
                f"the {settings.dataset.train_split} split has {len(self.train_set)} {self._unit}, fewer than one "
                f"batch of {per_process} per process",
                "lower train.batch_size",
            )
        self.steps_per_epoch = len(self.loader)
        self.schedule = LrSchedule(self.optimizer, settings.train, self.steps_per_epoch)
        self.start_epoch, self.global_step, self.best_acc50, self.best_epoch = 0, 0, -1.0, 0
        self.resumed_progress: EpochProgress | None = None  # set when resuming in the middle of an epoch
        self.saved_at: tuple[int, int] | None = None  # (epochs done, steps of the next) this run's last.pth holds
        self.last_metrics: SplitMetrics | None = None
        self.stop = DeferredStop()
        if self.state is not None:
            self._restore(model)
        if settings.train.sync_bn.enabled and world.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.ddp: nn.Module = (
            DistributedDataParallel(
                model,
                device_ids=[world.device.index] if world.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
            if world.distributed
            else model
        )
        self.reporter.info(
            f"run {self.run_dir}: {len(self.train_set)} training {self._unit}, {len(self.val_set)} val expressions, "
            f"{len(self.loader)} steps/epoch x {settings.train.epochs} epochs on {world.size} process(es), "
            f"{world.device}, {self._describe_workers()}"
        )
        self.reporter.info(f"training in {self.precision.describe()}")

    def _warn_if_random_backbone_is_frozen(self, model: nn.Module) -> None:
        """A backbone with random weights that freeze_backbone keeps from training is almost never what was meant:
        most of its stages would stay random features for the whole run. Weights from train.vl_pretrain_weight (a
        fine-tune) or model.visual_backbone.pretrained make the freeze meaningful."""
        backbone = self.settings.model.visual_backbone
        if backbone.pretrained or not backbone.freeze_backbone or self.settings.train.vl_pretrain_weight is not None:
            return
        weights = list(model.visual_encoder.parameters())
        frozen = sum(p.numel() for p in weights if not p.requires_grad)
        self.reporter.warning(
            f"model.visual_backbone.pretrained=false with freeze_backbone=true: {frozen:,} of the backbone's "
            f"{sum(p.numel() for p in weights):,} random weights stay frozen; set "
            "model.visual_backbone.freeze_backbone=false to train them, or pretrained=true (with "
            "pretrained_weight_path=FILE) to start from trained ones"
        )

    def _describe_workers(self) -> str:
        chosen = f"{self.num_workers} loader worker(s)"
        if self.settings.train.data.num_workers == "auto":
            return f"{chosen} (train.data.num_workers=auto: {usable_cores()} usable cores)"
        return chosen

    @property
    def _unit(self) -> str:
        """What one training item is."""
        return "images" if self.train_set.groups is not None else "objects"

    def _restore(self, model: nn.Module) -> None:
        state = self.state
        assert state is not None and self.resume_path is not None
        load_weights_strict(model, state["model"], self.resume_path)
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.best_acc50 = float(state["best_acc50"])
        self.best_epoch = int(state["best_epoch"])
        if state.get("epoch_progress"):
            self.resumed_progress = EpochProgress.from_dict(state["epoch_progress"])
            saved_by = int(state.get("world_size", 1))
            if saved_by != self.world.size:
                raise SimrecError(
                    f"{self.resume_path} was saved in the middle of epoch {self.start_epoch + 1} by {saved_by} "
                    f"process(es) and cannot continue exactly on {self.world.size}",
                    f"resume it with {saved_by} process(es)",
                )
        if self.resume_path.resolve() == (self.run_dir / LAST).resolve():
            self.saved_at = (self.start_epoch, self.resumed_progress.steps if self.resumed_progress else 0)

    def _rank_rng(self) -> dict[str, Any]:
        """This rank's RNG states from the checkpoint (rank 0's where the checkpoint holds only those)."""
        assert self.state is not None
        per_rank = self.state.get("rng_ranks")
        return per_rank[self.world.rank] if per_rank and len(per_rank) == self.world.size else self.state["rng"]

    # ------------------------------------------------------------------ training

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (the rest of it, when resuming in its middle); returns its mean losses and last lr."""
        settings, world = self.settings, self.world
        progress = EpochProgress()
        if epoch == self.start_epoch and self.resumed_progress is not None:
            progress = self.resumed_progress
        self.sampler.set_epoch(epoch)
        self.sampler.skip = progress.steps * self.loader.batch_size  # type: ignore[operator]
        self.train_set.set_epoch(epoch)
        self.ddp.train()
        batches = iter(self.loader)  # draws the loader's seed from torch's RNG, as the epoch did the first time
        if progress.steps:
            restore_rng(self._rank_rng())  # the states of the step the checkpoint was written after
        seen, started, carried = 0, time.perf_counter(), progress.seconds
        description = f"epoch {epoch + 1}/{settings.train.epochs}"
        remaining = self.steps_per_epoch - progress.steps
        for batch in self.reporter.track(batches, remaining, description):
            lr = self.schedule.apply(self.global_step)
            losses = self.train_step(batch, f"epoch {epoch + 1}, step {progress.steps + 1}")
            progress.steps += 1
            seen += len(batch) * world.size
            for key in LOSS_KEYS:
                progress.sums[key] += float(losses[key])
            progress.seconds = carried + time.perf_counter() - started
            if self.global_step % settings.train.log_period == 0:
                self._log_step(losses, lr, seen / (time.perf_counter() - started))
            self._checkpoint_within_epoch(epoch, progress)
        self.sampler.skip = 0
        means = {key: value / self.steps_per_epoch for key, value in progress.sums.items()}
        return {**means, "lr": self.schedule.lr_at(self.global_step - 1)}  # the rate of the epoch's last step

    def _checkpoint_within_epoch(self, epoch: int, progress: EpochProgress) -> None:
        """Every `train.checkpoint_every_steps` steps, and when asked to stop, write last.pth as of this step."""
        every = self.settings.train.checkpoint_every_steps
        if every == 0:
            return
        stop = any_rank(self.world, self.stop.requested)
        if stop or self.global_step % every == 0:
            self._write_last(self._checkpoint(epoch, progress), (epoch, progress.steps))
        if stop:
            raise KeyboardInterrupt("stopped by SIGTERM after a step checkpoint")

    def train_step(self, batch: Batch, where: str) -> dict[str, torch.Tensor]:
        """One optimisation step on one batch (multi-scale resize, AMP, clipping, EMA); returns the losses."""
        settings, world = self.settings, self.world
        batch = batch.to(world.device, non_blocking=True)
        size = scale_for_step(settings, self.global_step)
        if size is not None:
            batch = resize_batch(batch, size)
        with autocast(world.device, self.precision.dtype):
            losses = self.ddp(
                batch.images, batch.tokens, targets=batch.targets, masks=batch.masks, image_index=batch.image_index
            )
        loss = losses["loss"]
        self._stop_if_not_finite(loss, where)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if settings.train.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), settings.train.clip_grad_norm)
            if not self.scaler.is_enabled():  # with fp16 the scaler skips such steps by design
                self._stop_if_not_finite(norm, where, what="gradient norm")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.global_step += 1
        return {key: value.detach() for key, value in losses.items()}

    def _stop_if_not_finite(self, value: torch.Tensor, where: str, what: str = "loss") -> None:
        """Stop every rank together when a loss or gradient is NaN/inf, before the weights take it in."""
        if any_rank(self.world, not bool(torch.isfinite(value.detach()).all())):
            raise SimrecError(
                f"the {what} became {value.item()} at {where}; {LAST} was left as it was",
                "lower train.base_lr, keep train.clip_grad_norm > 0, or turn off train.amp",
            )

    def _log_step(self, losses: dict[str, torch.Tensor], lr: float, samples_per_second: float) -> None:
        reduced = {key: float(all_reduce_mean(self.world, value.detach().float())) for key, value in losses.items()}
        self.reporter.status(f"loss {reduced['loss']:.4f} lr {lr:.2e} {samples_per_second:.1f} samples/s")
        if self.writer is not None:
            for key, value in reduced.items():
                self.writer.add_scalar(f"{key}/train", value, self.global_step)
            self.writer.add_scalar("lr", lr, self.global_step)

    # ------------------------------------------------------------------ validation and checkpoints

    def _validate(self) -> SplitMetrics:
        """Val metrics of the model that is saved: the EMA with rank 0's buffers on every rank, or the model."""
        if self.ema is not None:
            broadcast_buffers(self.world, self.ema.module)  # so that a resumed run validates the same numbers
        eval_model = self.ema.module if self.ema is not None else self.model
        metrics, results = evaluate_split(
            eval_model,
            self.val_set,
            split=self.settings.dataset.val_split,
            world=self.world,
            batch_size=self.settings.train.evaluation.eval_batch_size,
            num_workers=self.num_workers,
            reporter=self.reporter,
            amp_dtype=self.precision.dtype,
            mask_threshold=self.settings.model.head.mask_threshold,
            protocol=protocol_named(self.settings.train.evaluation.protocol, "train.evaluation.protocol"),
        )
        if self.writer is not None and self.settings.train.log_image:
            log_prediction_images(self.writer, self.val_set, results[:8], self.global_step)
        return metrics

    def _checkpoint(self, epoch: int, progress: EpochProgress | None = None) -> dict[str, Any]:
        """Everything a resume needs after `epoch` epochs and, mid-epoch, `progress` steps of the next.

        Collective: every rank's RNG states are gathered, so each continues its own stream.
        """
        rng = all_gather_objects(self.world, capture_rng())
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": epoch,
            "epoch_progress": progress.as_dict() if progress is not None else None,
            "world_size": self.world.size,
            "global_step": self.global_step,
            "best_acc50": self.best_acc50,
            "best_epoch": self.best_epoch,
            "settings": settings_to_dict(self.settings),
            "vocabulary": self.vocabulary.to_list(),
            "metrics": self.last_metrics.as_dict() if self.last_metrics is not None else None,
            "rng": rng[0],
            "rng_ranks": rng,
        }

    def _write_last(self, checkpoint: dict[str, Any], position: tuple[int, int]) -> None:
        """Rank 0 writes last.pth (atomically); `position` is (epochs done, steps of the next) it holds."""
        if self.world.is_main:
            atomic_save(checkpoint, self.run_dir / LAST)
        self.saved_at = position

    def _save(self, epoch: int, improved: bool, forced: bool) -> None:
        """At the end of epoch `epoch`: last.pth when due (or `forced`), best.pth as a copy when val improved."""
        final = epoch == self.settings.train.epochs
        if improved or final or forced or epoch % self.settings.train.save_period == 0:
            self._write_last(self._checkpoint(epoch), (epoch, 0))
        if improved and self.world.is_main:
            atomic_copy(self.run_dir / LAST, self.run_dir / BEST)

    def _report_epoch(self, epoch: int, losses: dict[str, float], metrics: SplitMetrics, seconds: float) -> None:
        row: dict[str, float | int] = {"epoch": epoch, **{k: round(v, 6) for k, v in losses.items()}}
        row.update({"val_acc50": round(metrics.acc50, 4), "val_acc75": round(metrics.acc75, 4),
                    "val_miou_box": round(metrics.mean_iou, 4)})  # fmt: skip
        if metrics.mask_miou is not None:
            row.update(
                {"val_mask_miou": round(metrics.mask_miou, 4), "val_mask_oiou": round(metrics.mask_oiou or 0, 4)}
            )
        row["time_s"] = round(seconds, 2)
        self.metrics_csv.append(row)
        plot_metrics(self.metrics_csv.rows, self.run_dir / PLOT)
        if self.writer is not None:
            self.writer.add_scalar("Acc/BoxIoU@0.5", metrics.acc50, epoch)
            self.writer.add_scalar("Acc/BoxIoU@0.75", metrics.acc75, epoch)
            if metrics.mask_miou is not None:
                self.writer.add_scalar("Acc/MaskIoU", metrics.mask_miou, epoch)
        columns = ["epoch", "loss", "val Acc@0.5", "val Acc@0.75", "best"]
        values = [epoch, losses["loss"], metrics.acc50, metrics.acc75, self.best_acc50]
        if metrics.mask_miou is not None:  # a mask model: its masks are half of what it learns
            columns += ["val mask mIoU", "val mask oIoU"]
            values += [metrics.mask_miou, metrics.mask_oiou or 0.0]
        self.reporter.table(f"epoch {epoch}/{self.settings.train.epochs}", [*columns, "time s"], [[*values, seconds]])

    def _report_stop(self, epoch: int) -> None:
        """After Ctrl-C or SIGTERM: where the run stopped, what last.pth holds, how to go on."""
        if self.saved_at is None:
            self.reporter.warning(
                f"stopped in epoch {epoch + 1} before any checkpoint was saved; run the same command to start again"
            )
            return
        epochs, steps = self.saved_at
        held = f"epoch {epochs}" + (f" and step {steps}/{self.steps_per_epoch} of epoch {epochs + 1}" if steps else "")
        self.reporter.warning(
            f"stopped in epoch {epoch + 1}; {self.run_dir / LAST} holds {held}: continue with "
            f"`simrec resume {self.run_dir}`"
        )

    def _run_epoch(self, epoch: int, deferring: bool) -> bool:
        """Train, validate, save and report one epoch; True when a deferred stop was asked for meanwhile."""
        resumed = self.resumed_progress if epoch == self.start_epoch else None
        started = time.perf_counter() - (resumed.seconds if resumed is not None else 0.0)
        losses = self._train_epoch(epoch)
        metrics = self.last_metrics = self._validate()
        improved = metrics.acc50 > self.best_acc50
        if improved:
            self.best_acc50, self.best_epoch = metrics.acc50, epoch + 1
        stop = deferring and any_rank(self.world, self.stop.requested)
        if self.world.is_main:
            # The epoch's row goes into metrics.csv before last.pth holds the epoch: a kill between the two leaves
            # a row that resuming drops and writes again, never a saved epoch without its row.
            self._report_epoch(epoch + 1, losses, metrics, time.perf_counter() - started)
        self._save(epoch + 1, improved, forced=stop)
        return stop

    def run(self) -> TrainResult:
        settings, world = self.settings, self.world
        self.writer = None
        if self.start_epoch >= settings.train.epochs:
            return self._finished_already()
        if world.is_main:
            yaml_text = settings_to_yaml(settings)
            atomic_write(self.run_dir / CONFIG, lambda handle: handle.write(yaml_text))
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir))
        if self.state is not None and self.resumed_progress is None:
            restore_rng(self._rank_rng())  # mid-epoch, the epoch restores them once its loader has started
        # With step checkpoints, SIGTERM waits for the end of the running step (or validation) and saves first.
        deferring = settings.train.checkpoint_every_steps > 0
        epoch = self.start_epoch
        try:
            with self.stop.deferring_sigterm() if deferring else nullcontext(), errors_after_a_stop_are_the_stop():
                for epoch in range(self.start_epoch, settings.train.epochs):
                    if self._run_epoch(epoch, deferring):
                        raise KeyboardInterrupt("stopped by SIGTERM after the epoch's checkpoint")
        except KeyboardInterrupt:
            self._report_stop(epoch)
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
            self._close_log()
        return TrainResult(self.run_dir, self.best_acc50, self.best_epoch, settings.train.epochs, self.last_metrics)
