"""A tiny SimREC overfits one batch of synthetic scenes; BN folding, channels_last, bf16 and the compiled forward
keep its boxes."""

from __future__ import annotations

import copy

import pytest
import torch
from torchvision.ops import box_iou

from simrec_cli.models import inference
from simrec_cli.models.float32 import float32_parts
from simrec_cli.models.inference import (
    InferenceModel,
    bf16_autocast,
    fold_batchnorm,
    prepare_for_inference,
    store_autocast_weights,
)
from simrec_cli.models.precision import PrecisionChoice

from .conftest import SceneBatch

Trained = tuple[torch.nn.Module, list[float], SceneBatch]


def test_tiny_simrec_overfits_one_batch(trained_tiny_simrec: Trained) -> None:
    _, losses, _ = trained_tiny_simrec
    assert sum(losses[-5:]) / 5 <= 0.1 * losses[0]


def test_overfitted_boxes_hit_the_objects(trained_tiny_simrec: Trained) -> None:
    model, _, batch = trained_tiny_simrec
    with torch.no_grad():
        boxes = model(batch.images, batch.tokens)["boxes"]
    cx, cy, w, h = (batch.targets * batch.images.shape[-1]).unbind(1)
    truth = torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=1)
    assert box_iou(boxes[:, :4], truth).diag().min() > 0.5


def evaluation_inputs(batch: SceneBatch) -> tuple[torch.Tensor, torch.Tensor]:
    noise = 0.05 * torch.randn(batch.images.shape, generator=torch.Generator().manual_seed(3))
    noisy = (batch.images + noise).clamp(0, 1)
    return torch.cat((batch.images, noisy)), torch.cat((batch.tokens, batch.tokens))


@pytest.mark.parametrize(
    ("fold_bn", "channels_last", "bf16"),
    [(True, False, False), (False, True, False), (False, False, True), (True, True, True)],
    ids=["fold_bn", "channels_last", "bf16", "all"],
)
def test_inference_options_keep_the_boxes(
    trained_tiny_simrec: Trained, fold_bn: bool, channels_last: bool, bf16: bool
) -> None:
    model, _, batch = trained_tiny_simrec
    images, tokens = evaluation_inputs(batch)
    with torch.inference_mode():
        reference = model(images, tokens)["boxes"]
        fast = prepare_for_inference(model, fold_bn=fold_bn, channels_last=channels_last)
        with bf16_autocast("cpu", enabled=bf16):
            boxes = fast(images, tokens)["boxes"]
    assert boxes.dtype == torch.float32
    iou = box_iou(boxes[:, :4], reference[:, :4]).diag()
    if not bf16:  # the same arithmetic in another order: the boxes stay put
        assert iou.min() >= 0.99
    else:
        # bfloat16 keeps 8 mantissa bits, and the rounding adds up through the network: it moves a box edge by
        # up to about a pixel (worst IoU here 0.966 on a 24-pixel box, mean 0.988), so the set must average 0.98
        # and no box may drop below 0.95.
        assert iou.mean() >= 0.98 and iou.min() >= 0.95
    assert model.training is False and any(p.requires_grad for p in model.parameters())  # original untouched


def test_folding_removes_foldable_batchnorms_and_keeps_outputs(trained_tiny_simrec: Trained) -> None:
    model, _, batch = trained_tiny_simrec
    folded = prepare_for_inference(model, fold_bn=False, channels_last=False)
    count = fold_batchnorm(folded)
    remaining = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert count > 50 and remaining == 4  # three SimpleFusion norms and the Garan norm stay
    images, tokens = evaluation_inputs(batch)
    with torch.inference_mode():
        assert torch.allclose(folded(images, tokens)["boxes"], model(images, tokens)["boxes"], atol=1e-3)


def test_in_place_preparation_is_the_copy_without_copying(trained_tiny_simrec: Trained) -> None:
    model, _, batch = trained_tiny_simrec
    images, tokens = evaluation_inputs(batch)
    copied = prepare_for_inference(model, fold_bn=True, channels_last=True)
    own = copy.deepcopy(model).train()
    prepared = prepare_for_inference(own, fold_bn=True, channels_last=True, in_place=True)
    assert prepared is own and not prepared.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.visual_encoder.modules())
    with torch.inference_mode():
        assert torch.equal(prepared(images, tokens)["boxes"], copied(images, tokens)["boxes"])


