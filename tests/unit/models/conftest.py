"""Shared fixtures: tiny model settings and one hand-made batch of coloured boxes (no data package needed)."""

from __future__ import annotations

import pytest
import torch

from simrec_cli.models import build_model
from simrec_cli.settings import ModelSettings, load_settings

VOCAB = 12
IMAGE_SIZE = 128
# (colour word id, RGB, box x1, y1, x2, y2 in pixels): one object per image, referred to by its colour.
OBJECTS = [
    (3, (1.0, 0.1, 0.1), (10, 14, 58, 70)),
    (4, (0.1, 0.9, 0.1), (60, 30, 120, 80)),
    (5, (0.1, 0.2, 1.0), (30, 70, 90, 122)),
    (6, (0.9, 0.9, 0.1), (70, 8, 110, 60)),
]


def tiny_model_settings(*overrides: str) -> ModelSettings:
    """The synthetic-tiny preset's model, narrower still where the preset allows, for fast CPU tests."""
    return load_settings("synthetic-tiny", list(overrides)).model


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def coloured_box_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """images [4, 3, 128, 128], tokens [4, 15], normalized cx/cy/w/h targets [4, 4], masks [4, 1, 128, 128]."""
    generator = torch.Generator().manual_seed(0)
    images = 0.5 + 0.1 * torch.rand(len(OBJECTS), 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    tokens = torch.zeros(len(OBJECTS), 15, dtype=torch.long)
    targets = torch.zeros(len(OBJECTS), 4)
    masks = torch.zeros(len(OBJECTS), 1, IMAGE_SIZE, IMAGE_SIZE)
    for index, (word, colour, (x1, y1, x2, y2)) in enumerate(OBJECTS):
        images[index, :, y1:y2, x1:x2] = torch.tensor(colour)[:, None, None]
        masks[index, 0, y1:y2, x1:x2] = 1.0
        tokens[index, :3] = torch.tensor([2, word, 7])
        targets[index] = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / IMAGE_SIZE
    return images, tokens, targets, masks


def train_steps(model: torch.nn.Module, steps: int, lr: float = 2e-3) -> list[float]:
    """Adam on the coloured-box batch; returns the loss of every step."""
    images, tokens, targets, masks = coloured_box_batch()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(images, tokens, targets=targets, masks=masks)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="session")
def trained_tiny_simrec() -> tuple[torch.nn.Module, list[float]]:
    """A tiny SimREC overfitted on the coloured-box batch (shared by the overfit and inference tests)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model(tiny_model_settings(), VOCAB)
    losses = train_steps(model, 120)
    return model.eval(), losses
