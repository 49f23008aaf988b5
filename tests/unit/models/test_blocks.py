"""Shapes through every block, and the numerical details the released weights depend on."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simrec_cli.models.backbones import VGG16, CspDarkNet, DarkNet53, ResNet
from simrec_cli.models.fusion import GaranAttention, MultiScaleFusion, SimpleFusion
from simrec_cli.models.language import LSTM_SA, LayerNorm
from simrec_cli.models.layers import ASPP, SPPF, C3Block, DarknetBlock


@pytest.mark.parametrize(
    ("backbone", "channels"),
    [
        (CspDarkNet(0.25, 0.33), (64, 128, 256)),
        (DarkNet53(0.25, 0.25), (64, 128, 256)),
        (VGG16(0.25), (64, 128, 256)),
        (ResNet("resnet18"), (128, 256, 512)),
    ],
    ids=["cspdarknet", "darknet53", "vgg16", "resnet18"],
)
def test_backbones_give_stride_8_16_32_maps(backbone: nn.Module, channels: tuple[int, int, int]) -> None:
    outputs = backbone.eval()(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outputs] == [
        (1, channels[0], 8, 12),
        (1, channels[1], 4, 6),
        (1, channels[2], 2, 3),
    ]
    assert backbone.out_channels == channels


def test_layer_blocks_keep_or_set_channels() -> None:
    x = torch.rand(2, 16, 8, 8)
    assert C3Block(16, 32, n=2)(x).shape == (2, 32, 8, 8)
    assert SPPF(16, 24)(x).shape == (2, 24, 8, 8)
    assert DarknetBlock(16, nblocks=2, shortcut=False)(x).shape == (2, 16, 8, 8)
    assert ASPP(16, 8, 1)(x).shape == (2, 1, 8, 8)


def test_layer_norm_uses_unbiased_std_plus_eps() -> None:
    x = torch.tensor([[1.0, 2.0, 4.0, 9.0]])
    norm = LayerNorm(4)
    mean, unbiased_std = 4.0, (((x - 4.0) ** 2).sum() / 3).sqrt()
    assert torch.allclose(norm(x), (x - mean) / (unbiased_std + 1e-6))


def test_language_encoder_shapes_and_padding_mask() -> None:
    encoder = LSTM_SA(20, 8, 16, 4, 32, depth=2, glimpses=1, dropout=0.0).eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0], [6, 0, 0, 0, 0]])
    out = encoder(tokens)
    assert out["flat_lang_feat"].shape == (2, 16)
    assert out["lang_feat"].shape == (2, 5, 16)
    assert out["lang_feat_mask"].shape == (2, 1, 1, 5)
    assert out["lang_feat_mask"][0, 0, 0].tolist() == [False, False, False, True, True]
    assert isinstance(encoder.lstm, nn.GRU)


def test_pooling_ignores_padded_positions() -> None:
    encoder = LSTM_SA(20, 8, 16, 4, 32, depth=0, glimpses=1, dropout=0.0).eval()
    short = torch.tensor([[3, 4, 0, 0]])
    assert encoder.att_flat.linear_merge.in_features == 16
    features, _ = encoder.lstm(encoder.embedding(short))
    mask = (short == 0)[:, None, None, :]
    changed = features.clone()
    changed[:, 2:] += 100.0  # padded positions: must not move the pooled vector
    assert torch.allclose(encoder.att_flat(features, mask), encoder.att_flat(changed, mask), atol=1e-5)


def test_simple_fusion_and_multi_scale_fusion_shapes() -> None:
    fusion = SimpleFusion(24, 16, 32)
    assert fusion(torch.rand(2, 24, 4, 4), torch.rand(2, 16)).shape == (2, 32, 4, 4)
    msf = MultiScaleFusion((8, 16, 32), hidden=16)
    feats = [torch.rand(2, 8, 16, 16), torch.rand(2, 16, 8, 8), torch.rand(2, 32, 4, 4)]
    bot, mid, top = msf(feats)
    assert (bot.shape, mid.shape, top.shape) == ((2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4))
    skipped_bot, skipped_mid, same_top = msf.eval()(feats, with_bot=False, with_mid=False)
    assert skipped_bot is None and skipped_mid is None
    assert torch.allclose(same_top, msf(feats)[2])


@pytest.mark.parametrize(("transpose_output", "height", "width"), [(True, 3, 3), (False, 3, 4)])
def test_garan_attention_writes_the_attended_values_back(transpose_output: bool, height: int, width: int) -> None:
    """Rebuild the attended values independently: the released (W, H) reshape, or each cell in its place."""
    torch.manual_seed(0)
    garan = GaranAttention(d_q=6, d_v=4, n_head=2, dropout=0.0, transpose_output=transpose_output).eval()
    query, visual = torch.rand(1, 6), torch.rand(1, 4, height, width)
    out, attn = garan(query, visual)
    assert out.shape == attn.shape == (1, 4, height, width)

    heads, head_dim, cells = 2, 2, height * width
    q = garan.w_qs(query).view(heads, head_dim)
    kc, kd, v = (conv(visual).view(heads, head_dim, cells) for conv in (garan.w_kc, garan.w_kd, garan.w_vs))
    values = torch.zeros(heads, head_dim, height, width)
    for h in range(heads):
        collect = torch.softmax(q[h] @ kc[h] / garan.temperature, dim=0)
        collected = v[h] @ collect
        diffuse = torch.sigmoid(q[h] @ kd[h] / garan.temperature)
        per_position = diffuse[:, None] * collected[None, :]  # [cells (row-major y, x), head_dim]
        if transpose_output:  # released quirk: the (y, x) position grid is written back as (x, y)
            values[h] = per_position.view(height, width, head_dim).permute(2, 1, 0)
        else:
            values[h] = per_position.view(height, width, head_dim).permute(2, 0, 1)
    expected_attn = garan.w_o(values.reshape(1, 4, height, width))
    assert torch.allclose(attn, expected_attn, atol=1e-6)
    expected_out = nn.functional.leaky_relu(garan.layer_norm(expected_attn) + visual, 0.1)
    assert torch.allclose(out, expected_out, atol=1e-6)
