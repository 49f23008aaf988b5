"""Learning rate per iteration: linear warmup, then cosine or step decay (SimREC's schedules).

The rate is a pure function of the global step, so resuming needs nothing but the step.
"""

from __future__ import annotations

import bisect
import math

import torch

from simrec_cli.settings.train import TrainSettings


class LrSchedule:
    """Sets the optimizer's learning rate for each global step."""

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainSettings, steps_per_epoch: int) -> None:
        self.optimizer = optimizer
        self.train = train
        self.steps_per_epoch = max(1, steps_per_epoch)

    def lr_at(self, step: int) -> float:
        train = self.train
        warmup_steps = train.warmup_epochs * self.steps_per_epoch
        if step < warmup_steps:
            return train.warmup_lr + (train.base_lr - train.warmup_lr) * step / warmup_steps
        if train.scheduler.name == "step":
            passed = bisect.bisect_right(train.scheduler.decay_epochs, step / self.steps_per_epoch)
            return train.base_lr * train.scheduler.lr_decay_rate**passed
        total_steps = train.epochs * self.steps_per_epoch
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return train.min_lr + 0.5 * (train.base_lr - train.min_lr) * (1 + math.cos(math.pi * progress))

    def apply(self, step: int) -> float:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr
