"""The accuracy gate of the reduced precision, on a trained synthetic-tiny checkpoint: bf16, eager (predict, eval)
and compiled for fixed batch sizes (a server's buckets), keeps val Acc@0.5 within half a point of fp32, and
`auto` never picks a precision that misses it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.data.dataset import RefDataset
from simrec_cli.engine.distributed import World
from simrec_cli.engine.evaluator import evaluate_split
from simrec_cli.engine.loading import load_for_inference
from simrec_cli.models.precision import resolve_precision
from simrec_cli.reporting import NullReporter

GATE_POINTS = 0.5


def _val_acc50(checkpoint: Path, data_root: Path, precision: str, output: Path) -> float:
    arguments = ["eval", str(checkpoint), "--data-root", str(data_root), "--split", "val", "--device", "cpu",
                 "--precision", precision, "--json", str(output)]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert f"precision {precision} (as asked)" in result.stdout
    return json.loads(output.read_text())["splits"][0]["acc50"]


def _compiled_bf16_val_acc50(checkpoint: Path, data_root: Path) -> float:
    model, settings, vocabulary = load_for_inference(checkpoint, torch.device("cpu"), "bf16")
    dataset_settings = settings.dataset.model_copy(update={"data_root": data_root})
    model.compile((1, 16), dataset_settings.input_shape, dataset_settings.max_token_length)
    data = settings.train.data
    val = RefDataset(dataset_settings, "val", vocabulary, training=False, load_masks=False, mean=data.mean,
                     std=data.std)  # fmt: skip
    metrics, _ = evaluate_split(model, val, split="val", world=World(), batch_size=16, num_workers=0,
                                reporter=NullReporter())  # fmt: skip
    return metrics.acc50


def test_bf16_keeps_val_accuracy(trained_checkpoint: Path, demo_data_root: Path, tmp_path: Path) -> None:
    fp32 = _val_acc50(trained_checkpoint, demo_data_root, "fp32", tmp_path / "fp32.json")
    assert fp32 >= 80, f"the checkpoint is not trained enough to judge agreement ({fp32:.2f} %)"
    reduced = {
        "bf16": _val_acc50(trained_checkpoint, demo_data_root, "bf16", tmp_path / "bf16.json"),
        "bf16 compiled": _compiled_bf16_val_acc50(trained_checkpoint, demo_data_root),
    }
    for name, acc50 in reduced.items():
        assert abs(acc50 - fp32) <= GATE_POINTS, f"{name} {acc50:.2f} % against fp32 {fp32:.2f} %"
    passing = {"fp32"} | {name for name, acc50 in reduced.items() if abs(acc50 - fp32) <= GATE_POINTS}
    assert resolve_precision("auto", torch.device("cpu")).name in passing
