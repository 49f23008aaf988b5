"""The predictor's bookkeeping, checked with a model whose answer is known: the box it returns is a function
of the first token id, so every row can be traced from request to result through batching, un-letterboxing,
failures, masks and the output folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint_paths import newest_checkpoint
from simrec_cli.errors import SimrecError
from simrec_cli.predict.predictor import JSON_FIELDS, Predictor, predict_requests
from simrec_cli.predict.sources import ImageRequest
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import load_settings

WORDS = ["PAD", "UNK", "CLS", "zero", "red", "circle", "blue", "square", "green", "left"]
INPUT = 64


class FirstTokenModel(nn.Module):
    """Returns box (t, t, t + 20, t + 10) and score t / 100 in letterbox pixels, t = first token id, and a
    20 x 10 mask at (t, t + 16), inside the image part of a 2:1 image's letterbox. Records what it saw."""

    def __init__(self, has_mask_head: bool = False) -> None:
        super().__init__()
        self.has_mask_head = has_mask_head
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls.append((images.clone(), tokens.clone(), image_index.clone()))
        first = tokens[:, 0].float()
        boxes = torch.stack([first, first, first + 20, first + 10, first / 100], dim=1)
        outputs = {"boxes": boxes}
        if self.has_mask_head:
            masks = torch.zeros(len(tokens), INPUT, INPUT)
            for row, value in enumerate(first.long().tolist()):
                masks[row, value + 16 : value + 26, value : value + 20] = 0.9
            outputs["masks"] = masks
        return outputs


def _predictor(model: nn.Module, *overrides: str) -> Predictor:
    settings = load_settings("synthetic-tiny", [f"dataset.input_shape=[{INPUT},{INPUT}]", *overrides])
    return Predictor(model, settings, Vocabulary.from_list(WORDS), torch.device("cpu"))


def _image(path: Path, width: int = 128, height: int = 64, value: int = 90) -> Path:
    Image.new("RGB", (width, height), (value, value, value)).save(path)
    return path


def _expected_box(first_token: int) -> list[float]:
    """128 x 64 image in a 64 x 64 letterbox: scale 1/2, 16 px of padding above and below."""
    t = float(first_token)
    return [2 * t, max(0.0, 2 * (t - 16)), 2 * (t + 20), max(0.0, 2 * (t + 10 - 16))]


def test_expressions_of_one_image_share_one_forward_pass(tmp_path: Path) -> None:
    model = FirstTokenModel()
    request = ImageRequest(_image(tmp_path / "a.png"), ("red circle", "blue square", "the zebra"))
    reporter = NullReporter()
    results = list(predict_requests(_predictor(model), [request], None, reporter=reporter))
    assert len(model.calls) == 1 and model.calls[0][1].shape == (3, 15)
    assert model.calls[0][0].shape[0] == 1 and model.calls[0][2].tolist() == [0, 0, 0]  # the image is encoded once
    assert [r.box for r in results] == [tuple(_expected_box(t)) for t in (4, 6, 1)]
    assert [r.score for r in results] == pytest.approx([0.04, 0.06, 0.01])
    assert results[2].oov_words == ("the", "zebra") and results[0].oov_words == ()
    assert any("the, zebra" in warning for warning in reporter.warnings)
    assert all(r.ok and (r.width, r.height) == (128, 64) and r.picture is None for r in results)


def test_batches_split_rows_and_keep_request_order(tmp_path: Path) -> None:
    model = FirstTokenModel()
    requests = [
        ImageRequest(_image(tmp_path / "a.png"), ("red", "blue", "green")),
        ImageRequest(_image(tmp_path / "b.png", 64, 64), ("circle",)),
        ImageRequest(_image(tmp_path / "c.png"), ("left", "square")),
    ]
    results = list(predict_requests(_predictor(model), requests, None, batch_size=2))
    assert [len(tokens) for _, tokens, _ in model.calls] == [2, 2, 2]
    assert [index.tolist() for *_, index in model.calls] == [[0, 0], [0, 1], [0, 0]]
    assert [(r.image.name, r.expression) for r in results] == [
        ("a.png", "red"), ("a.png", "blue"), ("a.png", "green"), ("b.png", "circle"),
        ("c.png", "left"), ("c.png", "square"),
    ]  # fmt: skip
    assert results[3].box == (5.0, 5.0, 25.0, 15.0)  # a square image fills the letterbox: no change
    assert results[5].box == tuple(_expected_box(7))


