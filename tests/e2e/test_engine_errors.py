"""Bad input to train/eval/resume: one line, exit 2, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import invoke, train_args


def _one_error_line(result: object, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_missing_data_names_prepare_data(tmp_path: Path) -> None:
    result = invoke(*train_args(tmp_path / "nowhere", tmp_path / "run"))
    _one_error_line(result, "prepare-data")


def test_sync_bn_on_cpu_is_refused(synthetic_root: Path, tmp_path: Path) -> None:
    result = invoke(*train_args(synthetic_root, tmp_path / "run", "train.sync_bn.enabled=true"))
    _one_error_line(result, "train.sync_bn.enabled")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(synthetic_root: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _one_error_line(invoke(*train_args(synthetic_root, locked / "run")), "cannot write")


def test_output_that_is_a_file(synthetic_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _one_error_line(invoke(*train_args(synthetic_root, blocker / "run")), "cannot write")


def test_nan_loss_stops_with_the_step_and_writes_nothing(synthetic_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "nan"
    result = invoke(*train_args(synthetic_root, run_dir, "train.data.std=[1e-38,1e-38,1e-38]"))
    _one_error_line(result, "became", "epoch 1, step 1;", "base_lr")
    assert not (run_dir / "last.pth").exists()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_eval_of_things_that_are_not_checkpoints(tmp_path: Path) -> None:
    notes = tmp_path / "notes.pth"
    notes.write_text("hello")
    _one_error_line(invoke("eval", notes, "--device", "cpu"), "not a readable checkpoint")
    _one_error_line(invoke("eval", tmp_path / "missing.pth", "--device", "cpu"), "does not exist")


def test_eval_with_missing_split_data(trained_run: Path, tmp_path: Path) -> None:
    _one_error_line(
        invoke("eval", trained_run / "best.pth", "--device", "cpu", "--data-root", tmp_path), "prepare-data"
    )


def test_resume_conflict_is_refused(trained_run: Path) -> None:
    _one_error_line(invoke("resume", trained_run, "train.batch_size=4"), "train.batch_size")


def test_gpus_on_cpu_machine_is_refused(synthetic_root: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _one_error_line(invoke(*train_args(synthetic_root, tmp_path / "run"), "--gpus", "2"), "--nproc")
