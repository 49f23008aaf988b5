"""`simrec export --format onnx`: the file runs in onnxruntime, matches PyTorch, carries what a user needs,
and can be used without simrec by following the preprocessing recipe of the docs' export page."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.engine.metrics import box_iou_xyxy
from tests.unit.predict.checkpoints import WORDS, tiny_settings, write_checkpoint


def run(*args: object) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", tiny_settings(), seed=1)


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = run("export", checkpoint, "--format", "onnx", "--dynamic-batch", "-o", output)
    assert result.exit_code == 0, result.output
    assert "onnxruntime check: boxes match" in result.stdout
    return output


def _inputs(batch: int, size: int = 64, length: int = 15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(batch)
    images = rng.random((batch, 3, size, size), dtype=np.float32)
    tokens = np.zeros((batch, length), np.int64)
    tokens[:, :3] = rng.integers(3, len(WORDS), (batch, 3))
    return images, tokens


def _pytorch_boxes(checkpoint: Path, images: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
    model, _, _ = load_model_from_checkpoint(checkpoint, "cpu")
    with torch.no_grad():
        outputs = model(torch.from_numpy(images), torch.from_numpy(tokens))
    return {key: value.numpy() for key, value in outputs.items()}


def test_onnxruntime_matches_pytorch_at_any_batch_size(exported: Path, checkpoint: Path) -> None:
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "tokens"]
    assert [o.name for o in session.get_outputs()] == ["boxes"]
    for batch in (1, 4):
        images, tokens = _inputs(batch)
        (boxes,) = session.run(None, {"image": images, "tokens": tokens})
        expected = _pytorch_boxes(checkpoint, images, tokens)["boxes"]
        assert boxes.shape == (batch, 5)
        assert (box_iou_xyxy(boxes[:, :4].astype(np.float64), expected[:, :4].astype(np.float64)) >= 0.99).all()
        np.testing.assert_allclose(boxes[:, 4], expected[:, 4], atol=1e-4)


def test_file_and_sidecar_carry_vocabulary_and_preprocessing(exported: Path, checkpoint: Path) -> None:
    sidecar = json.loads(exported.with_suffix(".json").read_text())
    properties = {entry.key: entry.value for entry in onnx.load(str(exported)).metadata_props}
    assert json.loads(properties["simrec.vocabulary"]) == WORDS == sidecar["vocabulary"]
    assert json.loads(properties["simrec.input_size"]) == [64, 64] == sidecar["input_size"]
    assert sidecar["pad_value"] == 127 and sidecar["max_token_length"] == 15 and sidecar["unk_id"] == 1
    assert sidecar["normalization_inside"] == {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert properties["simrec.format"] == "simrec-onnx-v2" and sidecar["checkpoint"] == str(checkpoint)
    assert json.loads(properties["simrec.settings"]) == sidecar["settings"] and sidecar["settings"]["model"]["name"]


RECIPES = [Path(__file__).resolve().parents[2] / "docs" / "export.md"]


def _recipe(document: Path) -> str:
    """The Python block of the section that uses the ONNX file without simrec."""
    text = document.read_text(encoding="utf-8")
    after = text[text.index("Using the file without simrec") :]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("document", RECIPES, ids=lambda path: path.name)
def test_the_documented_recipe_gives_the_boxes_of_simrec_predict(
    document: Path, exported: Path, checkpoint: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (90, 150, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    expression = "The big, red circle -- left!"
    result = run("predict", tmp_path / "photo.png", expression, "-c", checkpoint, "--json", "--no-save")
    assert result.exit_code == 0, result.output
    predicted = json.loads(result.stdout.splitlines()[0])

    recipe = (
        _recipe(document)
        .replace('"best.json"', repr(str(exported.with_suffix(".json"))))
        .replace('"best.onnx"', repr(str(exported)))
        .replace('"photo.jpg"', repr(str(tmp_path / "photo.png")))
        .replace('"The red car"', repr(expression))
    )
    namespace: dict = {}
    exec(compile(recipe, str(document), "exec"), namespace)
    iou = box_iou_xyxy(np.asarray([namespace["box"]], np.float64), np.array([predicted["box"]], np.float64))[0]
    assert iou >= 0.99 and float(namespace["score"]) == pytest.approx(predicted["score"], abs=1e-3)


def test_mask_model_exports_masks(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "mcn.pth", tiny_settings("model.name=mcn"))
    result = run("export", checkpoint)
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "mcn.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "masks"]
    images, tokens = _inputs(1)
    boxes, masks = session.run(None, {"image": images, "tokens": tokens})
    expected = _pytorch_boxes(checkpoint, images, tokens)
    assert masks.shape == (1, 64, 64) and np.abs(masks - expected["masks"]).max() < 1e-3
    assert box_iou_xyxy(boxes[:, :4].astype(np.float64), expected["boxes"][:, :4].astype(np.float64))[0] >= 0.99


def test_half_export_keeps_float32_inputs_and_the_boxes(checkpoint: Path, tmp_path: Path) -> None:
    output = tmp_path / "half.onnx"
    result = run("export", checkpoint, "--half", "-o", output)
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(output))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    images, tokens = _inputs(1)
    (boxes,) = session.run(None, {"image": images, "tokens": tokens})
    expected = _pytorch_boxes(checkpoint, images, tokens)["boxes"]
    assert box_iou_xyxy(boxes[:, :4].astype(np.float64), expected[:, :4].astype(np.float64))[0] >= 0.99


def test_missing_onnx_package_is_one_line(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = run("export", checkpoint)
    assert result.exit_code == 2 and "exporting needs the onnx package (pip install simrec" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["CKPT", "--format", "tflite"], "unknown export format 'tflite'"),
        (["CKPT", "-o", "OUT/model.txt"], "must end in .onnx"),
        (["OUT/none.pth"], "does not exist"),
        (["CKPT", "-o", "CKPT/model.onnx"], "cannot write"),
    ],
)
def test_bad_export_requests_are_one_line_errors(
    checkpoint: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    resolved = [arg.replace("CKPT", str(checkpoint)).replace("OUT", str(tmp_path)) for arg in arguments]
    result = run("export", *resolved)
    assert result.exit_code == 2 and message in result.stderr
    assert not [path for path in tmp_path.iterdir() if path.suffix in (".onnx", ".tmp", ".json")]
