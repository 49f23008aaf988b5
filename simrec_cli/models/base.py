"""The calling convention SimREC and MCN share, so the engine, evaluator and predictor treat them alike.

Training: `model(images, tokens, targets=..., masks=...)` -> {"loss", "loss_det", "loss_seg"} (scalars).
Eval: `model(images, tokens)` -> {"boxes": [B, 5] (x1, y1, x2, y2, score) in input pixels} plus, for mask
models, {"masks": [B, H, W] probabilities}.
Either call takes `image_index` [B] when several expressions share an image: `images` then holds each image
once, row k of the tokens goes with images[image_index[k]], and the backbone runs once per image.
"""

from __future__ import annotations

import torch
from torch import nn


class GroundingModel(nn.Module):
    """Base of the two models: input checks, the training/eval dispatch and the input memory format."""

    input_stride = 32
    has_mask_head = False

    def __init__(self) -> None:
        super().__init__()
        # Set by `to_channels_last()`: images are converted before the backbone.
        self.channels_last_input = False

    def to_channels_last(self) -> GroundingModel:
        """Store conv weights channels_last and convert input images to it (faster convolutions on CPU)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last_input = True
        return self

    def forward(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        height, width = images.shape[-2:]
        if height % self.input_stride or width % self.input_stride:
            raise ValueError(f"image size {height}x{width} must be a multiple of {self.input_stride} on both sides")
        if image_index is not None and image_index.shape != tokens.shape[:1]:
            raise ValueError(f"image_index has shape {tuple(image_index.shape)}; it needs one entry per expression")
        if self.channels_last_input:
            images = images.contiguous(memory_format=torch.channels_last)
        if not self.training:
            return self.infer(images, tokens, image_index)
        if targets is None:
            raise ValueError("training needs targets [B, 4] (normalized cx, cy, w, h); call model.eval() to predict")
        if self.has_mask_head and masks is None:
            raise ValueError("training a mask model needs masks [B, 1, H, W]")
        return self.losses(images, tokens, targets, masks, image_index)

    def visual_features(self, images: torch.Tensor, image_index: torch.Tensor | None) -> list[torch.Tensor]:
        """The backbone's maps, one row per expression (repeated from one pass per image)."""
        feats = self.visual_encoder(images)
        if image_index is None:
            return feats
        return [feat.index_select(0, image_index) for feat in feats]

    def infer(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Eval-mode outputs."""
        raise NotImplementedError

    def losses(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor | None,
        image_index: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Training-mode losses."""
        raise NotImplementedError
