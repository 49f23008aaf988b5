"""Dynamic batching with a real (random-weight) model: shared passes, splitting, sharing images, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from simrec_cli.data.letterbox import letterbox_image
from simrec_cli.predict.predictor import Predictor
from simrec_cli.serve.batcher import Batcher, Job
from simrec_cli.serve.metrics import ServerMetrics
from simrec_cli.serve.model import PredictorModel

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> PredictorModel:
    return PredictorModel(Predictor.load(tiny_checkpoint, device="cpu", precision="fp32", runtime="torch"))


def job(model: PredictorModel, seed: int, expressions: Sequence[str], key: str | None = None) -> Job:
    pixels = np.random.default_rng(seed).integers(0, 255, (48 + seed, 80, 3), dtype=np.uint8)
    canvas, _ = letterbox_image(pixels, model.input_shape)
    tokens = np.stack([model.encode(text).tokens for text in expressions])
    return Job(key or f"image-{seed}", canvas, tokens)


def alone(model: PredictorModel, item: Job) -> np.ndarray:
    """The boxes of one job answered by itself, one forward pass."""
    return model.forward([item.canvas], [0] * item.rows, item.tokens)["boxes"]


def test_jobs_waiting_together_share_one_forward_pass(model: PredictorModel) -> None:
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch=16, max_wait_s=0.05, metrics=metrics)
    jobs = [job(model, seed, ["the big red circle", "the small blue square"]) for seed in range(5)]
    futures = [batcher.submit(item) for item in jobs]  # all queued before the thread starts
    batcher.start()
    answers = [future.result(TIMEOUT_S) for future in futures]
    batcher.stop()
    assert metrics.batch_expressions.count == 1 and metrics.batch_expressions.total == 10
    assert metrics.batch_images.total == 5
    for item, answer in zip(jobs, answers, strict=True):
        np.testing.assert_allclose(answer.boxes, alone(model, item), atol=1e-3)
        assert answer.masks is None
    assert metrics.queue_length.value == 0


def test_a_job_larger_than_a_batch_continues_in_the_next_pass(model: PredictorModel) -> None:
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch=3, max_wait_s=0.0, metrics=metrics)
    big = job(model, 1, ["the red circle", "the blue square", "the left circle", "the green square", "the right"])
    future = batcher.submit(big)
    batcher.start()
    answer = future.result(TIMEOUT_S)
    batcher.stop()
    assert metrics.batch_expressions.count == 2 and metrics.batch_expressions.total == 5
    np.testing.assert_allclose(answer.boxes, alone(model, big), atol=1e-3)


def test_identical_images_are_encoded_once(model: PredictorModel) -> None:
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch=16, max_wait_s=0.05, metrics=metrics)
    first, second = job(model, 2, ["the red circle"], key="same"), job(model, 2, ["the blue square"], key="same")
    futures = [batcher.submit(first), batcher.submit(second)]
    batcher.start()
    answers = [future.result(TIMEOUT_S) for future in futures]
    batcher.stop()
    assert metrics.batch_images.total == 1 and metrics.batch_expressions.total == 2
    np.testing.assert_allclose(answers[1].boxes, alone(model, second), atol=1e-3)


def test_an_abandoned_job_is_skipped(model: PredictorModel) -> None:
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch=16, max_wait_s=0.05, metrics=metrics)
    gone, kept = job(model, 3, ["the red circle", "the blue square"]), job(model, 4, ["the small square"])
    gone_future, kept_future = batcher.submit(gone), batcher.submit(kept)
    assert gone_future.cancel()
    batcher.start()
    kept_future.result(TIMEOUT_S)
    batcher.stop()
    assert metrics.batch_expressions.total == 1
    assert metrics.queue_length.value == 0


class FailsFirstPass:
    """The model, except that its first forward pass raises (as an out-of-memory error would)."""

    def __init__(self, model: PredictorModel) -> None:
        self.model = model
        self.passes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def forward(self, *args: object) -> dict[str, np.ndarray]:
        self.passes += 1
        if self.passes == 1:
            raise RuntimeError("out of memory")
        return self.model.forward(*args)


def test_a_failing_pass_fails_its_jobs_and_the_thread_goes_on(model: PredictorModel) -> None:
    batcher = Batcher(FailsFirstPass(model), max_batch=16, max_wait_s=0.0, metrics=ServerMetrics())
    batcher.start()
    failed = batcher.submit(job(model, 5, ["the red circle"]))
    with pytest.raises(RuntimeError, match="out of memory"):
        failed.result(TIMEOUT_S)
    later = job(model, 6, ["the blue square"])
    np.testing.assert_allclose(batcher.submit(later).result(TIMEOUT_S).boxes, alone(model, later), atol=1e-3)
    assert batcher.alive
    batcher.stop()
    assert not batcher.alive


def test_stop_answers_what_is_queued_first(model: PredictorModel) -> None:
    batcher = Batcher(model, max_batch=2, max_wait_s=10.0, metrics=ServerMetrics())
    futures = [batcher.submit(job(model, seed, ["the red circle"])) for seed in range(3)]
    batcher.start()
    batcher.stop(TIMEOUT_S)
    assert all(future.done() and future.exception() is None for future in futures)
    with pytest.raises(RuntimeError, match="stopping"):
        batcher.submit(job(model, 9, ["the red circle"]))
