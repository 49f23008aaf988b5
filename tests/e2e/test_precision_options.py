"""`--precision` on predict and eval as a user types it, and the int8 model file from export to predict and eval."""

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


def test_int8_without_a_quantized_file_is_one_line(checkpoint: Path, image: Path) -> None:
    result = run("predict", image, "the circle", "-c", checkpoint, "--no-save", "--precision", "int8")
    assert result.exit_code == 2
    assert "int8 needs a quantized model file" in result.stderr and "--format int8" in result.stderr


def test_eval_prints_its_precision(trained_run: Path) -> None:
    result = run("eval", trained_run / "best.pth", "--device", "cpu", "--precision", "fp32", "--split", "val")
    assert result.exit_code == 0, result.output
    assert "precision fp32 (as asked)" in result.stdout


@pytest.mark.slow
def test_int8_file_from_export_runs_in_predict_and_eval(trained_run: Path, synthetic_root: Path, image: Path) -> None:
    output = trained_run.parent / "tiny.int8.pt2"
    exported = run("export", trained_run / "best.pth", "--format", "int8", "-o", output, "--calibration-samples", "24",
                   "--data-root", synthetic_root)  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "calibrated on 24" in exported.stdout and output.is_file()
    predicted = run("predict", image, "the red circle", "the blue square", "-c", output, "--json", "--no-save")
    assert predicted.exit_code == 0, predicted.output
    assert "precision int8 (quantized model file" in predicted.stderr
    assert len(boxes(predicted)) == 2
    fp32_json, int8_json = trained_run.parent / "fp32.json", trained_run.parent / "int8.json"
    for path, precision, model in [(fp32_json, "fp32", trained_run / "best.pth"), (int8_json, "auto", output)]:
        evaluated = run("eval", model, "--data-root", synthetic_root, "--split", "val", "--precision", precision,
                        "--json", path)  # fmt: skip
        assert evaluated.exit_code == 0, evaluated.output
    assert "precision int8" in evaluated.stdout
    fp32, int8 = (json.loads(path.read_text())["splits"][0] for path in (fp32_json, int8_json))
    assert int8["count"] == fp32["count"]
    assert abs(int8["mean_iou"] - fp32["mean_iou"]) < 5  # a 2-epoch model: same answers up to quantization noise


def test_wrong_int8_files_are_refused(tmp_path: Path, image: Path) -> None:
    fake = tmp_path / "model.int8.pt2"
    fake.write_text("not an archive")
    result = run("predict", image, "the circle", "-c", fake, "--no-save")
    assert result.exit_code == 2 and "not a readable int8 model file" in result.stderr
    missing = run("predict", image, "the circle", "-c", tmp_path / "gone.int8.pt2", "--no-save")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
