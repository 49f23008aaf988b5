"""MCN: mask of the input size, all three losses, and a training step that reaches every branch."""

from __future__ import annotations

import torch

from simrec_cli.models import build_model

from .conftest import VOCAB, coloured_box_batch, tiny_model_settings, train_steps


def tiny_mcn() -> torch.nn.Module:
    torch.manual_seed(0)
    settings = tiny_model_settings("model.name=mcn", "model.visual_backbone.name=darknet53")
    return build_model(settings, VOCAB)


def test_mcn_returns_box_and_mask_of_the_input_size() -> None:
    model = tiny_mcn().eval()
    images, tokens, _, _ = coloured_box_batch()
    with torch.no_grad():
        outputs = model(images[:, :, :96, :], tokens)
    assert outputs["boxes"].shape == (4, 5)
    assert outputs["masks"].shape == (4, 96, 128)
    assert outputs["masks"].min() >= 0 and outputs["masks"].max() <= 1


def test_mcn_losses_reach_detection_segmentation_and_energy_layers() -> None:
    model = tiny_mcn().train()
    images, tokens, targets, masks = coloured_box_batch()
    losses = model(images, tokens, targets=targets, masks=masks)
    assert losses["loss_det"] > 0 and losses["loss_seg"] > 0
    assert losses["loss"] > losses["loss_det"] + losses["loss_seg"] - 1e-4  # plus the energy term (>= 0)
    losses["loss"].backward()
    for layer in (model.head.dconv, model.head.sconv[0].out_proj, model.head.s_proj, model.head.d_proj):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_mcn_learns_the_batch() -> None:
    model = tiny_mcn()
    losses = train_steps(model, 30)
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]
