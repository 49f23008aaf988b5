"""The complete `Settings` object and the checks that span namespaces."""

from __future__ import annotations

from pydantic import model_validator

from simrec_cli.errors import SimrecError
from simrec_cli.settings.base import StrictModel
from simrec_cli.settings.dataset import DatasetSettings
from simrec_cli.settings.model import ModelSettings
from simrec_cli.settings.optim import OptimSettings
from simrec_cli.settings.train import TrainSettings


class Settings(StrictModel):
    """Everything a run needs, in SimREC's four namespaces."""

    model: ModelSettings = ModelSettings()
    dataset: DatasetSettings = DatasetSettings()
    train: TrainSettings = TrainSettings()
    optim: OptimSettings = OptimSettings()

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        train = self.train
        if train.warmup_epochs >= train.epochs:
            raise ValueError(
                f"train.warmup_epochs ({train.warmup_epochs}) must be shorter than train.epochs ({train.epochs})"
            )
        if train.warmup_lr > train.base_lr:
            raise ValueError(f"train.warmup_lr ({train.warmup_lr}) must not exceed train.base_lr ({train.base_lr})")
        if train.min_lr > train.base_lr:
            raise ValueError(f"train.min_lr ({train.min_lr}) must not exceed train.base_lr ({train.base_lr})")
        if self.model.name == "mcn" and self.dataset.name in ("flickr", "vg", "merge"):
            raise ValueError(f"model mcn needs masks, and dataset {self.dataset.name} has none")
        return self

    def check_world_size(self, world_size: int) -> None:
        """Refuse a batch size that cannot be split evenly over `world_size` processes."""
        if self.train.batch_size % world_size:
            raise SimrecError(
                f"train.batch_size={self.train.batch_size} is not divisible by {world_size} processes",
                f"set train.batch_size to a multiple of {world_size}",
            )
