"""`optim.*` settings: the optimizer (SimREC: Adam, betas (0.9, 0.98), eps 1e-9, lr = train.base_lr)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simrec_cli.settings.base import StrictModel


class OptimSettings(StrictModel):
    """Optimizer choice and its hyper-parameters; the learning rate itself comes from `train.base_lr`."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-9, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
