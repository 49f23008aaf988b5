"""Faster inference that keeps the boxes: BatchNorm folding, channels_last, bf16 autocast.

Each option is checked by the tests to keep fp32's boxes (IoU >= 0.99). Boxes are decoded in float32 inside
the heads, so bf16 only affects the features, not the coordinate arithmetic.
"""

from __future__ import annotations

import copy
import itertools
from contextlib import AbstractContextManager

import torch
from torch import nn

from simrec_cli.models.base import GroundingModel
from simrec_cli.models.layers import ConvBnAct


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the preceding convolution's weight and bias (in place)."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every Conv2d -> BatchNorm2d pair that runs back to back; returns how many were folded.

    Safe pairs are the adjacent children of an `nn.Sequential` (run in registration order) and the conv/bn
    of a ConvBnAct. Other BatchNorms (after a product, or whose input is also used elsewhere) stay.
    """
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, ConvBnAct) and isinstance(module.bn, nn.BatchNorm2d):
            fuse_conv_bn(module.conv, module.bn)
            module.bn = nn.Identity()
            folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in itertools.pairwise(names):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    fuse_conv_bn(conv, bn)
                    module._modules[second] = nn.Identity()
                    folded += 1
    return folded


def prepare_for_inference(model: GroundingModel, *, fold_bn: bool, channels_last: bool) -> GroundingModel:
    """An eval-mode copy of `model` for prediction (the original stays trainable)."""
    prepared = copy.deepcopy(model).eval()
    prepared.requires_grad_(False)
    if fold_bn:
        fold_batchnorm(prepared)
    if channels_last:
        prepared.to_channels_last()
    for module in prepared.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()  # a copied GRU loses cuDNN's single weight buffer; restore it
    return prepared


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """Mixed precision in `dtype` on CPU or CUDA; a no-op context when `dtype` is None."""
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def bf16_autocast(device: torch.device | str, enabled: bool = True) -> AbstractContextManager:
    """Autocast to bfloat16 on CPU or CUDA (a no-op context when `enabled` is False)."""
    return autocast(device, torch.bfloat16 if enabled else None)
