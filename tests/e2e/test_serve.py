"""`simrec serve` as a user runs it: a real HTTP server on 127.0.0.1 under concurrent load with bad requests mixed
in, a full queue, SIGTERM while requests are in flight, and an exported ONNX file served instead of a checkpoint."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from simrec_cli.predict.predictor import Predictor
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import PredictorModel
from simrec_cli.serve.options import ServeOptions
from tests.e2e.conftest import invoke
from tests.network import free_port
from tests.serving import running_server

CLIENTS = 16
REQUESTS = 400
BAD_EVERY = 10  # every tenth request is bad: 10 %
LOAD_TIME_LIMIT_S = 300
FP32_ON_CPU = ("--device", "cpu", "--precision", "fp32")  # in bf16 an answer moves slightly with its batch
EXPRESSIONS = ["the big red circle", "the small blue square", "the leftmost shape", "the green triangle"]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# (multipart files, form fields, expected status, expected error code) for each kind of bad request
BAD_KINDS = [
    ({"image": ("notes.txt", b"not an image at all")}, {"expression": "the dog"}, 415, "not_an_image"),
    ({"image": ("a.png", png(np.full((20, 30, 3), 90, np.uint8)))}, {"expression": " "}, 422, "empty_expression"),
    ({"image": ("dot.png", png(np.zeros((1, 1, 3), np.uint8)))}, {"expression": "the dog"}, 422, "image_too_small"),
    ({"image": ("deep.png", png(np.full((20, 20), 50_000, np.uint16)))}, {"expression": "the dog"}, 415,
     "unsupported_bit_depth"),
    ({"image": ("a.png", png(np.full((20, 30, 3), 90, np.uint8)))}, {"phrase": "the dog"}, 422, "unknown_field"),
]  # fmt: skip


def reference_answers(checkpoint: Path, images: list[Path], tmp_path: Path) -> dict[tuple[str, str], dict]:
    """`simrec predict --json` on every (image, expression) pair the load test sends."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"image": str(i), "expressions": EXPRESSIONS}) for i in images))
    result = invoke("-q", "predict", "--pairs", pairs, "-c", checkpoint, "--json", "--no-save", *FP32_ON_CPU)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {(Path(record["image"]).name, record["expression"]): record for record in records}


def plan(index: int, images: list[Path]) -> tuple[dict, dict, tuple[int, str] | None]:
    """Request `index`: its files and fields, and the refusal it must get (None for a good request)."""
    if index % BAD_EVERY == BAD_EVERY - 1:
        files, data, status, code = BAD_KINDS[(index // BAD_EVERY) % len(BAD_KINDS)]
        return files, data, (status, code)
    image = images[index % len(images)]
    count = 1 + index % 3
    expressions = [EXPRESSIONS[(index + k) % len(EXPRESSIONS)] for k in range(count)]
    files = {"image": (f"r{index}-{image.name}", image.read_bytes(), "image/jpeg")}
    return files, {"expression": expressions}, None


def test_sixteen_clients_with_bad_requests_mixed_in(trained_run: Path, synthetic_root: Path, tmp_path: Path) -> None:
    checkpoint = trained_run / "best.pth"
    images = sorted((synthetic_root / "images" / "synthetic").glob("*.jpg"))[:8]
    expected = reference_answers(checkpoint, images, tmp_path)
    local = threading.local()

    def send(index: int) -> tuple[int, int, dict, dict]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=server.url, timeout=60)
        files, data, _ = plan(index, images)
        response = local.client.post("/predict", files=files, data=data)
        return index, response.status_code, response.json(), data

    with running_server(checkpoint, *FP32_ON_CPU, "--max-wait-ms", "5") as server:
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, range(REQUESTS)))
        elapsed = time.monotonic() - started
        health = httpx.get(f"{server.url}health", timeout=10)
        metrics = httpx.get(f"{server.url}metrics", timeout=10).text
        assert server.stop() == 0, server.log

    assert elapsed < LOAD_TIME_LIMIT_S
    assert sorted(index for index, *_ in answers) == list(range(REQUESTS))  # nothing lost or duplicated
    good = 0
    for index, status, body, data in answers:
        refusal = plan(index, images)[2]
        if refusal is not None:
            assert (status, body["error"]) == refusal, body
            continue
        good += 1
        assert status == 200, body
        records = body["results"]
        assert [record["expression"] for record in records] == data["expression"]
        for record in records:
            assert record["image"].startswith(f"r{index}-")  # this request's own answers, not another's
            reference = expected[(record["image"].split("-", 1)[1], record["expression"])]
            np.testing.assert_allclose(record["box"], reference["box"], atol=0.5)
            assert abs(record["score"] - reference["score"]) <= 1e-3
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert f'simrec_requests_total{{path="/predict",status="200"}} {good}' in metrics
    forward_passes = _sample(metrics, "simrec_batch_expressions_count")
    answered_expressions = _sample(metrics, "simrec_batch_expressions_sum")
    assert answered_expressions == _sample(metrics, "simrec_expressions_total")
    assert forward_passes < good  # concurrent requests shared forward passes


