"""`simrec serve --compile` as a user runs it: the forward compiled for its batch-size buckets before the server
says it is ready, then answering as `simrec predict` does (a real inductor compile: slow)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.test_serve import EXPRESSIONS, FP32_ON_CPU, reference_answers
from tests.serving import running_server

COMPILE_START_TIMEOUT_S = 600


@pytest.mark.slow
def test_compiled_server_answers_as_predict_does(trained_run: Path, synthetic_root: Path, tmp_path: Path) -> None:
    checkpoint = trained_run / "best.pth"
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    expected = reference_answers(checkpoint, [image], tmp_path)
    options = (*FP32_ON_CPU, "--compile", "--max-batch", "4")
    with running_server(checkpoint, *options, start_timeout_s=COMPILE_START_TIMEOUT_S) as server:
        log = server.log
        assert "compiling the forward for batch sizes 1, 4" in log
        assert log.index("compiled in") < log.index("open http"), log  # ready only once compiled
        assert "(compiled forward for batch sizes 1, 4)" in log
        assert "No CUDA runtime" not in log  # torch's C++ build helper warns so on a CPU-only machine
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/info").json()["compiled_batch_sizes"] == [1, 4]
            records = []
            for expressions in (EXPRESSIONS[:1], EXPRESSIONS[:3], EXPRESSIONS):  # 1 row, 3 padded to 4, 4
                files = {"image": ("demo.jpg", image.read_bytes(), "image/jpeg")}
                response = client.post("/predict", files=files, data={"expression": expressions})
                assert response.status_code == 200, response.text
                records += response.json()["results"]
        assert server.stop() == 0, server.log
    for record in records:
        reference = expected[("demo.jpg", record["expression"])]
        np.testing.assert_allclose(record["box"], reference["box"], atol=0.5)
        assert abs(record["score"] - reference["score"]) <= 1e-3
