"""build_model: embedding rules, freezing (gradients, BatchNorm statistics), parameter logging, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simrec_cli.errors import SimrecError
from simrec_cli.models import MCN, SimREC, build_model, count_parameters
from simrec_cli.reporting import NullReporter

from .conftest import VOCAB, coloured_box_batch, tiny_model_settings

FROZEN = ("model.visual_backbone.freeze_backbone=true",)


def test_word_vectors_set_embedding_size_and_freeze() -> None:
    vectors = np.random.default_rng(0).normal(size=(VOCAB, 20)).astype(np.float32)
    model = build_model(tiny_model_settings("model.language_encoder.freeze_embedding=true"), VOCAB, vectors)
    embedding = model.lang_encoder.embedding.weight
    assert embedding.shape == (VOCAB, 20)
    assert torch.allclose(embedding, torch.from_numpy(vectors))
    assert not embedding.requires_grad


def test_without_vectors_the_embedding_is_trainable_and_says_so() -> None:
    reporter = NullReporter()
    model = build_model(tiny_model_settings("model.language_encoder.freeze_embedding=true"), VOCAB, None, reporter)
    assert model.lang_encoder.embedding.weight.shape == (VOCAB, 64)
    assert model.lang_encoder.embedding.weight.requires_grad
    assert any("random and trained" in m for m in reporter.messages)
    assert any(f"{count_parameters(model)[0]:,} parameters" in m for m in reporter.messages)


def test_vectors_of_the_wrong_vocabulary_are_refused() -> None:
    with pytest.raises(SimrecError, match="do not fit a vocabulary of 12"):
        build_model(tiny_model_settings(), VOCAB, np.zeros((VOCAB + 1, 8), np.float32))


def test_frozen_stages_get_no_gradient_and_keep_their_statistics() -> None:
    model = build_model(tiny_model_settings(*FROZEN), VOCAB)
    stages = model.visual_encoder.model
    assert not any(p.requires_grad for p in stages[:8].parameters())
    assert all(p.requires_grad for p in stages[8:].parameters())
    frozen_bn, trained_bn = stages[0].bn, stages[9].cv1.bn
    before_frozen, before_trained = frozen_bn.running_mean.clone(), trained_bn.running_mean.clone()

    images, tokens, targets, _ = coloured_box_batch()
    model.train()
    assert not frozen_bn.training and trained_bn.training
    model(images, tokens, targets=targets)["loss"].backward()
    assert torch.equal(frozen_bn.running_mean, before_frozen)
    assert not torch.equal(trained_bn.running_mean, before_trained)
    assert all(p.grad is None for p in stages[:8].parameters())
    assert stages[8].cv3.conv.weight.grad is not None


def test_frozen_stages_run_without_autograd() -> None:
    model = build_model(tiny_model_settings(*FROZEN), VOCAB).train()
    feats = model.visual_encoder(torch.rand(2, 3, 64, 64))
    assert not feats[0].requires_grad and not feats[1].requires_grad  # layers 4 and 6: frozen
    assert feats[2].requires_grad  # layer 9 trains


def test_mcn_is_built_with_a_mask_head() -> None:
    settings = tiny_model_settings(
        "model.name=mcn", "model.visual_backbone.name=darknet53", "model.language_encoder.depth=3"
    )
    model = build_model(settings, VOCAB)
    assert isinstance(model, MCN) and model.has_mask_head and model.input_stride == 32
    assert len(model.lang_encoder.sa_list) == 3
    assert isinstance(build_model(tiny_model_settings(), VOCAB), SimREC)


def test_multipliers_refused_for_resnet() -> None:
    with pytest.raises(SimrecError, match="resnet18"):
        build_model(tiny_model_settings("model.visual_backbone.name=resnet18"), VOCAB)


def test_input_sides_must_be_multiples_of_32() -> None:
    model = build_model(tiny_model_settings(), VOCAB).eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.rand(1, 3, 100, 96), torch.ones(1, 15, dtype=torch.long))


def test_eval_returns_boxes_only_and_training_returns_losses() -> None:
    model = build_model(tiny_model_settings(), VOCAB)
    images, tokens, targets, _ = coloured_box_batch()
    losses = model.train()(images, tokens, targets=targets)
    assert set(losses) == {"loss", "loss_det", "loss_seg"} and all(v.dim() == 0 for v in losses.values())
    assert losses["loss_seg"].item() == 0.0
    with torch.no_grad():
        outputs = model.eval()(images[:, :, :96, :64], tokens)
    assert set(outputs) == {"boxes"} and outputs["boxes"].shape == (4, 5)


@pytest.mark.parametrize("overrides", [(), ("model.name=mcn", "model.visual_backbone.name=darknet53")])
def test_shared_image_pass_matches_repeating_the_image(overrides: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_model_settings(*overrides), VOCAB).eval()
    images, tokens, targets, masks = coloured_box_batch()
    image_index = torch.tensor([1, 0, 1, 1])
    with torch.no_grad():
        shared = model(images[:2], tokens, image_index=image_index)
        repeated = model(images[image_index], tokens)
    assert shared.keys() == repeated.keys()
    assert all(torch.allclose(shared[key], repeated[key], atol=1e-5) for key in shared)
    losses = model.train()(images[:2], tokens, targets=targets, masks=masks, image_index=image_index)
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.visual_encoder.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="one entry per expression"):
        model(images[:2], tokens, targets=targets, masks=masks, image_index=image_index[:3])


def test_channels_last_training_gives_the_same_loss() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_model_settings(), VOCAB).train()
    images, tokens, targets, _ = coloured_box_batch()
    torch.manual_seed(1)  # the same Garan attention dropout in both passes
    reference = model(images, tokens, targets=targets)["loss"]
    model.to_channels_last()
    torch.manual_seed(1)
    assert model.visual_encoder.model[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    loss = model(images, tokens, targets=targets)["loss"]
    assert torch.allclose(loss, reference, rtol=1e-3)
    loss.backward()
