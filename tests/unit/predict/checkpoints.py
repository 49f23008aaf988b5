"""Checkpoints of tiny models at random initialisation, written in the engine's format, for predict/export tests."""

from __future__ import annotations

from pathlib import Path

import torch

from simrec_cli.engine.checkpoint import FORMAT_VERSION, KIND, atomic_save
from simrec_cli.models import build_model
from simrec_cli.settings import Settings, load_settings, settings_to_dict
from tests.e2e.conftest import TINY

WORDS = ["PAD", "UNK", "CLS", "the", "big", "small", "red", "blue", "green", "circle", "square", "left", "right"]


def tiny_settings(*overrides: str) -> Settings:
    return load_settings("synthetic-tiny", [*TINY, *overrides])


def write_checkpoint(path: Path, settings: Settings, words: list[str] = WORDS, seed: int = 0) -> Path:
    """A checkpoint `simrec predict`/`export` accept, holding a randomly initialised model."""
    torch.manual_seed(seed)
    model = build_model(settings.model, vocab_size=len(words))
    payload = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "ema": None,
        "epoch": 0,
        "settings": settings_to_dict(settings),
        "vocabulary": list(words),
    }
    atomic_save(payload, path)
    return path
