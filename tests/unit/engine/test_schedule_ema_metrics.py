"""LR schedule, EMA, metrics and run-directory helpers, each on hand-made numbers."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from simrec_cli.engine.checkpoint import capture_rng, restore_rng
from simrec_cli.engine.ema import ModelEMA
from simrec_cli.engine.metrics import SampleResult, box_iou_xyxy, summarize, xywh_to_xyxy
from simrec_cli.engine.mixed_precision import training_precision
from simrec_cli.engine.protocol import CLIPPED
from simrec_cli.engine.rundir import MetricsCsv, next_run_dir
from simrec_cli.engine.schedule import LrSchedule
from simrec_cli.engine.trainer import build_optimizer
from simrec_cli.settings import load_settings


def _schedule(*overrides: str, steps: int = 10) -> LrSchedule:
    settings = load_settings(None, list(overrides))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    return LrSchedule(optimizer, settings.train, steps_per_epoch=steps)


def test_cosine_schedule_warms_up_then_decays_to_min_lr() -> None:
    schedule = _schedule()
    assert schedule.lr_at(0) == pytest.approx(1e-7)
    assert schedule.lr_at(15) == pytest.approx(1e-7 + (1e-4 - 1e-7) * 0.5)
    assert schedule.lr_at(30) == pytest.approx(1e-4)
    halfway = 30 + (250 - 30) // 2
    assert schedule.lr_at(halfway) == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6), rel=1e-6)
    assert schedule.lr_at(250) == pytest.approx(1e-6)
    values = [schedule.lr_at(step) for step in range(30, 251)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_step_schedule_decays_at_listed_epochs_and_applies_to_optimizer() -> None:
    schedule = _schedule("train.scheduler.name=step", "train.epochs=40", "train.warmup_epochs=1")
    assert schedule.lr_at(10 * 29) == pytest.approx(1e-4)
    assert schedule.lr_at(10 * 30) == pytest.approx(1e-4 * 0.2)
    assert schedule.lr_at(10 * 36) == pytest.approx(1e-4 * 0.04)
    assert schedule.apply(10 * 38) == pytest.approx(1e-4 * 0.2**3)
    assert schedule.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.2**3)


def test_ema_warm_start_and_average() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, alpha=0.9997, buffer_ema=True)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].running_mean.fill_(2.0)
    before = ema.module[0].weight.clone()
    ema.update(model)
    decay = 1 / 10
    assert torch.allclose(ema.module[0].weight, before * decay + (1 - decay))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 2.0 * (1 - decay)))
    assert ema.module[1].num_batches_tracked == model[1].num_batches_tracked
    state = ema.state_dict()
    other = ModelEMA(model, alpha=0.9997, buffer_ema=True)
    other.load_state_dict(state)
    assert other.updates == 1 and torch.equal(other.module[0].weight, ema.module[0].weight)
    assert ema.decay() == pytest.approx(2 / 11)


def test_ema_without_buffer_averaging_copies_buffers() -> None:
    model = nn.BatchNorm1d(2)
    ema = ModelEMA(model, alpha=0.9, buffer_ema=False)
    with torch.no_grad():
        model.running_mean.fill_(5.0)
    ema.update(model)
    assert torch.equal(ema.module.running_mean, model.running_mean)


def _leave_nan_in_freed_memory(model: nn.Module) -> None:
    """Free NaN-filled blocks of the parameters' sizes, so a state buffer an optimizer forgets to initialise
    shows up as NaN instead of happening to be zero."""
    blocks = [torch.full_like(parameter, float("nan")) for parameter in model.parameters() for _ in range(16)]
    del blocks


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("amp", ["off", "bfloat16", "float16"])
def test_optimizers_match_the_reference_loop_and_survive_a_skipped_step(name: str, amp: str) -> None:
    """The trainer's (fused) optimizers step like torch's per-tensor loop, also after GradScaler skips a step."""
    overrides = [f"optim.name={name}", "train.base_lr=0.1", "optim.weight_decay=0.01"]
    overrides += ["train.amp.enabled=false"] if amp == "off" else ["train.amp.enabled=true", f"train.amp.dtype={amp}"]
    settings = load_settings(None, overrides)
    ours, reference = nn.Linear(3, 2), nn.Linear(3, 2)
    reference.load_state_dict(ours.state_dict())
    optimizer = build_optimizer(settings, ours, training_precision(settings.train.amp, torch.device("cpu")))
    assert optimizer.defaults["fused"] == (amp != "float16")  # fused SGD garbles momentum on steps fp16 skips
    defaults = {key: value for key, value in optimizer.defaults.items() if key != "decoupled_weight_decay"}
    loop = type(optimizer)(reference.parameters(), **{**defaults, "fused": False, "foreach": False})
    scalers = [torch.amp.GradScaler("cpu", init_scale=4.0, enabled=amp == "float16") for _ in range(2)]
    for gradients in ("overflow", "normal", "normal"):  # under fp16 the scaler skips the first step
        for model, opt, scaler in zip((ours, reference), (optimizer, loop), scalers, strict=True):
            opt.zero_grad()
            loss = model(torch.ones(1, 3)).sum()
            if gradients == "overflow":
                if not scaler.is_enabled():
                    continue  # without a scaler an inf loss never reaches the optimizer: the trainer stops first
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            _leave_nan_in_freed_memory(model)
            scaler.step(opt)
            scaler.update()
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.isfinite(a).all()
        assert torch.allclose(a, b, atol=1e-6)


def test_box_iou_and_accuracy_thresholds() -> None:
    truth = xywh_to_xyxy(np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float))
    predicted = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]], dtype=float)
    ious = box_iou_xyxy(predicted, truth)
    assert ious.tolist() == pytest.approx([1.0, 0.5, 0.0])
    results = [SampleResult(i, i, "x", list(predicted[i]), 1.0, list(truth[i]), float(ious[i])) for i in range(3)]
    metrics = summarize("val", results, {})
    assert metrics.count == 3 and metrics.protocol == "original"
    assert metrics.acc50 == pytest.approx(100 / 3)  # the original's rule: IoU exactly 0.5 is a miss (>)
    assert metrics.acc75 == pytest.approx(100 / 3)
    assert metrics.mean_iou == pytest.approx(50.0)
    assert metrics.mask_miou is None
    clipped = summarize("val", results, {}, CLIPPED)
    assert clipped.protocol == "clipped"
    assert clipped.acc50 == pytest.approx(200 / 3)  # the clipped protocol counts IoU exactly 0.5 (>=)


def test_mask_metrics_miou_oiou_precision_and_inconsistency() -> None:
    base = dict(image_id=0, expression="x", box=[0, 0, 1, 1], score=1.0, gt_box=[0, 0, 1, 1])
    results = [
        SampleResult(index=0, iou=0.9, mask_intersection=90, mask_union=100, **base),
        SampleResult(index=1, iou=0.9, mask_intersection=10, mask_union=100, **base),
    ]
    metrics = summarize("val", results, {}, CLIPPED)
    assert metrics.mask_miou == pytest.approx(50.0)
    assert metrics.mask_oiou == pytest.approx(50.0)
    assert list(metrics.mask_precision) == ["0.5", "0.6", "0.7", "0.8", "0.9"]
    assert metrics.mask_precision["0.5"] == pytest.approx(50.0)
    assert metrics.mask_precision["0.9"] == pytest.approx(50.0)  # mask IoU 0.9 reaches 0.9 (>=)
    assert metrics.inconsistency == pytest.approx(50.0)
    original = summarize("val", results, {})
    assert list(original.mask_precision) == [f"{0.5 + 0.05 * k:.2f}" for k in range(10)]  # 0.50:0.05:0.95
    assert original.mask_precision["0.85"] == pytest.approx(50.0)
    assert original.mask_precision["0.90"] == 0.0  # the original's rule is strict: 0.9 is not above 0.9
    assert original.inconsistency == pytest.approx(50.0)


def test_inconsistency_counts_box_and_mask_hits_by_the_protocols_rule() -> None:
    base = dict(image_id=0, expression="x", box=[0, 0, 1, 1], score=1.0, gt_box=[0, 0, 1, 1])
    results = [SampleResult(index=0, iou=0.5, mask_intersection=60, mask_union=100, **base)]
    assert summarize("val", results, {}).inconsistency == 100.0  # box IoU 0.5 misses, mask 0.6 hits
    assert summarize("val", results, {}, CLIPPED).inconsistency == 0.0  # both hit at >= 0.5


def test_run_dirs_are_numbered(tmp_path: Path) -> None:
    assert next_run_dir(tmp_path, "train") == tmp_path / "train"
    (tmp_path / "train").mkdir()
    (tmp_path / "train2").mkdir()
    assert next_run_dir(tmp_path, "train") == tmp_path / "train3"


def test_metrics_csv_drops_rows_after_the_resumed_epoch(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricsCsv(path, keep_through_epoch=0)
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "loss": 1.0 / epoch})
    resumed = MetricsCsv(path, keep_through_epoch=2)
    resumed.append({"epoch": 3, "loss": 0.5})
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss" and len(lines) == 4 and lines[-1] == "3,0.5"


def test_rng_round_trip_through_weights_only_load(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_rng()
    torch.save(state, tmp_path / "rng.pth")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng(torch.load(tmp_path / "rng.pth", weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert not math.isnan(expected[0])