def test_weights_stored_in_bf16_give_autocasts_answers(trained_tiny_simrec: Trained) -> None:
    """Convolutions and linear layers keep bf16 weights, so autocast stops casting them on every pass; the boxes stay
    bit for bit those of the fp32 weights under autocast."""
    model, _, batch = trained_tiny_simrec
    images, tokens = evaluation_inputs(batch)
    autocast_only = prepare_for_inference(model, fold_bn=True, channels_last=True)
    stored = prepare_for_inference(model, fold_bn=True, channels_last=True)
    assert store_autocast_weights(stored, None) == 0
    assert store_autocast_weights(stored, torch.bfloat16) > 0
    kept = float32_parts(stored)  # the box layers compute in float32 (models/float32.py)
    convolutions = [m for m in stored.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.dtype == (torch.float32 if m in kept else torch.bfloat16) for m in convolutions)
    assert stored.lang_encoder.lstm.weight_ih_l0.dtype == torch.float32  # autocast leaves the GRU in fp32
    with torch.inference_mode(), bf16_autocast("cpu"):
        assert torch.equal(stored(images, tokens)["boxes"], autocast_only(images, tokens)["boxes"])


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="weight packing needs oneDNN")
def test_compiled_cpu_forward_packs_the_frozen_weights() -> None:
    """On CPU the compiled forward treats the weights as constants: packed for oneDNN, each convolution fused with
    its activation, and its kernels called from C++ rather than from generated Python. (Asked for through
    torch.compile's options, freezing was silently skipped: the weights stayed inputs, cast to bf16 on every call.)"""
    import torch._inductor.config
    from torch._dynamo.utils import counters
    from torch._inductor.utils import run_and_get_code

    layers = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(16, 8, 1))
    module = layers.eval().to(memory_format=torch.channels_last)
    images = torch.rand(1, 16, 16, 16).contiguous(memory_format=torch.channels_last)
    counters.clear()
    with torch._inductor.config.patch(freezing=False, force_disable_caches=True), torch.inference_mode():
        compiled = inference.compile_module(module, torch.device("cpu"), 1)
        with bf16_autocast("cpu"):
            answer, code = run_and_get_code(compiled, images)
            reference = module(images)
    assert "CppWrapperCodeCache" in "".join(code)
    assert counters["inductor"]["mkldnn_conv_weight_pack_matcher_count"] == 2
    assert counters["inductor"]["mkldnn_unary_fusion_matcher_count"] >= 1
    assert torch.allclose(answer.float(), reference.float(), atol=0.05)


def _inference_model(model: torch.nn.Module, batch_sizes: tuple[int, ...] = (), size: int = 160) -> InferenceModel:
    """Eager by default; compiled for `batch_sizes`."""
    prepared = InferenceModel(
        prepare_for_inference(model, fold_bn=True, channels_last=True), torch.device("cpu"), PrecisionChoice("fp32", "")
    )
    if batch_sizes:
        prepared.compile(batch_sizes, (size, size), 15)
    return prepared


