"""The HTTP API in process (starlette's TestClient): answers equal `simrec predict`'s, every bad input gets its
4xx with a JSON body naming the problem, masks, limits, metrics, info and docs.

Answers are compared in fp32 on both sides: in bf16 a result moves slightly with the batch it was computed in."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from simrec_cli.data.masks import decode_rle
from simrec_cli.predict.predictor import JSON_FIELDS, Predictor, predict_requests
from simrec_cli.predict.sources import ImageRequest
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import load_model
from simrec_cli.serve.options import ServeOptions

EXPRESSIONS = ["the big red circle", "the small blue square", "the zebra on the left"]


@contextmanager
def client(checkpoint: Path, **options: Any) -> Iterator[TestClient]:
    settings = ServeOptions(model_path=checkpoint, device="cpu", precision="fp32", **options)
    with TestClient(create_app(load_model(settings), settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def api(tiny_checkpoint: Path) -> Iterator[TestClient]:
    with client(tiny_checkpoint, max_expressions=4, max_pixels=1_000_000, max_body_mb=0.5) as test_client:
        yield test_client


def png_bytes(pixels: np.ndarray, **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def photo(tmp_path: Path, width: int = 120, height: int = 90) -> Path:
    pixels = np.random.default_rng(width + height).integers(0, 255, (height, width, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(pixels))
    return path


def predict_reference(checkpoint: Path, image: Path, expressions: list[str]) -> list[dict]:
    predictor = Predictor.load(checkpoint, device="cpu", precision="fp32")
    return [result.to_json() for result in predict_requests(predictor, [ImageRequest(image, tuple(expressions))])]


def assert_same_answers(served: list[dict], reference: list[dict]) -> None:
    assert len(served) == len(reference)
    for mine, theirs in zip(served, reference, strict=True):
        assert mine["expression"] == theirs["expression"]
        np.testing.assert_allclose(mine["box"], theirs["box"], atol=0.5)
        assert abs(mine["score"] - theirs["score"]) <= 1e-3
        assert (mine["oov_words"], mine["width"], mine["height"]) == (
            theirs["oov_words"],
            theirs["width"],
            theirs["height"],
        )


def test_multipart_and_json_answers_equal_predicts(api: TestClient, tiny_checkpoint: Path, tmp_path: Path) -> None:
    image = photo(tmp_path)
    reference = predict_reference(tiny_checkpoint, image, EXPRESSIONS)
    files = {"image": ("photo.png", image.read_bytes(), "image/png")}
    response = api.post("/predict", files=files, data={"expression": EXPRESSIONS})
    assert response.status_code == 200, response.text
    records = response.json()["results"]
    assert [list(record) for record in records] == [list(JSON_FIELDS)] * 3
    assert {record["image"] for record in records} == {"photo.png"}
    assert records[2]["oov_words"] == ["zebra", "on"]
    assert all(record["mask"] is None and record["picture"] is None and record["error"] is None for record in records)
    assert_same_answers(records, reference)
    encoded = base64.b64encode(image.read_bytes()).decode()
    for image_field in (encoded, f"data:image/png;base64,{encoded}"):
        response = api.post("/predict", json={"image": image_field, "expressions": EXPRESSIONS})
        assert response.status_code == 200, response.text
        assert {record["image"] for record in response.json()["results"]} == {"upload"}
        assert_same_answers(response.json()["results"], reference)
    single = api.post("/predict", json={"image": encoded, "expression": EXPRESSIONS[0]})
    assert_same_answers(single.json()["results"], reference[:1])


def sixteen_bit_png() -> bytes:
    return png_bytes(np.full((40, 40), 40_000, np.uint16))


def float_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40), 0.5, np.float32)).save(buffer, format="TIFF")
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()[:200]


GOOD = png_bytes(np.full((40, 50, 3), 128, np.uint8))
BAD_REQUESTS = {
    "not an image": ({"files": {"image": ("notes.txt", b"hello, not pixels")}, "data": {"expression": "the dog"}},
                     415, "not_an_image", "image"),
    "empty expression": ({"files": {"image": ("a.png", GOOD)}, "data": {"expression": ["the dog", "  "]}},
                         422, "empty_expression", "expression"),
    "1x1 image": ({"files": {"image": ("dot.png", png_bytes(np.zeros((1, 1, 3), np.uint8)))},
                   "data": {"expression": "the dog"}}, 422, "image_too_small", "image"),
    "16-bit PNG": ({"files": {"image": ("deep.png", sixteen_bit_png())}, "data": {"expression": "the dog"}},
                   415, "unsupported_bit_depth", "image"),
    "wrong field": ({"files": {"image": ("a.png", GOOD)}, "data": {"expresion": "the dog"}},
                    422, "unknown_field", "expresion"),
    "no expression": ({"files": {"image": ("a.png", GOOD)}}, 422, "missing_expression", "expression"),
    "no image": ({"data": {"expression": "the dog"}}, 422, "missing_image", "image"),
    "no words": ({"files": {"image": ("a.png", GOOD)}, "data": {"expression": "?!"}},
                 422, "expression_without_words", "expression"),
    "text as image": ({"data": {"image": "a.png", "expression": "x"}}, 422, "wrong_type", "image"),
    "corrupt image": ({"files": {"image": ("cut.jpg", truncated_jpeg())}, "data": {"expression": "the dog"}},
                      422, "corrupt_image", "image"),
    "bad mask format": ({"files": {"image": ("a.png", GOOD)}, "data": {"expression": "x", "masks": "gif"}},
                        422, "bad_value", "masks"),
    "too many expressions": ({"files": {"image": ("a.png", GOOD)}, "data": {"expression": list("abcde")}},
                             422, "too_many_expressions", "expression"),
    "too many pixels": ({"files": {"image": ("big.png", png_bytes(np.zeros((1001, 1000, 3), np.uint8)))},
                         "data": {"expression": "x"}}, 422, "too_many_pixels", "image"),
    "body too large": ({"files": {"image": ("huge.bin", bytes(600_000))}, "data": {"expression": "x"}},
                       413, "body_too_large", None),
    "invalid JSON": ({"content": b"{not json", "headers": {"content-type": "application/json"}},
                     400, "invalid_json", None),
    "JSON list": ({"json": ["the dog"]}, 400, "invalid_json", None),
    "JSON nested too deeply": ({"content": b"[" * 20_000 + b"]" * 20_000, "headers": {"content-type":
                               "application/json"}}, 400, "invalid_json", None),
    "bad base64": ({"json": {"image": "***", "expression": "x"}}, 400, "bad_base64", "image"),
    "unknown JSON field": ({"json": {"image": "", "expression": "x", "colour": 1}}, 422, "unknown_field", "colour"),
    "both expression keys": ({"json": {"image": "", "expression": "x", "expressions": ["y"]}},
                             422, "conflicting_fields", "expressions"),
    "expression not text": ({"json": {"image": "", "expressions": [3]}}, 422, "wrong_type", "expression"),
    "plain text body": ({"content": b"the dog", "headers": {"content-type": "text/plain"}},
                        415, "unsupported_media_type", None),
    "path without --allow-paths": ({"json": {"image_path": "/etc/hostname", "expression": "x"}},
                                   403, "paths_not_allowed", "image_path"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_input_gets_its_4xx_naming_the_problem(api: TestClient, case: str) -> None:
    request, status, code, field = BAD_REQUESTS[case]
    response = api.post("/predict", **request)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["field"] == field
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("name", "data", "depth"),
    [("deep.png", sixteen_bit_png(), "16-bit integer samples"), ("float.tif", float_tiff(), "32-bit floating-point")],
)
def test_deep_images_are_refused_naming_their_depth(api: TestClient, name: str, data: bytes, depth: str) -> None:
    """Issue 22 #23: a 32-bit float TIFF was refused as having "16 bits per channel"."""
    response = api.post("/predict", files={"image": (name, data)}, data={"expression": "the dog"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_bit_depth"
    assert f"{name} has {depth}" in response.json()["detail"]


def test_a_streamed_body_is_cut_at_the_limit(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must be counted as the body arrives
        for _ in range(8):
            yield bytes(100_000)

    response = api.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    assert 'simrec_request_errors_total{error="body_too_large"}' in api.get("/metrics").text


def test_server_answers_after_every_bad_input(api: TestClient) -> None:
    for request, *_ in BAD_REQUESTS.values():
        api.post("/predict", **request)
    assert api.get("/health").json() == {"status": "ok"}
    response = api.post("/predict", files={"image": ("a.png", GOOD)}, data={"expression": "the red circle"})
    assert response.status_code == 200 and response.json()["results"][0]["box"] is not None


def test_paths_on_the_server_only_when_allowed(tiny_checkpoint: Path, tmp_path: Path) -> None:
    image = photo(tmp_path)
    with client(tiny_checkpoint, allow_paths=True) as allowed:
        response = allowed.post("/predict", json={"image_path": str(image), "expression": "the red circle"})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["image"] == str(image)
        assert_same_answers(response.json()["results"], predict_reference(tiny_checkpoint, image, ["the red circle"]))
        missing = allowed.post("/predict", json={"image_path": str(tmp_path / "gone.jpg"), "expression": "x"})
        assert (missing.status_code, missing.json()["error"]) == (422, "image_not_found")


def test_masks_as_rle_and_png_equal_predicts_mask_files(mask_checkpoint: Path, tmp_path: Path) -> None:
    image = photo(tmp_path, 100, 70)
    predictor = Predictor.load(mask_checkpoint, device="cpu", precision="fp32")
    request = ImageRequest(image, ("the big red circle",))
    (expected,) = list(predict_requests(predictor, [request], tmp_path / "out"))
    with Image.open(expected.mask) as saved:
        expected_mask = np.asarray(saved) > 127
    upload = {"image": ("photo.png", image.read_bytes(), "image/png")}
    with client(mask_checkpoint) as api:
        assert api.get("/info").json()["mask_formats"] == ["none", "rle", "png"]
        plain = api.post("/predict", files=upload, data={"expression": "the big red circle"}).json()["results"][0]
        assert plain["mask"] is None and plain["mask_area"] == expected.mask_area
        rle = api.post("/predict", files=upload, data={"expression": "the big red circle", "masks": "rle"})
        record = rle.json()["results"][0]
        assert record["mask"]["size"] == [70, 100]
        np.testing.assert_array_equal(decode_rle(record["mask"]), expected_mask)
        png = api.post("/predict", files=upload, data={"expression": "the big red circle", "masks": "png"})
        with Image.open(io.BytesIO(base64.b64decode(png.json()["results"][0]["mask"]))) as decoded:
            np.testing.assert_array_equal(np.asarray(decoded) > 127, expected_mask)
        assert record["mask_area"] == int(expected_mask.sum())


def test_a_request_past_its_timeout_gets_504_and_is_dropped(tiny_checkpoint: Path) -> None:
    with client(tiny_checkpoint, timeout_s=0.3, max_wait_ms=3000) as api:
        response = api.post("/predict", files={"image": ("a.png", GOOD)}, data={"expression": "the red circle"})
        assert response.status_code == 504 and response.json()["error"] == "timeout"
        metrics = api.get("/metrics").text
        assert "simrec_requests_in_progress 0" in metrics
        assert 'simrec_request_errors_total{error="timeout"} 1' in metrics


def test_health_info_metrics_docs_and_unknown_paths(api: TestClient) -> None:
    api.post("/predict", files={"image": ("a.png", GOOD)}, data={"expression": ["the red circle", "the square"]})
    assert api.get("/health").json() == {"status": "ok"}
    info = api.get("/info").json()
    assert info["model"] == "simrec" and info["dataset"] == "synthetic" and info["input_size"] == [64, 64]
    assert info["vocabulary_size"] == 13 and info["device"] == "cpu" and info["version"]
    assert info["max_expressions"] == 4 and info["mask_formats"] == ["none"]
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'simrec_requests_total{path="/predict",status="200"}' in metrics.text
    assert "simrec_batch_expressions_count" in metrics.text and "simrec_forward_seconds_bucket" in metrics.text
    schema = api.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert {"/health", "/info", "/metrics"} <= set(schema["paths"])
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text and "cdn" not in docs.text.lower()
    page = api.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert api.get("/static/app.js").status_code == 200 and api.get("/static/style.css").status_code == 200
    assert api.get("/static/secret.py").status_code == 404
    missing = api.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    demo = api.get("/demo.jpg")
    assert demo.headers["content-type"] == "image/jpeg" and demo.content[:2] == b"\xff\xd8"
