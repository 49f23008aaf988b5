"""The box layers compute in float32 under bf16 autocast: an untrained model's decode gives fp32's boxes.

Before, the head's convolutions ran in bf16, whose step at the untrained objectness prior (-4.595) is 1/32, while
the logits of the cells differed by about 0.0015: every cell rounded to one value, `argmax` took the first, and
every expression got the top-left box.
"""

from __future__ import annotations

import torch

from simrec_cli.models import build_model
from simrec_cli.models.float32 import Float32Conv2d, float32_parts
from simrec_cli.models.inference import bf16_autocast, prepare_for_inference, store_autocast_weights

from .conftest import SceneBatch, synthetic_scene_batch, tiny_model_settings

BF16_STEP_AT_PRIOR = 2**-5  # bf16 keeps 8 significant bits: the spacing of its values in [4, 8)


def untrained(batch: SceneBatch, *overrides: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(tiny_model_settings(*overrides), batch.vocab_size).eval()


def test_an_untrained_simrec_head_decodes_bf16_features_as_fp32_does() -> None:
    batch = synthetic_scene_batch(range(8))
    model = untrained(batch)
    with torch.inference_mode():
        top = model._top(batch.images, batch.tokens, None)
        objectness = model.head(top)[..., 4]
        fp32 = model.head.predict(top)
        with bf16_autocast("cpu"):
            bf16 = model.head.predict(top)
    spread = objectness.max(dim=1).values - objectness.min(dim=1).values
    assert (spread < BF16_STEP_AT_PRIOR).all()  # the cells of an untrained head sit closer than bf16 can tell apart
    assert all(len(row.bfloat16().unique()) == 1 for row in objectness)  # in bf16 they would all tie
    assert bf16.dtype == torch.float32
    assert torch.equal(bf16[:, :4], fp32[:, :4]) and torch.allclose(bf16[:, 4], fp32[:, 4], rtol=0, atol=1e-7)


def test_an_untrained_model_in_bf16_keeps_its_cells_apart() -> None:
    """The whole model under autocast: the objectness of each image's cells stays distinct, as in fp32 (it
    collapsed to one value per image, which made the first cell win every time)."""
    batch = synthetic_scene_batch(range(8))
    model = untrained(batch)
    with torch.inference_mode(), bf16_autocast("cpu"):
        raw = model.head(model._top(batch.images, batch.tokens, None))
        boxes = model(batch.images, batch.tokens)["boxes"]
    assert raw.dtype == torch.float32 and boxes.dtype == torch.float32
    assert all(len(row.unique()) > len(row) // 2 for row in raw[..., 4])


def test_an_untrained_mcn_head_decodes_bf16_features_as_fp32_does() -> None:
    batch = synthetic_scene_batch(range(8))
    model = untrained(batch, "model.name=mcn")
    assert isinstance(model.head.dconv, Float32Conv2d)
    with torch.inference_mode():
        top, bot, _, _ = model._attended(batch.images, batch.tokens, None)
        fp32, _ = model.head.predict(top, bot)
        with bf16_autocast("cpu"):
            bf16, masks = model.head.predict(top, bot)
    assert torch.equal(bf16[:, :4], fp32[:, :4])
    assert masks.dtype == torch.float32


def test_stored_bf16_weights_leave_the_box_layers_in_float32() -> None:
    batch = synthetic_scene_batch(range(4))
    model = prepare_for_inference(untrained(batch), fold_bn=True, channels_last=True)
    with torch.inference_mode(), bf16_autocast("cpu"):
        reference = model(batch.images, batch.tokens)["boxes"]
    kept = float32_parts(model)
    assert model.head in kept and model.visual_encoder not in kept
    assert store_autocast_weights(model, torch.bfloat16) > 0
    dtypes = {module: module.weight.dtype for module in model.modules() if isinstance(module, torch.nn.Conv2d)}
    assert all(dtype == (torch.float32 if module in kept else torch.bfloat16) for module, dtype in dtypes.items())
    with torch.inference_mode(), bf16_autocast("cpu"):
        assert torch.equal(model(batch.images, batch.tokens)["boxes"], reference)
