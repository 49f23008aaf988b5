"""A tiny SimREC overfits one batch; BN folding, channels_last and bf16 keep its boxes (IoU >= 0.99)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from simrec_cli.models.inference import bf16_autocast, fold_batchnorm, prepare_for_inference

from .conftest import coloured_box_batch


def test_tiny_simrec_overfits_one_batch(trained_tiny_simrec: tuple[torch.nn.Module, list[float]]) -> None:
    _, losses = trained_tiny_simrec
    assert sum(losses[-5:]) / 5 <= 0.1 * losses[0]


def test_overfitted_boxes_hit_the_objects(trained_tiny_simrec: tuple[torch.nn.Module, list[float]]) -> None:
    model, _ = trained_tiny_simrec
    images, tokens, targets, _ = coloured_box_batch()
    with torch.no_grad():
        boxes = model(images, tokens)["boxes"]
    cx, cy, w, h = (targets * images.shape[-1]).unbind(1)
    truth = torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=1)
    assert box_iou(boxes[:, :4], truth).diag().min() > 0.5


def evaluation_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    images, tokens, _, _ = coloured_box_batch()
    noisy = (images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    return torch.cat((images, noisy)), torch.cat((tokens, tokens))


@pytest.mark.parametrize(
    ("fold_bn", "channels_last", "bf16"),
    [(True, False, False), (False, True, False), (False, False, True), (True, True, True)],
    ids=["fold_bn", "channels_last", "bf16", "all"],
)
def test_inference_options_keep_the_boxes(
    trained_tiny_simrec: tuple[torch.nn.Module, list[float]], fold_bn: bool, channels_last: bool, bf16: bool
) -> None:
    model, _ = trained_tiny_simrec
    images, tokens = evaluation_inputs()
    with torch.inference_mode():
        reference = model(images, tokens)["boxes"]
        fast = prepare_for_inference(model, fold_bn=fold_bn, channels_last=channels_last)
        with bf16_autocast("cpu", enabled=bf16):
            boxes = fast(images, tokens)["boxes"]
    assert boxes.dtype == torch.float32
    assert box_iou(boxes[:, :4], reference[:, :4]).diag().min() >= 0.99
    assert model.training is False and any(p.requires_grad for p in model.parameters())  # original untouched


def test_folding_removes_foldable_batchnorms_and_keeps_outputs(
    trained_tiny_simrec: tuple[torch.nn.Module, list[float]],
) -> None:
    model, _ = trained_tiny_simrec
    folded = prepare_for_inference(model, fold_bn=False, channels_last=False)
    count = fold_batchnorm(folded)
    remaining = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert count > 50 and remaining == 4  # three SimpleFusion norms and the Garan norm stay
    images, tokens = evaluation_inputs()
    with torch.inference_mode():
        assert torch.allclose(folded(images, tokens)["boxes"], model(images, tokens)["boxes"], atol=1e-3)
