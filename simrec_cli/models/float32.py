"""The parts of a model that compute in float32 under autocast: the layers whose outputs choose and place the box.

bf16 keeps 8 significant bits, a step of 1/32 at 4.6. The objectness logits of an untrained head all sit near its
prior, -4.595, within about 0.0015 of each other; rounded to bf16 they become one value, `argmax` takes the first
cell, and every expression gets the top-left box. A trained model separates its cells by more than bf16's step, but
the choice among close cells, and every coordinate, should not depend on the autocast dtype. So the box layers run
in float32 whatever autocast asks (a few percent of the model's arithmetic), and a module marked
`computes_in_float32` keeps float32 weights when inference stores the others in bf16.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

MARK = "computes_in_float32"


def float32_computation(tensor: torch.Tensor) -> AbstractContextManager:
    """A region where autocast is off on `tensor`'s device: its inputs must be cast to float32 by the caller."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


class Float32Conv2d(nn.Conv2d):
    """A convolution that computes in float32 under autocast (same parameters and keys as `nn.Conv2d`)."""

    computes_in_float32 = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with float32_computation(x):
            return super().forward(x.float())


def float32_parts(model: nn.Module) -> set[nn.Module]:
    """Every module that belongs to a part marked `computes_in_float32` (the part itself and all it contains)."""
    parts: set[nn.Module] = set()
    for module in model.modules():
        if getattr(module, MARK, False):
            parts.update(module.modules())
    return parts
