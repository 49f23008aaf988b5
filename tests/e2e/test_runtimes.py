"""Exported models in every verb: `simrec export --format openvino`, and eval, predict and serve on ONNX and
OpenVINO files with the checkpoint's answers (f32: boxes within half a pixel), `--runtime`, and how `auto` chooses."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fastapi.testclient import TestClient

from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.model_files import loading
from simrec_cli.model_files.loading import load_model
from simrec_cli.reporting import NullReporter
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import load_model as load_served_model
from simrec_cli.serve.options import ServeOptions
from tests.e2e.conftest import invoke

openvino = pytest.importorskip("openvino")

EXPRESSIONS = ["the big red circle", "the small blue square on the left"]
FP32_ON_CPU = ["--device", "cpu", "--precision", "fp32"]
HALF_PIXEL = 0.5


@pytest.fixture(scope="module")
def checkpoint(trained_run: Path) -> Path:
    return trained_run / "best.pth"


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exported")
    files = {"onnx": folder / "tiny.onnx", "openvino": folder / "tiny.xml"}
    onnx_result = invoke("export", checkpoint, "--dynamic-batch", "-o", files["onnx"])
    assert onnx_result.exit_code == 0, onnx_result.output
    result = invoke("export", checkpoint, "--format", "openvino", "-o", files["openvino"])
    assert result.exit_code == 0, result.output
    assert "openvino check: boxes match PyTorch's" in result.stdout
    return files


def test_the_openvino_ir_carries_its_metadata_and_matches_pytorch(exported: dict[str, Path], checkpoint: Path) -> None:
    xml = exported["openvino"]
    assert xml.with_suffix(".bin").is_file() and not list(xml.parent.glob("*.tmp"))
    sidecar = json.loads(xml.with_suffix(".json").read_text())
    model = openvino.Core().read_model(str(xml))
    framework = model.get_rt_info()["framework"]
    embedded = {key: str(value.astype(str)) for key, value in framework.items()}
    assert json.loads(embedded["simrec.vocabulary"]) == sidecar["vocabulary"]
    assert json.loads(embedded["simrec.settings"]) == sidecar["settings"]
    assert embedded["simrec.format"] == sidecar["format"] == "simrec-openvino-v2"
    compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    torch_model, _, _ = load_model_from_checkpoint(checkpoint, "cpu")
    for batch in (1, 4):
        rng = np.random.default_rng(batch)
        images = rng.random((batch, 3, 64, 64), dtype=np.float32)
        tokens = np.zeros((batch, 15), np.int64)
        tokens[:, :3] = rng.integers(3, 10, (batch, 3))
        boxes = compiled({"image": images, "tokens": tokens})[0]
        with torch.no_grad():
            expected = torch_model(torch.from_numpy(images), torch.from_numpy(tokens))["boxes"].numpy()
        np.testing.assert_allclose(boxes[:, :4], expected[:, :4], atol=HALF_PIXEL)


def _predicted(model: Path, images: list[Path], tmp_path: Path, *options: str) -> list[dict]:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"image": str(image), "expressions": EXPRESSIONS}) for image in images))
    result = invoke("-q", "predict", "--pairs", pairs, "-c", model, "--json", "--no-save", *FP32_ON_CPU, *options)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(("kind", "runtime"), [("onnx", "onnxruntime"), ("onnx", "openvino"), ("openvino", "openvino")])
def test_predict_on_an_exported_file_gives_the_checkpoints_boxes(
    exported: dict[str, Path], checkpoint: Path, synthetic_root: Path, tmp_path: Path, kind: str, runtime: str
) -> None:
    images = sorted((synthetic_root / "images" / "synthetic").glob("*.jpg"))[:3]
    expected = _predicted(checkpoint, images, tmp_path, "--runtime", "torch")
    answers = _predicted(exported[kind], images, tmp_path, "--runtime", runtime)
    assert len(answers) == len(expected) == 6
    for answer, reference in zip(answers, expected, strict=True):
        np.testing.assert_allclose(answer["box"], reference["box"], atol=HALF_PIXEL)
        assert abs(answer["score"] - reference["score"]) <= 1e-3


def _evaluated(model: Path, folder: Path, runtime: str, *extra: str) -> tuple[dict, list[dict], str]:
    metrics, predictions = folder / f"{runtime}-metrics.json", folder / f"{runtime}-predictions.jsonl"
    result = invoke("eval", model, "--split", "val", *FP32_ON_CPU, "--runtime", runtime, "--json", metrics,
                    "--save-predictions", predictions, *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    return json.loads(metrics.read_text())["splits"][0], lines, result.stdout


def test_eval_of_an_exported_file_gives_the_checkpoints_metrics(
    exported: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    reference, reference_boxes, _ = _evaluated(checkpoint, tmp_path, "torch")
    report = tmp_path / "report"
    for model, runtime in [(exported["openvino"], "openvino"), (exported["onnx"], "onnxruntime")]:
        extra = ["--report", str(report)] if runtime == "openvino" else []
        metrics, boxes, stdout = _evaluated(model, tmp_path, runtime, *extra)
        assert f"runtime {runtime}" in stdout and "precision fp32 (" in stdout
        assert metrics["count"] == reference["count"] and metrics["acc50"] == pytest.approx(reference["acc50"])
        for line, expected in zip(boxes, reference_boxes, strict=True):
            np.testing.assert_allclose(line["box"], expected["box"], atol=HALF_PIXEL)
    written = json.loads((report / "report.json").read_text())
    assert written["checkpoint"] == str(exported["openvino"]) and written["splits"][0]["split"] == "val"


def test_serve_answers_from_an_openvino_ir_as_the_checkpoint_does(
    exported: dict[str, Path], checkpoint: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    expected = {record["expression"]: record for record in _predicted(checkpoint, [image], tmp_path)}
    options = ServeOptions(model_path=exported["openvino"], device="cpu", precision="fp32", runtime="auto")
    with TestClient(create_app(load_served_model(options), options)) as api:
        info = api.get("/info").json()
        files = {"image": ("demo.jpg", image.read_bytes(), "image/jpeg")}
        response = api.post("/predict", files=files, data={"expression": EXPRESSIONS})
    assert info["runtime"] == "openvino (CPU)" and info["precision"] == "fp32" and info["input_size"] == [64, 64]
    assert info["runtime_reason"] == "auto: the only runtime for this file" and info["file"] == "tiny.xml"
    assert response.status_code == 200, response.text
    for record in response.json()["results"]:
        np.testing.assert_allclose(record["box"], expected[record["expression"]]["box"], atol=HALF_PIXEL)


def test_auto_measures_once_remembers_and_says_why(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIMREC_RUNTIME")
    monkeypatch.setenv("SIMREC_CACHE_DIR", str(tmp_path / "cache"))
    few = load_model(checkpoint, device="cpu", precision="fp32", rows=2)
    assert few.runtime.name == "torch" and "not yet measured on this machine" in few.runtime.reason
    assert not (tmp_path / "cache").exists()  # two expressions are not worth converting the checkpoint for

    reporter = NullReporter()
    first = load_model(checkpoint, device="cpu", precision="fp32", reporter=reporter)
    assert any(message.startswith("timing torch, openvino on this machine") for message in reporter.messages)
    assert first.runtime.reason.startswith("auto: fastest measured on this machine")
    assert len(list((tmp_path / "cache" / "speed").glob("*.json"))) == 1
    again = NullReporter()
    second = load_model(checkpoint, device="cpu", precision="fp32", reporter=again)
    assert second.runtime.name == first.runtime.name and not any("timing" in m for m in again.messages)

    monkeypatch.setitem(loading.INSTALLED, "openvino", lambda: False)
    without = load_model(checkpoint, device="cpu", precision="fp32")
    assert without.runtime.name == "torch" and "pip install simrec[openvino]" in without.runtime.reason


def test_a_file_of_an_older_export_is_refused_in_one_line(exported: dict[str, Path], tmp_path: Path) -> None:
    proto = onnx.load(str(exported["onnx"]))
    kept = [entry for entry in proto.metadata_props if entry.key != "simrec.settings"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(proto, str(old))
    result = invoke("eval", old, "--split", "val", *FP32_ON_CPU, "--runtime", "onnxruntime")
    assert result.exit_code == 2 and "has no simrec metadata (settings)" in result.stderr
    assert "simrec export CHECKPOINT --format onnx" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["predict", "IMG", "the circle", "-c", "CKPT", "--runtime", "onnxruntime"], "cannot run"),
        (["predict", "IMG", "the circle", "-c", "CKPT", "--runtime", "tflite"], "unknown runtime 'tflite'"),
        (["predict", "IMG", "the circle", "-c", "XML_ALONE"], "has no weights beside it (alone.bin is missing)"),
        (["export", "CKPT", "--format", "openvino", "--half"], "--half applies to ONNX files"),
        (["export", "CKPT", "--format", "openvino", "-o", "OUT/model.onnx"], "must end in .xml"),
        (["eval", "ONNX", "--runtime", "torch"], "--runtime torch cannot run"),
    ],
)
def test_runtime_mistakes_are_one_line_errors(
    exported: dict[str, Path], checkpoint: Path, synthetic_root: Path, tmp_path: Path, arguments: list[str],
    message: str,
) -> None:  # fmt: skip
    (tmp_path / "alone.xml").write_text("<net/>")
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    places = {"CKPT": checkpoint, "IMG": image, "XML_ALONE": tmp_path / "alone.xml", "ONNX": exported["onnx"],
              "OUT": tmp_path}  # fmt: skip
    resolved = [str(places[arg]) if arg in places else arg.replace("OUT", str(tmp_path)) for arg in arguments]
    result = invoke(*resolved, *(["--no-save"] if arguments[0] == "predict" else []))
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_export_without_openvino_says_how_to_install_it(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    result = invoke("export", checkpoint, "--format", "openvino")
    assert result.exit_code == 2
    message = "exporting to OpenVINO needs openvino, which is not installed (pip install simrec[openvino])"
    assert message in result.stderr


@pytest.mark.slow  # about 10 s: every format exported, evaluated and timed
def test_benchmark_prints_one_row_per_format_and_precision(
    checkpoint: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(loading.INSTALLED, "onnxruntime", lambda: False)
    outputs = {"json": tmp_path / "bench.json", "csv": tmp_path / "bench.csv"}
    result = invoke("benchmark", checkpoint, "--data-root", synthetic_root, "--device", "cpu", "--batch", "2",
                    "--json", outputs["json"], "--csv", outputs["csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = json.loads(outputs["json"].read_text())
    rows = {(row["format"], row["precision"]): row for row in written["rows"]}
    reference = written["rows"][0]
    assert (reference["format"], reference["precision"]) == ("pytorch", "fp32")
    assert reference["acc50_delta"] == 0 and reference["agreement"] == 100 and reference["gate"] is True
    assert rows[("onnx", "fp32")]["acc50"] is None and "pip install simrec[export]" in rows[("onnx", "fp32")]["note"]
    openvino_fp32 = rows[("openvino", "fp32")]
    assert openvino_fp32["gate"] is True and openvino_fp32["size_mb"] > 0
    assert openvino_fp32["ms_batch1"] > 0 and openvino_fp32["images_per_s"] > 0
    assert written["expressions"] == 40 and isinstance(written["machine"]["cpu_flags"], list)
    assert len(outputs["csv"].read_text().splitlines()) == len(rows) + 1
    assert "CPU:" in result.stdout and "pytorch" in result.stdout


def test_benchmark_refuses_an_unknown_format(checkpoint: Path) -> None:
    result = invoke("benchmark", checkpoint, "--formats", "onnx,tflite")
    assert result.exit_code == 2 and "unknown format 'tflite' (--formats)" in result.stderr


@pytest.mark.slow  # about 10 s: an export and an evaluation with its report
def test_compare_shows_an_exported_file_with_the_accuracy_of_its_own_report(
    exported: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"  # a copy of the run: its folder gains an export and a report
    folder.mkdir()
    for name in ("best.pth", "config.yaml", "metrics.csv"):
        shutil.copy(checkpoint.parent / name, folder / name)
    checkpoint, xml = folder / "best.pth", folder / "best.xml"
    result = invoke("export", checkpoint, "--format", "openvino", "-o", xml)
    assert result.exit_code == 0, result.output
    evaluated = invoke("eval", xml, "--split", "val", *FP32_ON_CPU, "--runtime", "openvino", "--report",
                       folder / "openvino-report")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    accuracy = json.loads((folder / "openvino-report" / "report.json").read_text())["splits"][0]["metrics"]["acc50"]
    result = invoke("compare", checkpoint, xml, exported["onnx"], "--csv")
    assert result.exit_code == 0, result.output
    rows = {line.split(",")[0]: line.split(",") for line in result.stdout.splitlines()[1:]}
    header = result.stdout.splitlines()[0].split(",")
    val = header.index("val Acc@0.5")
    assert rows[f"{folder.name}/best.xml"][val] == f"{accuracy:.2f}"
    assert rows[str(exported["onnx"])][val] == "—"  # no report of it: no accuracy borrowed from the checkpoint
    assert rows[f"{folder.name}/best.xml"][header.index("parameters")] == rows[folder.name][header.index("parameters")]
