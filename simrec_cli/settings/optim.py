"""`optim.*` settings: the optimizer (SimREC: Adam, betas (0.9, 0.98), eps 1e-9, lr = train.base_lr)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simrec_cli.settings.base import StrictModel


class OptimSettings(StrictModel):
    """Optimizer choice and its hyper-parameters; the learning rate itself comes from `train.base_lr`."""

    name: Literal["adam", "adamw", "sgd"] = Field("adam", description="The optimizer.")
    betas: tuple[float, float] = Field((0.9, 0.98), description="Adam and AdamW: the moment decay rates.")
    eps: float = Field(1e-9, gt=0, description="Adam and AdamW: the term added to the denominator.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled in AdamW).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD: the momentum.")
