"""Shared fixtures: tiny model settings, a hand-made batch of coloured boxes and a batch of synthetic scenes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from simrec_cli.data.synthetic import render_scene
from simrec_cli.data.text import Vocabulary
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


@dataclass
class SceneBatch:
    """Scenes of the built-in synthetic generator with their first expression, as model inputs."""

    images: torch.Tensor  # [B, 3, 160, 160] in [0, 1]
    tokens: torch.Tensor  # [B, 15]
    targets: torch.Tensor  # [B, 4] normalized cx, cy, w, h of the named object
    masks: torch.Tensor  # [B, 1, 160, 160]
    vocab_size: int


def synthetic_scene_batch(seeds: range = range(4)) -> SceneBatch:
    scenes = [render_scene(seed) for seed in seeds]
    sentences = [scene.expressions[0][0] for scene in scenes]
    named = [scene.objects[scene.expressions[0][1]] for scene in scenes]
    vocab = Vocabulary.from_annotations({"train": [{"refs": sentences}]})
    size = scenes[0].image.shape[0]
    boxes = torch.tensor([obj.box for obj in named])
    return SceneBatch(
        images=torch.from_numpy(np.stack([scene.image for scene in scenes])).permute(0, 3, 1, 2).float() / 255,
        tokens=torch.from_numpy(np.stack([vocab.encode(sentence, 15)[0] for sentence in sentences])),
        targets=torch.cat((boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:]), dim=1) / size,
        masks=torch.from_numpy(np.stack([obj.mask[None] for obj in named])).float(),
        vocab_size=len(vocab),
    )


def train_steps(
    model: torch.nn.Module, steps: int, batch: tuple[torch.Tensor, ...] | None = None, lr: float = 2e-3
) -> list[float]:
    """Adam with a cosine decay on one batch (images, tokens, targets, masks; the coloured boxes by default).

    The decay lets the weights settle, so the BatchNorm running statistics of eval mode match the last steps.
    Returns the loss of every step.
    """
    images, tokens, targets, masks = batch if batch is not None else coloured_box_batch()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(images, tokens, targets=targets, masks=masks)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="session")
def trained_tiny_simrec() -> tuple[torch.nn.Module, list[float], SceneBatch]:
    """The synthetic-tiny SimREC overfitted on four synthetic scenes (shared by the overfit and inference tests)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    batch = synthetic_scene_batch()
    model = build_model(tiny_model_settings(), batch.vocab_size)
    losses = train_steps(model, 300, (batch.images, batch.tokens, batch.targets, batch.masks))
    return model.eval(), losses, batch
