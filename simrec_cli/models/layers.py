"""Convolution blocks shared by the backbones, the fusion modules and the heads.

Two families exist because the released weights use two naming schemes: YOLOv5-style blocks (`conv`, `bn`,
SiLU) in CSPDarkNet and the REC head, and darknet-style blocks (`conv`, `batch_norm`, `leaky`) in DarkNet53,
the multi-scale fusion and ASPP. Keeping both names lets original checkpoints load without any renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.1)}


def scale_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Channels after a width multiplier, rounded up to a multiple of `divisor` (YOLOv5's rule)."""
    if width == 1.0:
        return channels
    return max(divisor, math.ceil(channels * width / divisor) * divisor)


def scale_depth(blocks: int, depth: float) -> int:
    """Number of repeated blocks after a depth multiplier (at least one)."""
    return max(round(blocks * depth), 1) if depth != 1.0 else blocks


class ConvBnAct(nn.Module):
    """Conv2d without bias -> BatchNorm2d -> activation, with YOLOv5's `conv`/`bn` names."""

    def __init__(
        self, c_in: int, c_out: int, k: int = 1, s: int = 1, p: int | None = None, act: str = "silu", groups: int = 1
    ):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2 if p is None else p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 then 3x3 ConvBnAct with a residual connection (YOLOv5's bottleneck)."""

    def __init__(self, channels: int, shortcut: bool = True):
        super().__init__()
        self.cv1 = ConvBnAct(channels, channels, 1)
        self.cv2 = ConvBnAct(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C3Block(nn.Module):
    """CSP bottleneck with three convolutions: cv3(cat(m(cv1(x)), cv2(x)))."""

    def __init__(self, c_in: int, c_out: int, n: int = 1):
        super().__init__()
        hidden = c_out // 2
        self.cv1 = ConvBnAct(c_in, hidden, 1)
        self.cv2 = ConvBnAct(c_in, hidden, 1)
        self.cv3 = ConvBnAct(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: one 5x5 max-pool applied three times in sequence, all four maps joined."""

    def __init__(self, c_in: int, c_out: int, k: int = 5):
        super().__init__()
        hidden = c_in // 2
        self.cv1 = ConvBnAct(c_in, hidden, 1)
        self.cv2 = ConvBnAct(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), dim=1))


class DarknetConv(nn.Sequential):
    """Conv2d without bias -> BatchNorm2d -> LeakyReLU(0.1), named `conv`/`batch_norm`/`leaky` as in darknet ports.

    Padding keeps the spatial size for odd kernels, including dilated ones (ASPP).
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = (dilation * (k - 1) + 1) // 2
        self.add_module("conv", nn.Conv2d(c_in, c_out, k, stride, padding, dilation=dilation, bias=False))
        self.add_module("batch_norm", nn.BatchNorm2d(c_out))
        self.add_module("leaky", nn.LeakyReLU(0.1))


class DarknetBlock(nn.Module):
    """`nblocks` pairs of (1x1 halving, 3x3 restoring) DarknetConvs, each pair with an optional residual."""

    def __init__(self, channels: int, nblocks: int = 1, shortcut: bool = True):
        super().__init__()
        self.shortcut = shortcut
        self.module_list = nn.ModuleList(
            nn.ModuleList([DarknetConv(channels, channels // 2, 1), DarknetConv(channels // 2, channels, 3)])
            for _ in range(nblocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for squeeze, expand in self.module_list:
            y = expand(squeeze(x))
            x = x + y if self.shortcut else y
        return x


class ConvBnLeaky(nn.Sequential):
    """Conv2d with bias -> BatchNorm2d -> LeakyReLU(0.1), indexed `0`/`1`/`2` (SimpleFusion's projections)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 (6, 12, 18) and image pooling, then a 1x1."""

    def __init__(self, c_in: int, hidden: int, c_out: int):
        super().__init__()
        self.conv0 = DarknetConv(c_in, hidden, 1)
        self.conv1 = DarknetConv(c_in, hidden, 3, dilation=6)
        self.conv2 = DarknetConv(c_in, hidden, 3, dilation=12)
        self.conv3 = DarknetConv(c_in, hidden, 3, dilation=18)
        self.conv4 = DarknetConv(c_in, hidden, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_proj = nn.Conv2d(hidden * 5, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.conv4(self.pool(x)).expand(-1, -1, x.shape[2], x.shape[3])
        branches = (self.conv0(x), self.conv1(x), self.conv2(x), self.conv3(x), pooled)
        return self.out_proj(torch.cat(branches, dim=1))
