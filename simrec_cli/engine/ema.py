"""Exponential moving average of the weights (SimREC: alpha 0.9997, warm start (s+1)/(s+10))."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps an averaged copy of a model; its state is checkpointed so resume continues the same average."""

    def __init__(self, model: nn.Module, alpha: float, buffer_ema: bool) -> None:
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.alpha = alpha
        self.buffer_ema = buffer_ema
        self.updates = 0
        self._parameter_names = {name for name, _ in self.module.named_parameters()}

    def decay(self) -> float:
        return min(self.alpha, (self.updates + 1) / (self.updates + 10))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Average the floating-point weights (and buffers with `buffer_ema`); copy the rest.

        One foreach call for all averaged tensors: a loop of per-tensor ops cost more than the fused optimizer step.
        """
        decay = self.decay()
        self.updates += 1
        source = model.state_dict()
        averages, values = [], []
        for name, average in self.module.state_dict().items():
            value = source[name].detach()
            is_buffer = name not in self._parameter_names
            if not average.dtype.is_floating_point or (is_buffer and not self.buffer_ema):
                average.copy_(value)
            else:
                averages.append(average)
                values.append(value)
        torch._foreach_lerp_(averages, values, 1 - decay)

    def state_dict(self) -> dict:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
