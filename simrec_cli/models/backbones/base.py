"""What every visual backbone shares: three output maps, freezing of leading stages, and no wasted work on them.

SimREC freezes the leading stages of a pre-trained backbone. Frozen here means three things: their parameters
get no gradient, their BatchNorms keep the pre-trained statistics (they stay in eval mode while the model
trains; the original let them drift), and their forward pass runs without autograd bookkeeping, because no
gradient ever needs to flow through them. That last point makes a training step markedly cheaper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class StagedBackbone(nn.Module):
    """A backbone run as an ordered list of stages, returning the maps at strides 8, 16 and 32.

    Subclasses set `out_indices` (the stages whose outputs are the stride-8 and stride-16 maps; the last stage
    gives stride 32), `out_channels`, and implement `stages()`.
    """

    out_indices: tuple[int, int]
    out_channels: tuple[int, int, int]
    trainable_tail = 2  # stages that keep training under `freeze_backbone` (SimREC: the last two)

    def __init__(self) -> None:
        super().__init__()
        self.frozen_stages = 0

    def stages(self) -> Sequence[nn.Module]:
        """The stages in forward order."""
        raise NotImplementedError

    def freeze(self, count: int) -> None:
        """Freeze the first `count` stages: no gradients, BatchNorm statistics fixed."""
        self.frozen_stages = count
        for stage in self.stages()[:count]:
            stage.requires_grad_(False)
        self.train(self.training)

    def freeze_default(self) -> None:
        """SimREC's `freeze_backbone`: every stage except the last `trainable_tail`."""
        self.freeze(len(self.stages()) - self.trainable_tail)

    def train(self, mode: bool = True) -> StagedBackbone:
        super().train(mode)
        for stage in self.stages()[: self.frozen_stages]:
            stage.eval()
        return self

    def _stages_without_grad(self, x: torch.Tensor) -> int:
        """How many leading stages can run without autograd: frozen, and nothing upstream needs a gradient."""
        if x.requires_grad:
            return 0
        count = 0
        for stage in self.stages()[: self.frozen_stages]:
            if any(p.requires_grad for p in stage.parameters()):
                break
            count += 1
        return count

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        grad_enabled = torch.is_grad_enabled()
        no_grad_until = self._stages_without_grad(x) if grad_enabled else 0
        for index, stage in enumerate(self.stages()):
            with torch.set_grad_enabled(grad_enabled and index >= no_grad_until):
                x = stage(x)
            if index in self.out_indices:
                outputs.append(x)
        outputs.append(x)
        return outputs
