"""A checkpoint in PyTorch: eager, or compiled for a few batch sizes (models/inference.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from simrec_cli.models.inference import InferenceModel
from simrec_cli.runtimes.base import Runtime
from simrec_cli.settings import Settings


class TorchRuntime(Runtime):
    """An `InferenceModel` behind the `Runtime` interface; it takes images normalized by the checkpoint's mean/std."""

    name = "torch"

    def __init__(self, inference: InferenceModel, path: Path, settings: Settings) -> None:
        self.inference = inference
        self.path = path
        self.precision = inference.precision
        self.device = inference.device
        self.input_mean = tuple(settings.train.data.mean)
        self.input_std = tuple(settings.train.data.std)

    @property
    def has_mask_head(self) -> bool:
        return self.inference.has_mask_head

    def __call__(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return self.inference(images, tokens, image_index=image_index)

    @property
    def compiled(self) -> bool:
        return self.inference.compiled

    def compile(self, batch_sizes: Sequence[int], input_shape: Sequence[int], token_length: int) -> None:
        self.inference.compile(batch_sizes, input_shape, token_length)

    @property
    def where(self) -> str:
        return f"torch {'compiled' if self.compiled else 'eager'}"
