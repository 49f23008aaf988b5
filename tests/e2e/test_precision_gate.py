"""The accuracy gate of the reduced precisions, on a trained synthetic-tiny checkpoint: bf16 and int8 keep val
Acc@0.5 within half a point of fp32, and `auto` never picks a precision that misses it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.models.precision import resolve_precision

GATE_POINTS = 0.5


def _val_acc50(model: Path, data_root: Path, precision: str, output: Path, *options: str) -> float:
    arguments = ["eval", str(model), "--data-root", str(data_root), "--split", "val", "--device", "cpu",
                 "--precision", precision, "--json", str(output), *options]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())["splits"][0]["acc50"]


def test_reduced_precisions_keep_val_accuracy(trained_checkpoint: Path, demo_data_root: Path, tmp_path: Path) -> None:
    int8_file = tmp_path / "model.int8.pt2"
    exported = CliRunner().invoke(app, ["export", str(trained_checkpoint), "--format", "int8", "-o", str(int8_file),
                                        "--data-root", str(demo_data_root)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    fp32 = _val_acc50(trained_checkpoint, demo_data_root, "fp32", tmp_path / "fp32.json")
    assert fp32 >= 80, f"the checkpoint is not trained enough to judge agreement ({fp32:.2f} %)"
    reduced = {
        "bf16": _val_acc50(trained_checkpoint, demo_data_root, "bf16", tmp_path / "bf16.json"),
        # compiled, as int8 runs fast: int8 convolutions with bf16 between them where the CPU has bf16
        "int8": _val_acc50(int8_file, demo_data_root, "int8", tmp_path / "int8.json", "--compile"),
    }
    for name, acc50 in reduced.items():
        assert abs(acc50 - fp32) <= GATE_POINTS, f"{name} {acc50:.2f} % against fp32 {fp32:.2f} %"
    passing = {"fp32"} | {name for name, acc50 in reduced.items() if abs(acc50 - fp32) <= GATE_POINTS}
    assert resolve_precision("auto", torch.device("cpu")).name in passing
