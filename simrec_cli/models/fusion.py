"""Vision-language fusion: SimpleFusion (language-gated projection), MultiScaleFusion (PAN), GaranAttention."""

from __future__ import annotations

import math

import torch
from torch import nn

from simrec_cli.models.layers import ConvBnLeaky, DarknetConv


class SimpleFusion(nn.Module):
    """norm(v_proj(visual) * q_proj(language)), the language vector broadcast over the map."""

    def __init__(self, v_planes: int, q_planes: int, out_planes: int):
        super().__init__()
        self.v_proj = ConvBnLeaky(v_planes, out_planes)
        self.q_proj = ConvBnLeaky(q_planes, out_planes)
        self.norm = nn.Sequential(nn.BatchNorm2d(out_planes), nn.LeakyReLU(0.1))

    def forward(self, visual: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        gate = self.q_proj(language[:, :, None, None])
        return self.norm(self.v_proj(visual) * gate)


def _path(resample: nn.Module, c_in: int, c_out: int) -> nn.Sequential:
    """Resample (index 0, no parameters) -> 1x1 -> 3x3, the element of SimREC's up/down module lists."""
    return nn.Sequential(resample, DarknetConv(c_in, c_out, 1), DarknetConv(c_out, c_out, 3))


class MultiScaleFusion(nn.Module):
    """Top-down then bottom-up path over (stride 8, 16, 32) maps, returning projected (bot, mid, top) maps.

    `mid` and `bot` are computed only when asked: SimREC's head reads `top` alone, MCN reads `top` and `bot`.
    Their parameters exist either way so released checkpoints load.
    """

    def __init__(self, v_planes: tuple[int, int, int], hidden: int, scaled: bool = True):
        super().__init__()
        half = hidden // 2
        low, mid, high = v_planes

        def upsample() -> nn.Module:
            return nn.UpsamplingBilinear2d(scale_factor=2) if scaled else nn.Identity()

        def downsample() -> nn.Module:
            return nn.AvgPool2d(2, 2) if scaled else nn.Identity()

        self.up_modules = nn.ModuleList([_path(upsample(), mid + half, half), _path(upsample(), high, half)])
        self.down_modules = nn.ModuleList(
            [_path(downsample(), half + low, half), _path(downsample(), hidden + mid, half)]
        )
        self.top_proj = DarknetConv(high + half, hidden, 1)
        self.mid_proj = DarknetConv(mid + hidden, hidden, 1)
        self.bot_proj = DarknetConv(low + half, hidden, 1)

    def forward(
        self, feats: list[torch.Tensor], with_bot: bool = True, with_mid: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        low, mid, high = feats
        mid = torch.cat([self.up_modules[1](high), mid], 1)
        low = torch.cat([self.up_modules[0](mid), low], 1)
        mid = torch.cat([self.down_modules[0](low), mid], 1)
        high = torch.cat([self.down_modules[1](mid), high], 1)
        bot = self.bot_proj(low) if with_bot else None
        middle = self.mid_proj(mid) if with_mid else None
        return bot, middle, self.top_proj(high)


class GaranAttention(nn.Module):
    """Collect-diffuse attention of the language vector over a map, with a residual and LeakyReLU.

    Returns the fused map and `attn`, the `w_o` projection before its BatchNorm (MCN's consistency energy
    reads it). The released model reshapes the attended values as (W, H) into an (H, W) map, transposing it
    spatially; trained weights depend on that, so it is reproduced unless `transpose_output` is False, which
    keeps every cell's match on that cell (no parameter changes, so it is a choice for training from scratch).
    `w_m` (an attention map neither head reads) keeps its parameters but is not computed.
    """

    def __init__(self, d_q: int, d_v: int, n_head: int = 2, dropout: float = 0.1, transpose_output: bool = True):
        super().__init__()
        self.transpose_output = transpose_output
        if d_v % n_head:
            raise ValueError(f"GaranAttention: {d_v} channels are not divisible by {n_head} heads")
        self.n_head = n_head
        self.w_qs = nn.Linear(d_q, d_v)
        self.w_kc = nn.Conv2d(d_v, d_v, 1)
        self.w_kd = nn.Conv2d(d_v, d_v, 1)
        self.w_vs = nn.Conv2d(d_v, d_v, 1)
        self.w_m = nn.Conv2d(d_v, 1, 3, 1, padding=1)
        self.w_o = nn.Conv2d(d_v, d_v, 1)
        self.temperature = math.sqrt(d_v // n_head)
        self.dropout_c = nn.Dropout(dropout)
        self.dropout_d = nn.Dropout(dropout)
        self.layer_norm = nn.BatchNorm2d(d_v)
        self.layer_acti = nn.LeakyReLU(0.1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B * heads, H * W, C / heads]."""
        batch, channels, height, width = x.shape
        x = x.view(batch, self.n_head, channels // self.n_head, height * width)
        return x.permute(0, 1, 3, 2).reshape(batch * self.n_head, height * width, channels // self.n_head)

    def forward(self, query: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, height, width = visual.shape
        q = self.w_qs(query).view(batch * self.n_head, 1, channels // self.n_head)
        kc, kd, v = self._heads(self.w_kc(visual)), self._heads(self.w_kd(visual)), self._heads(self.w_vs(visual))
        collect = self.dropout_c((q @ kc.transpose(1, 2) / self.temperature).softmax(dim=2))
        collected = collect @ v
        diffuse = self.dropout_d(torch.sigmoid(kd @ q.transpose(1, 2) / self.temperature))
        out = (diffuse @ collected).view(batch, self.n_head, height, width, channels // self.n_head)
        spatial = (3, 2) if self.transpose_output else (2, 3)  # (W, H) is the released layout
        out = out.permute(0, 1, 4, *spatial).reshape(batch, channels, height, width)
        attn = self.w_o(out)
        return self.layer_acti(self.layer_norm(attn) + visual), attn