def test_bucketed_forward_pads_splits_and_repeats_images(
    trained_tiny_simrec: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shape bookkeeping of the compiled path, with the eager module standing in for the compiled one: each
    size is warmed up and timed twice at compile time; 3 rows padded to 4 or split into 1 + 1 + 1 as the timings
    say, 8 rows cut into 4 + 4, shared images repeated per expression."""
    calls: list[int] = []

    def eager_forward(module: torch.nn.Module, device: torch.device, shapes: int):
        def forward(images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
            calls.append(len(tokens))
            return module(images, tokens)

        return forward

    monkeypatch.setattr(inference, "compile_module", eager_forward)
    model, _, batch = trained_tiny_simrec
    images, tokens = evaluation_inputs(batch)
    eager, bucketed = _inference_model(model), _inference_model(model, (1, 4))
    assert calls == [1, 1, 1, 4, 4, 4] and bucketed.compiled and bucketed.batch_sizes == (1, 4)
    assert sorted(bucketed.pass_seconds) == [1, 4] and min(bucketed.pass_seconds.values()) > 0
    for pass_seconds, expected_calls in [({1: 1.0, 4: 1.5}, [4, 4, 4]), ({1: 1.0, 4: 3.5}, [1, 1, 1, 4, 4])]:
        bucketed.pass_seconds = pass_seconds
        calls.clear()
        for rows in (3, 8):
            reference = eager(images[:rows], tokens[:rows])["boxes"]
            assert torch.allclose(bucketed(images[:rows], tokens[:rows])["boxes"], reference, atol=1e-4)
        assert calls == expected_calls
    shared = torch.tensor([0, 0, 1, 1, 1, 2, 3, 2])
    reference = eager(images[:4], tokens, image_index=shared)["boxes"]
    calls.clear()
    assert torch.allclose(bucketed(images[:4], tokens, image_index=shared)["boxes"], reference, atol=1e-4)
    assert calls == [4, 4]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(1, [1]), (3, [4]), (4, [4]), (9, [4, 4, 1]), (11, [4, 4, 4]), (15, [16]), (20, [16, 4]), (33, [16, 16, 1])],
)
def test_passes_are_planned_by_their_measured_time(rows: int, expected: list[int]) -> None:
    """Seconds per pass as `compile` measured them for the default SimREC at 416 on a 2-core CPU with AMX (compiled
    bf16): padding 9 rows to 16 would cost 0.457 s where 4 + 4 + 1 costs 0.295 s."""
    assert inference.plan_passes(rows, {1: 0.045, 4: 0.125, 16: 0.457}) == expected


def test_a_pass_that_is_mostly_overhead_is_padded() -> None:
    """A small model's pass costs about the same at any size: one padded pass beats several."""
    assert inference.plan_passes(9, {1: 0.010, 4: 0.011, 16: 0.013}) == [16]
    assert inference.plan_passes(40, {1: 0.010, 4: 0.011, 16: 0.013}) == [16, 16, 16]


@pytest.mark.slow
def test_compiled_forward_keeps_the_boxes(trained_tiny_simrec: Trained) -> None:
    """inductor with frozen weights computes what the eager model computes (the real compile: about a minute),
    with images shared by several expressions and with one image per expression, and the graph compiled up front
    serves them all: a loader's batch, a padded one, and a server's (made under inference mode from
    height x width x channels canvases) without compiling again."""
    import torch._dynamo

    model, _, batch = trained_tiny_simrec
    images, tokens = evaluation_inputs(batch)
    eager, compiled = _inference_model(model), _inference_model(model, (8,))
    with torch.inference_mode():
        served = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    shared = torch.tensor([0, 1, 1, 2, 3, 3, 3, 0])
    for rows, index in [(images, None), (images[:4], shared), (images[:5], None), (served, None)]:
        count = len(rows) if index is None else len(index)
        reference = eager(rows, tokens[:count], image_index=index)["boxes"]
        with torch._dynamo.config.patch(error_on_recompile=True):
            answer = compiled(rows, tokens[:count], image_index=index)["boxes"]
        assert box_iou(answer[:, :4], reference[:, :4]).diag().min() >= 0.99


@pytest.mark.slow
def test_the_compiled_forward_is_one_graph(trained_tiny_simrec: Trained) -> None:
    """With compile_module's dynamo settings the whole forward, the language encoder's GRU included, traces into
    one graph: a break around the GRU would split it into seven and cost the compiled forward about 9 %."""
    import torch._dynamo

    model, _, batch = trained_tiny_simrec
    module = _inference_model(model).module
    limit = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(allow_rnn=False, recompile_limit=limit):  # restored afterwards
        before = torch._dynamo.explain(module)(batch.images, batch.tokens)
        inference.compile_module(module, torch.device("cpu"), 1)  # compiles lazily: nothing is compiled here
        after = torch._dynamo.explain(module)(batch.images, batch.tokens)
    assert before.graph_break_count > 0
    assert (after.graph_count, after.graph_break_count) == (1, 0)
