"""The tests of the suite's one trained model (`trained_checkpoint`, synthetic-tiny trained briefly), together in
one file so that pytest-xdist's `--dist loadfile` runs them on one worker, which trains it once.

The model finds the described object in held-out scenes; and the accuracy gate of the reduced precision: bf16,
eager (predict, eval) and compiled for fixed batch sizes (a server's buckets), keeps val Acc@0.5 within half a
point of fp32, and `auto` never picks a precision that misses it; so do the other runtimes (`simrec benchmark`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from simrec_cli.benchmark.runner import run_benchmark
from simrec_cli.cli import app
from simrec_cli.data.dataset import RefDataset
from simrec_cli.data.synthetic import DEFAULT_IMAGE_SIZE, render_scene
from simrec_cli.engine.distributed import World
from simrec_cli.engine.evaluator import evaluate_split
from simrec_cli.engine.loading import load_for_inference
from simrec_cli.engine.metrics import box_iou_xyxy, xywh_to_xyxy
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


def test_trained_checkpoint_finds_the_described_object(trained_checkpoint: Path, tmp_path: Path) -> None:
    """Held-out scenes (seeds the generator never used for the dataset): the box must hit the object the
    expression describes (IoU >= 0.5) at least 90 % of the time."""
    pairs, answers = [], {}
    for seed in range(40):
        scene = render_scene(900_000 + seed, DEFAULT_IMAGE_SIZE)
        name = f"held_out_{seed}.png"
        Image.fromarray(scene.image).save(tmp_path / name)
        for expression, target in scene.expressions:
            pairs.append(json.dumps({"image": name, "expression": expression}))
            answers[(str(tmp_path / name), expression)] = scene.objects[target].box
    (tmp_path / "pairs.jsonl").write_text("\n".join(pairs))
    arguments = ["predict", "--pairs", str(tmp_path / "pairs.jsonl"), "-c", str(trained_checkpoint), "--json",
                 "--no-save"]  # fmt: skip
    result = CliRunner().invoke(app, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(records) == len(answers) >= 100
    predicted = np.array([record["box"] for record in records], np.float64)
    truth = xywh_to_xyxy(np.array([answers[(r["image"], r["expression"])] for r in records], np.float64))
    hits = box_iou_xyxy(predicted, truth) >= 0.5
    assert hits.mean() >= 0.9, f"{hits.sum()} of {len(hits)} boxes hit"


def test_every_runtime_and_precision_auto_can_pick_keeps_the_gate(
    trained_checkpoint: Path, demo_data_root: Path, tmp_path: Path
) -> None:
    """`simrec benchmark`'s rows on the trained model: OpenVINO in f32 and bf16, ONNX Runtime and PyTorch bf16 keep
    val Acc@0.5 within half a point of PyTorch fp32 and at least 97 % of the boxes at IoU >= 0.99 against fp32's."""
    result = run_benchmark(trained_checkpoint, workdir=tmp_path, data_root=demo_data_root, split="val", batch=2,
                           device="cpu")  # fmt: skip
    fp32 = result.rows[0]
    assert (fp32.format, fp32.precision) == ("pytorch", "fp32") and fp32.acc50 >= 80
    measured = [row for row in result.rows if row.acc50 is not None]
    assert {(row.runtime, row.precision) for row in measured} >= {("openvino", "fp32"), ("onnxruntime", "fp32")}
    for row in measured:
        assert row.gate, f"{row.runtime} {row.precision}: {row.acc50} % ({row.acc50_delta:+.2f}), {row.agreement} %"