def test_unreadable_images_are_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    requests = [
        ImageRequest(_image(tmp_path / "a.png"), ("red",)),
        ImageRequest(broken, ("blue", "green")),
        ImageRequest(tmp_path / "missing.png", ("red",)),
        ImageRequest(_image(tmp_path / "d.png"), ("circle",)),
    ]
    reporter = NullReporter()
    results = list(predict_requests(_predictor(FirstTokenModel()), requests, None, batch_size=8, reporter=reporter))
    assert [(r.image.name, r.ok) for r in results] == [
        ("a.png", True), ("broken.jpg", False), ("broken.jpg", False), ("missing.png", False), ("d.png", True),
    ]  # fmt: skip
    assert "is not an image" in (results[1].error or "") and "does not exist" in (results[3].error or "")
    assert results[1].to_json()["box"] is None and len(reporter.warnings) == 2


def test_an_expression_without_words_fails_before_anything_is_written(tmp_path: Path) -> None:
    request = ImageRequest(_image(tmp_path / "a.png"), ("red", "?!"))
    with pytest.raises(SimrecError, match="has no words"):
        list(predict_requests(_predictor(FirstTokenModel()), [request], tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_long_expressions_are_cut_with_a_warning(tmp_path: Path) -> None:
    reporter = NullReporter()
    request = ImageRequest(_image(tmp_path / "a.png"), (" ".join(["red"] * 20),))
    [result] = predict_requests(_predictor(FirstTokenModel()), [request], None, reporter=reporter)
    assert result.ok and any("only the first 15" in warning for warning in reporter.warnings)


def test_pictures_and_masks_are_written_with_original_areas(tmp_path: Path) -> None:
    request = ImageRequest(_image(tmp_path / "a.png"), ("circle", "red"))
    out = tmp_path / "out"
    results = list(predict_requests(_predictor(FirstTokenModel(has_mask_head=True)), [request], out))
    assert sorted(path.name for path in out.iterdir()) == ["a.jpg", "a_mask1.png", "a_mask2.png"]
    assert all(r.picture == out / "a.jpg" for r in results)
    # "circle" is token 5: 20 x 10 letterbox pixels at (5, 21) are 40 x 20 original pixels at (10, 10)
    mask = np.asarray(Image.open(out / "a_mask1.png")) == 255
    expected = np.zeros((64, 128), bool)
    expected[10:30, 10:50] = True
    assert (mask == expected).all() and results[0].mask_area == 800
    record = results[0].to_json()
    assert tuple(record) == JSON_FIELDS and record["mask"] == str(out / "a_mask1.png")


def test_images_are_normalized_with_the_checkpoint_mean_and_std(tmp_path: Path) -> None:
    model = FirstTokenModel()
    predictor = _predictor(model, "train.data.mean=[0.5,0.5,0.5]", "train.data.std=[0.25,0.25,0.25]")
    list(predict_requests(predictor, [ImageRequest(_image(tmp_path / "a.png", value=200), ("red",))], None))
    images, *_ = model.calls[0]
    assert images[0, :, 32, 32].tolist() == pytest.approx([(200 / 255 - 0.5) / 0.25] * 3, abs=1e-5)
    assert images[0, :, 2, 32].tolist() == pytest.approx([(127 / 255 - 0.5) / 0.25] * 3, abs=1e-5)


def test_newest_best_checkpoint_is_found(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"no best\.pth found"):
        newest_checkpoint(tmp_path)
    older, newer = tmp_path / "a" / "best.pth", tmp_path / "b" / "c" / "best.pth"
    for path, stamp in [(newer, 2_000_000_000), (older, 1_000_000_000)]:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (stamp, stamp))
    assert newest_checkpoint(tmp_path) == newer
