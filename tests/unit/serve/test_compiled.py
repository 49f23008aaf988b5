"""`simrec serve --compile`: the batch-size buckets, and their wiring with the eager module standing in for the
compiled one (a real compile is the slow end-to-end test): compiled on the batcher's thread before the app is
ready, passes planned over the buckets with the answers of `simrec predict`, a failed compile one clear error."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from simrec_cli.errors import SimrecError
from simrec_cli.models import inference
from simrec_cli.models.inference import plan_passes
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import load_model
from simrec_cli.serve.options import ServeOptions
from tests.unit.serve.test_app import EXPRESSIONS, assert_same_answers, photo, predict_reference


@pytest.mark.parametrize(
    ("max_batch", "sizes"), [(1, (1,)), (4, (1, 4)), (10, (1, 4, 10)), (16, (1, 4, 16)), (64, (1, 4, 16, 64))]
)
def test_buckets_grow_by_four_up_to_max_batch(tiny_checkpoint: Path, max_batch: int, sizes: tuple[int, ...]) -> None:
    options = ServeOptions(model_path=tiny_checkpoint, max_batch=max_batch, compile=True)
    assert options.compile_batch_sizes == sizes
    assert ServeOptions(model_path=tiny_checkpoint, max_batch=max_batch).compile_batch_sizes == ()


@pytest.mark.parametrize(("name", "runtime"), [("model.onnx", "auto"), ("model.xml", "auto"), ("best.pth", "openvino")])
def test_only_pytorch_is_compiled(tmp_path: Path, name: str, runtime: str) -> None:
    model = tmp_path / name
    model.write_bytes(b"model")
    with pytest.raises(SimrecError, match="--compile applies to a checkpoint in PyTorch"):
        ServeOptions(model_path=model, compile=True, runtime=runtime)


class StandIn:
    """`compile_module` replaced by the eager module, recording the rows and thread of every compiled call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def __call__(self, module: torch.nn.Module, device: torch.device, shapes: int):
        def forward(images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
            self.calls.append((len(tokens), threading.current_thread().name))
            return module(images, tokens)

        return forward


def test_buckets_are_compiled_on_the_batchers_thread_before_the_first_request(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = StandIn()
    monkeypatch.setattr(inference, "compile_module", stand_in)
    options = ServeOptions(model_path=tiny_checkpoint, device="cpu", precision="fp32", compile=True)
    model = load_model(options)
    assert stand_in.calls == []  # loading compiles nothing: the batcher's thread does, at start-up
    image = photo(tmp_path)
    with TestClient(create_app(model, options)) as api:
        # each bucket is warmed up once and timed twice, on the batcher's thread
        assert stand_in.calls == [(size, "simrec-batcher") for size in (1, 4, 16) for _ in range(3)]
        info = api.get("/info").json()
        assert info["compiled_batch_sizes"] == [1, 4, 16]
        files = {"image": ("photo.png", image.read_bytes(), "image/png")}
        response = api.post("/predict", files=files, data={"expression": EXPRESSIONS})
    assert response.status_code == 200, response.text
    # the three expressions in the passes the planner picks from the timings measured at start-up (on a tiny model
    # they are noise, so any size may win; the planner itself is tested on fixed timings)
    measured = model.predictor.runtime.inference.pass_seconds
    assert sorted(measured) == [1, 4, 16]
    assert stand_in.calls[9:] == [(size, "simrec-batcher") for size in plan_passes(3, measured)]
    assert_same_answers(response.json()["results"], predict_reference(tiny_checkpoint, image, EXPRESSIONS))


def test_a_failed_compile_is_one_error_and_no_server(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(module: torch.nn.Module, device: torch.device, shapes: int):
        raise RuntimeError("no C++ compiler found\nlong details")

    monkeypatch.setattr(inference, "compile_module", broken)
    options = ServeOptions(model_path=tiny_checkpoint, device="cpu", compile=True)
    app = create_app(load_model(options), options)
    with pytest.raises(SimrecError) as error:
        app.state.service.start()
    assert error.value.message == "compiling the model failed: RuntimeError: no C++ compiler found"
    assert "without --compile" in (error.value.hint or "")
    assert not app.state.service.batcher.alive
