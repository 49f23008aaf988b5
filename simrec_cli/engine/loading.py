"""Load a model for inference in the precision asked for: what eval, predict and serving share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.models.inference import InferenceModel, prepare_for_inference, store_autocast_weights
from simrec_cli.models.precision import resolve_precision
from simrec_cli.reporting import Reporter
from simrec_cli.settings import Settings


def load_for_inference(
    path: Path,
    device: torch.device,
    precision: str = "auto",
    *,
    reporter: Reporter | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[InferenceModel, Settings, Vocabulary]:
    """The checkpoint's model with BatchNorm folded and channels_last weights, set to run in `precision` (the
    weights of the layers autocast runs in bf16 stored in bf16). `payload`: the checkpoint already in memory."""
    choice = resolve_precision(precision, device)
    model, settings, vocabulary = load_model_from_checkpoint(path, device, reporter=reporter, payload=payload)
    prepared = prepare_for_inference(model, fold_bn=True, channels_last=True, in_place=True)
    store_autocast_weights(prepared, choice.autocast_dtype)
    return InferenceModel(prepared, device, choice), settings, vocabulary
