"""train, eval and resume as a user runs them, on generated synthetic data with a tiny model."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.e2e.conftest import assert_same_weights, invoke, metrics_rows, train_args

CHECKPOINT_KEYS = {
    "kind", "format_version", "model", "ema", "optimizer", "scaler", "epoch", "global_step", "best_acc50",
    "best_epoch", "settings", "vocabulary", "metrics", "rng",
}  # fmt: skip


def test_train_writes_a_complete_run_directory(trained_run: Path) -> None:
    names = {path.name for path in trained_run.iterdir()}
    assert {"config.yaml", "log.txt", "metrics.csv", "last.pth", "best.pth", "results.png"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    assert not [name for name in names if name.endswith(".tmp")]
    rows = metrics_rows(trained_run)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "loss_det", "lr", "val_acc50", "val_acc75", "time_s"} <= set(rows[0])
    log = (trained_run / "log.txt").read_text()
    assert "training in fp32 (train.amp.enabled=false)" in log  # the default, named where the run is recorded
    epoch_row = re.search(r"^1 \| (.+)$", log, re.MULTILINE)
    assert epoch_row is not None  # the epoch table, as the console shows it: loss, metrics, seconds to 2 decimals
    assert all(re.fullmatch(r"\d+\.\d\d", cell) for cell in epoch_row.group(1).split(" | ")), epoch_row.group(0)
    checkpoint = torch.load(trained_run / "last.pth", weights_only=True)
    assert set(checkpoint) >= CHECKPOINT_KEYS
    assert checkpoint["epoch"] == 2 and checkpoint["vocabulary"][:3] == ["PAD", "UNK", "CLS"]
    best = torch.load(trained_run / "best.pth", weights_only=True)
    assert best["epoch"] == best["best_epoch"]
    assert best["metrics"]["protocol"] == "original"  # validation counts as `simrec eval` does by default
    assert max(float(row["val_acc50"]) for row in rows) == pytest.approx(best["best_acc50"], abs=1e-3)


def test_eval_prints_every_split_and_writes_json(trained_run: Path, synthetic_root: Path, tmp_path: Path) -> None:
    metrics_file = tmp_path / "metrics.json"
    predictions = tmp_path / "predictions.jsonl"
    result = invoke("eval", trained_run / "best.pth", "--device", "cpu", "--json", metrics_file, "--precision", "fp32",
                    "--save-predictions", predictions, "--batch-size", "5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Acc@0.5" in result.output and "speed per image" in result.output
    report = json.loads(metrics_file.read_text())
    assert [split["split"] for split in report["splits"]] == ["val", "test"]
    lines = predictions.read_text().splitlines()
    assert len(lines) == sum(split["count"] for split in report["splits"])
    first = json.loads(lines[0])
    assert {"split", "index", "box", "score", "gt_box", "iou", "expression", "protocol", "hit"} <= set(first)
    assert report["protocol"]["name"] == "original" and {s["protocol"] for s in report["splits"]} == {"original"}
    assert "protocol original" in result.output
    for line in map(json.loads, lines):
        assert line["protocol"] == "original" and line["hit"] == (line["iou"] > 0.5)
    # the batch size must not change any number (in fp32; bf16 rounds differently in other batch shapes)
    again = tmp_path / "again.json"
    assert (
        invoke("eval", trained_run / "best.pth", "--device", "cpu", "--json", again, "--batch-size", "16",
               "--precision", "fp32").exit_code
        == 0
    )  # fmt: skip
    assert [s["acc50"] for s in json.loads(again.read_text())["splits"]] == [s["acc50"] for s in report["splits"]]


def test_the_clipped_protocol_never_counts_lower(trained_run: Path, tmp_path: Path) -> None:
    """Clipping a box to the image only removes area that overlaps nothing, and >= counts whatever > counts."""
    files = {name: tmp_path / f"{name}.json" for name in ("original", "clipped")}
    for name, path in files.items():
        result = invoke("eval", trained_run / "best.pth", "--device", "cpu", "--precision", "fp32", "--json", path,
                        "--protocol", name)  # fmt: skip
        assert result.exit_code == 0, result.output
    original, clipped = (json.loads(path.read_text()) for path in files.values())
    assert clipped["protocol"]["name"] == "clipped" and clipped["protocol"]["hit_rule"] == "IoU ≥ 0.5"
    for first, second in zip(original["splits"], clipped["splits"], strict=True):
        assert second["protocol"] == "clipped" and second["count"] == first["count"]
        assert second["acc50"] >= first["acc50"] and second["mean_iou"] >= first["mean_iou"] - 1e-9


@pytest.mark.slow
def test_distributed_eval_matches_single_process(trained_run: Path, tmp_path: Path) -> None:
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    fp32 = ["--precision", "fp32"]
    assert invoke("eval", trained_run / "best.pth", "--device", "cpu", "--json", single, *fp32).exit_code == 0
    command = [sys.executable, "-m", "simrec_cli", "eval", str(trained_run / "best.pth"), "--device", "cpu",
               "--nproc", "2", "--json", str(double), "--batch-size", "3", *fp32]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    one, two = json.loads(single.read_text())["splits"], json.loads(double.read_text())["splits"]
    assert [(s["split"], s["count"], s["acc50"], s["acc75"]) for s in two] == [
        (s["split"], s["count"], s["acc50"], s["acc75"]) for s in one
    ]
    # continuous metrics agree to float precision (batched convolutions round differently)
    assert [s["mean_iou"] for s in two] == pytest.approx([s["mean_iou"] for s in one], abs=1e-4)


def test_resume_is_bit_exact(synthetic_root: Path, tmp_path: Path) -> None:
    # a step schedule without warmup makes the learning rate independent of train.epochs
    features = ["train.ema.enabled=true", "train.multi_scale_training.enabled=true", "train.warmup_epochs=0",
                "train.multi_scale_training.img_scales=[[64,64],[96,96]]", "train.scheduler.name=step",
                "train.scheduler.decay_epochs=[1]", "dataset.flip_lr=true"]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert invoke(*train_args(synthetic_root, straight, *features)).exit_code == 0
    first = invoke(*train_args(synthetic_root, split, *features, "train.epochs=1"))
    assert first.exit_code == 0, first.output
    resumed = invoke("resume", split, "train.epochs=2")
    assert resumed.exit_code == 0, resumed.output
    assert_same_weights(straight / "last.pth", split / "last.pth")
    assert [row["loss"] for row in metrics_rows(straight)] == [row["loss"] for row in metrics_rows(split)]


def test_every_training_feature_runs(synthetic_root: Path, tmp_path: Path) -> None:
    variants = [
        ["optim.name=adamw", "train.scheduler.name=step", "train.scheduler.decay_epochs=[1]", "train.amp.enabled=true",
         "train.amp.dtype=bfloat16", "train.ema.enabled=true", "train.multi_scale_training.enabled=true",
         "train.multi_scale_training.img_scales=[[32,32],[64,64]]", "train.log_image=true", "dataset.flip_lr=true",
         "dataset.augmentations=[randaugment,elastic]"],
        ["optim.name=sgd", "train.amp.enabled=true", "train.amp.dtype=float16", "train.ema.enabled=false",
         "train.clip_grad_norm=0", "train.save_period=2", "train.epochs=1", "train.warmup_epochs=0",
         "dataset.augmentations=[grid_distortion,random_erasing]",
         "train.data.group_by_image=false"],  # the preset groups by image: cover one item per object too
    ]  # fmt: skip
    for number, extra in enumerate(variants):
        run_dir = tmp_path / f"variant{number}"
        result = invoke(*train_args(synthetic_root, run_dir, *extra))
        assert result.exit_code == 0, result.output
        assert (run_dir / "last.pth").is_file()
        checkpoint = torch.load(run_dir / "last.pth", weights_only=True)
        assert (checkpoint["ema"] is not None) == (number == 0)
        assert (checkpoint["scaler"] is not None) == (number == 1)
        assert checkpoint["settings"]["train"]["data"]["group_by_image"] == (number == 0)
        assert f"training {'images' if number == 0 else 'objects'}" in (run_dir / "log.txt").read_text()
    events = EventAccumulator(str(tmp_path / "variant0")).Reload()
    assert "val/prediction_0" in events.Tags()["images"]
    assert {"loss/train", "lr", "Acc/BoxIoU@0.5"} <= set(events.Tags()["scalars"])


def test_a_mask_model_shows_its_mask_metrics_every_epoch(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "mcn"
    result = invoke(*train_args(synthetic_root, run_dir, "model.name=mcn", "train.epochs=1", "train.warmup_epochs=0"))
    assert result.exit_code == 0, result.output
    header = next(line for line in (run_dir / "log.txt").read_text().splitlines() if line.startswith("epoch | "))
    assert header.split(" | ") == ["epoch", "loss", "val Acc@0.5", "val Acc@0.75", "best", "val mask mIoU",
                                   "val mask oIoU", "time s"]  # fmt: skip
    assert "mIoU" in result.output and "oIoU" in result.output  # the table on the screen (headers wrap at 80 columns)
    row = metrics_rows(run_dir)[0]
    shown = re.search(r"^1 \| (.+)$", (run_dir / "log.txt").read_text(), re.MULTILINE)
    assert shown is not None and shown.group(1).split(" | ")[4:6] == [
        f"{float(row['val_mask_miou']):.2f}",
        f"{float(row['val_mask_oiou']):.2f}",
    ]


def test_a_frozen_random_backbone_is_named_and_workers_follow_the_cores(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "frozen"
    extra = [
        "model.visual_backbone.freeze_backbone=true",
        "train.data.num_workers=auto",
        "train.epochs=1",
        "train.warmup_epochs=0",
    ]
    result = invoke(*train_args(synthetic_root, run_dir, *extra))
    assert result.exit_code == 0, result.output
    log = " ".join((run_dir / "log.txt").read_text().split())
    assert "model.visual_backbone.pretrained=false with freeze_backbone=true" in log
    assert "set model.visual_backbone.freeze_backbone=false to train them" in log
    workers = min(8, len(os.sched_getaffinity(0)))
    assert (
        f"{workers} loader worker(s) (train.data.num_workers=auto: {len(os.sched_getaffinity(0))} usable cores)" in log
    )
    assert "worker processes in total" not in result.output  # torch's warning about more workers than cores


def test_loss_falls_over_a_short_run(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "falls"
    result = invoke(*train_args(synthetic_root, run_dir, "train.epochs=4", "train.base_lr=0.003"))
    assert result.exit_code == 0, result.output
    losses = [float(row["loss"]) for row in metrics_rows(run_dir)]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.97 * losses[0], losses


def test_finetune_from_a_checkpoint(trained_run: Path, synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "finetune"
    result = invoke(*train_args(synthetic_root, run_dir, f"train.vl_pretrain_weight={trained_run / 'best.pth'}",
                                "train.epochs=1", "train.warmup_epochs=0"))  # fmt: skip
    assert result.exit_code == 0, result.output
    log = (run_dir / "log.txt").read_text()
    assert str(trained_run / "best.pth") in log


def _wait_for_first_checkpoint(process: subprocess.Popen, run_dir: Path) -> None:
    """Return once the training `process` has written last.pth (or ended, or 240 s passed)."""
    deadline = time.time() + 240
    while not (run_dir / "last.pth").is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)


@pytest.mark.slow
def test_auto_resume_after_sigkill(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "simrec_cli", *train_args(synthetic_root, run_dir, "train.epochs=4")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _wait_for_first_checkpoint(process, run_dir)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (run_dir / "last.pth").is_file()
    done_before = torch.load(run_dir / "last.pth", weights_only=True)["epoch"]
    assert done_before < 4
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "resuming from" in (run_dir / "log.txt").read_text()
    assert torch.load(run_dir / "last.pth", weights_only=True)["epoch"] == 4
    assert [row["epoch"] for row in metrics_rows(run_dir)] == ["1", "2", "3", "4"]
    straight = tmp_path / "straight"
    assert invoke(*train_args(synthetic_root, straight, "train.epochs=4")).exit_code == 0
    assert_same_weights(straight / "last.pth", run_dir / "last.pth")


@pytest.mark.slow
def test_distributed_training_with_two_gloo_processes(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "simrec_cli", *train_args(synthetic_root, run_dir, "train.epochs=1",
               "train.warmup_epochs=0"), "--nproc", "2"]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert torch.load(run_dir / "last.pth", weights_only=True)["epoch"] == 1
    assert "2 process(es)" in (run_dir / "log.txt").read_text()


def _processes_mentioning(text: str) -> list[int]:
    """Live process ids whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return found


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_stops_training_cleanly_and_says_how_to_resume(
    synthetic_root: Path, tmp_path: Path, processes: int
) -> None:
    run_dir = tmp_path / f"stopped{processes}"
    extra = ["train.epochs=50", "train.warmup_epochs=0", *(["--nproc", "2"] if processes > 1 else [])]
    command = [sys.executable, "-m", "simrec_cli", *train_args(synthetic_root, run_dir, *extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for_first_checkpoint(process, run_dir)
    time.sleep(0.5)  # into the next epoch
    process.send_signal(signal.SIGTERM)  # what a cluster scheduler or `kill` sends
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    assert "simrec resume" in stdout + stderr and "interrupted" in stderr
    log = (run_dir / "log.txt").read_text()
    epoch = torch.load(run_dir / "last.pth", weights_only=True)["epoch"]
    assert 1 <= epoch < 50
    assert f"holds epoch {epoch}: continue with `simrec resume {run_dir}`" in log
    time.sleep(1)
    assert _processes_mentioning(str(run_dir)) == []  # no worker outlives the command


def test_a_run_that_chose_the_clipped_protocol_validates_and_evaluates_with_it(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "clipped"
    trained = invoke(
        *train_args(
            synthetic_root, run_dir, "train.epochs=1", "train.warmup_epochs=0", "train.evaluation.protocol=clipped"
        )
    )
    assert trained.exit_code == 0, trained.output
    assert torch.load(run_dir / "best.pth", weights_only=True)["metrics"]["protocol"] == "clipped"
    metrics = tmp_path / "metrics.json"
    result = invoke("eval", run_dir / "best.pth", "--device", "cpu", "--json", metrics)
    assert result.exit_code == 0, result.output
    assert json.loads(metrics.read_text())["protocol"]["name"] == "clipped"  # the checkpoint's choice
    assert "protocol clipped" in result.output