def _sample(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


def test_full_queue_gets_503_and_sigterm_answers_what_is_in_flight(trained_run: Path, synthetic_root: Path) -> None:
    image = (synthetic_root / "images" / "synthetic" / "demo.jpg").read_bytes()
    options = ("--device", "cpu", "--queue-size", "3", "--max-wait-ms", "2500", "--max-batch", "64")
    with running_server(trained_run / "best.pth", *options) as server:
        results: list[httpx.Response] = []

        def ask() -> None:
            files = {"image": ("demo.jpg", image, "image/jpeg")}
            results.append(httpx.post(f"{server.url}predict", files=files, data={"expression": "the red circle"},
                                      timeout=60))  # fmt: skip

        waiting = [threading.Thread(target=ask) for _ in range(3)]
        for thread in waiting:
            thread.start()
        _wait_for(lambda: "simrec_requests_in_progress 3" in httpx.get(f"{server.url}metrics").text)
        refused = httpx.post(f"{server.url}predict", files={"image": ("demo.jpg", image)}, data={"expression": "x"})
        assert refused.status_code == 503 and refused.json()["error"] == "queue_full"
        assert int(refused.headers["retry-after"]) >= 1
        status = server.stop()  # SIGTERM while three requests wait for their shared forward pass
        for thread in waiting:
            thread.join(60)
    assert status == 0, server.log
    assert [response.status_code for response in results] == [200, 200, 200]
    assert all(response.json()["results"][0]["box"] is not None for response in results)
    assert "every request in flight was answered" in server.log


def _wait_for(condition: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.05)


def test_an_exported_onnx_file_is_served_with_the_same_answers(trained_run: Path, synthetic_root: Path) -> None:
    pytest.importorskip("onnxruntime")
    checkpoint = trained_run / "best.pth"
    onnx_path = checkpoint.with_name("served.onnx")
    result = invoke("export", checkpoint, "--format", "onnx", "--dynamic-batch", "-o", onnx_path)
    assert result.exit_code == 0, result.output
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    expected = reference_answers(checkpoint, [image], synthetic_root)
    options = ServeOptions(model_path=onnx_path, device="cpu")
    model = PredictorModel(Predictor.load(onnx_path, device="cpu", runtime="onnxruntime"))
    with TestClient(create_app(model, options)) as api:
        info = api.get("/info").json()
        assert info["runtime"].startswith("onnxruntime") and info["input_size"] == [64, 64]
        files = {"image": ("demo.jpg", image.read_bytes(), "image/jpeg")}
        response = api.post("/predict", files=files, data={"expression": EXPRESSIONS})
    assert response.status_code == 200, response.text
    for record in response.json()["results"]:
        reference = expected[("demo.jpg", record["expression"])]
        np.testing.assert_allclose(record["box"], reference["box"], atol=0.5)
        assert abs(record["score"] - reference["score"]) <= 1e-3


def test_a_float16_onnx_file_is_served_quietly_and_refuses_what_is_not_text(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    """The ONNX server says which runtime answers (not an eager forward), keeps onnxruntime's notes about float16
    nodes out of its output, and refuses a lone surrogate as the PyTorch server does."""
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "half.onnx"
    result = invoke("export", trained_run / "best.pth", "--format", "onnx", "--half", "-o", onnx_path)
    assert result.exit_code == 0, result.output
    image = (synthetic_root / "images" / "synthetic" / "demo.jpg").read_bytes()
    with running_server(onnx_path, "--device", "cpu", "--runtime", "onnxruntime") as server:
        surrogate = httpx.post(f"{server.url}predict", content=b'{"image": "", "expression": "the \\ud800 dog"}',
                               headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
        answered = httpx.post(f"{server.url}predict", files={"image": ("demo.jpg", image)},
                              data={"expression": EXPRESSIONS[0]}, timeout=30)  # fmt: skip
        assert server.stop() == 0, server.log
    assert (surrogate.status_code, surrogate.json()["error"]) == (400, "invalid_text")
    assert answered.status_code == 200 and answered.json()["results"][0]["box"] is not None
    assert "(onnxruntime (CPUExecutionProvider))" in server.log and "eager forward" not in server.log
    assert "onnxruntime:" not in server.log and "Traceback" not in server.log, server.log


@pytest.mark.slow
def test_worker_processes_share_one_port(trained_run: Path, synthetic_root: Path) -> None:
    checkpoint = trained_run / "best.pth"
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    expected = reference_answers(checkpoint, [image], synthetic_root)
    with running_server(checkpoint, *FP32_ON_CPU, "--workers", "2", port=free_port()) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for expression in EXPRESSIONS:
                files = {"image": ("demo.jpg", image.read_bytes(), "image/jpeg")}
                response = client.post("/predict", files=files, data={"expression": expression})
                assert response.status_code == 200, response.text
                record = response.json()["results"][0]
                np.testing.assert_allclose(record["box"], expected[("demo.jpg", expression)]["box"], atol=0.5)
        assert server.stop() == 0, server.log
    assert "every request in flight was answered" in server.log


def test_usage_errors_are_one_line_before_anything_loads(tmp_path: Path) -> None:
    missing = invoke("serve", tmp_path / "gone.pth")
    assert missing.exit_code == 2 and "gone.pth does not exist" in missing.output
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"")
    assert "--max-batch 0 must be positive" in invoke("serve", checkpoint, "--max-batch", "0").output
    assert "--workers needs a fixed --port" in invoke("serve", checkpoint, "--workers", "2", "--port", "0").output
    assert "--max-connections 0 must be positive" in invoke("serve", checkpoint, "--max-connections", "0").output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = invoke("serve", checkpoint, "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.output and "Traceback" not in result.output
    assert "pick another --port" in result.output
    elsewhere = invoke("serve", checkpoint, "--host", "203.0.113.7", "--port", "0")  # no machine has this address
    assert elsewhere.exit_code == 2 and "check --host" in elsewhere.output and "--port" not in elsewhere.output
    assert "other machines can reach" not in elsewhere.output  # the host is checked before anyone is warned


def test_the_cli_starts_without_importing_the_server_stack() -> None:
    code = "import sys, simrec_cli.cli; print(sorted({'fastapi', 'uvicorn', 'torch'} & set(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
