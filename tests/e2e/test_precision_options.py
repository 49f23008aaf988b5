"""`--precision` on predict and eval as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.models.precision import resolve_precision
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint


def run(*args: object) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", tiny_settings())


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "scene.png"
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def boxes(result: object) -> list[list[float]]:
    return [json.loads(line)["box"] for line in result.stdout.splitlines() if line.strip()]


def test_predict_says_which_precision_it_used(checkpoint: Path, image: Path) -> None:
    expected = resolve_precision("auto", torch.device("cpu")).describe()
    auto = run("predict", image, "the red circle", "-c", checkpoint, "--device", "cpu", "--no-save")
    assert auto.exit_code == 0, auto.output
    assert f"precision {expected} on cpu" in auto.stdout
    fp32 = run("predict", image, "the red circle", "-c", checkpoint, "--device", "cpu", "--no-save", "--precision",
               "fp32", "--json")  # fmt: skip
    assert fp32.exit_code == 0 and "precision fp32 (as asked) on cpu" in fp32.stderr
    assert len(boxes(fp32)) == 1  # stdout holds only the JSON line


def test_half_is_bf16_and_contradictions_are_refused(checkpoint: Path, image: Path) -> None:
    half = run("predict", image, "the red circle", "-c", checkpoint, "--device", "cpu", "--no-save", "--half")
    assert half.exit_code == 0 and "precision bf16 (as asked)" in half.stdout
    both = run("predict", image, "the circle", "-c", checkpoint, "--no-save", "--half", "--precision", "fp32")
    assert both.exit_code == 2 and "contradict" in both.stderr and "Traceback" not in both.output


def test_unknown_precision_is_one_line(checkpoint: Path, image: Path) -> None:
    result = run("predict", image, "the circle", "-c", checkpoint, "--no-save", "--precision", "fp16")
    assert result.exit_code == 2
    assert "unknown precision 'fp16'" in result.stderr and "auto, fp32, bf16" in result.stderr


def test_eval_prints_its_precision(trained_run: Path) -> None:
    result = run("eval", trained_run / "best.pth", "--device", "cpu", "--precision", "fp32", "--split", "val")
    assert result.exit_code == 0, result.output
    assert "precision fp32 (as asked)" in result.stdout
