"""Checkpoint files: everything a run needs to resume, evaluate or predict, in one file.

A checkpoint is a plain dict of tensors and Python scalars/containers, so it loads with
`torch.load(weights_only=True)`; it is written to a temporary file in the same folder and renamed into
place, so a kill at any moment leaves either the old or the new file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.models import build_model
from simrec_cli.models.weights import compare_state_dict, refused_pickle, torch_load_safely
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.schemas.prepared import STORED_WORDS
from simrec_cli.settings import Settings, settings_from_dict
from simrec_cli.storage.atomic import atomic_write

FORMAT_VERSION = 1
KIND = "simrec-checkpoint"
INFERENCE_ENTRIES = ("model", "settings", "vocabulary", "epoch")  # what eval, predict and export read
RESUME_ENTRIES = ("optimizer", "global_step", "best_acc50", "best_epoch", "rng")  # and what resume reads too
COUNTERS = ("epoch", "global_step", "best_epoch")  # whole numbers of 0 or more


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """torch.save through a temporary sibling renamed over `path`: a kill leaves the old or the new file."""
    atomic_write(path, lambda handle: torch.save(payload, handle), binary=True)


def capture_rng() -> dict[str, Any]:
    """RNG states of python, numpy and torch in weights_only-loadable types."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


OWN_CHECKPOINTS = "use a last.pth or best.pth written by `simrec train`"


def load_checkpoint_file(path: Path, wanted: str = OWN_CHECKPOINTS) -> Any:
    """The content of a checkpoint file, loaded with `weights_only=True`; a truncated or foreign file, or a
    pickle that would call code, is refused in one line (`wanted` says which files to use instead)."""
    path = require_checkpoint_file(path)
    try:
        return torch_load_safely(path)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        refused = refused_pickle(path, exc, f"{wanted}, from a source you trust")
        if refused is not None:  # a pickle that builds objects by calling code: refused before anything ran
            raise refused from exc
        raise SimrecError(
            f"{path} is not a readable checkpoint (truncated, or not a PyTorch file): {type(exc).__name__}", wanted
        ) from exc


def original_checkpoint_hint(path: Path) -> str:
    """What to do with a checkpoint of the original SimREC toolbox where a simrec checkpoint is wanted."""
    return (
        f"convert it with `simrec import {path} --preset PRESET --data-root DATA -o model.pth` (`simrec eval` also "
        "takes it as it is with --preset and --data-root), or fine-tune from it with train.vl_pretrain_weight"
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a simrec checkpoint; anything else is refused with a line that says what it is."""
    payload = load_checkpoint_file(path)
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        if isinstance(payload, dict) and "state_dict" in payload:
            raise SimrecError(
                f"{path} holds bare model weights (an original SimREC checkpoint) without settings or vocabulary",
                original_checkpoint_hint(path),
            )
        raise SimrecError(f"{path} is not a simrec checkpoint", OWN_CHECKPOINTS)
    if not isinstance(payload.get("format_version", 0), int) or payload.get("format_version", 0) > FORMAT_VERSION:
        raise SimrecError(
            f"{path} was written by a newer simrec (format {quoted(payload['format_version'])})", "upgrade simrec"
        )
    require_entries(payload, INFERENCE_ENTRIES, path)
    return payload


def require_entries(payload: dict[str, Any], names: tuple[str, ...], path: Path) -> None:
    """Refuse a checkpoint that lacks any of `names` (a damaged or hand-assembled file), or whose counters among
    them are not counts, naming them."""
    missing = [name for name in names if payload.get(name) is None]
    if missing and payload.get("provenance"):
        raise SimrecError(
            f"{path} was imported from {payload['provenance'].get('source', 'an original checkpoint')} and holds "
            "weights only, no training state to resume",
            f"fine-tune from it: simrec train --preset PRESET train.vl_pretrain_weight={path}",
        )
    if missing:
        raise SimrecError(
            f"{path} lacks {', '.join(missing)}: the file is damaged or was assembled by hand",
            "use a last.pth or best.pth as `simrec train` wrote it",
        )
    for name in (name for name in names if name in COUNTERS):
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SimrecError(
                f"{path}: its {name} is {quoted(value)}, not a count",
                "the file was edited or assembled by hand; use a last.pth or best.pth as `simrec train` wrote it",
            )


def checkpoint_settings(payload: dict[str, Any], path: Path) -> Settings:
    if not isinstance(payload["settings"], dict):
        raise SimrecError(f"{path} holds no settings mapping", "use a last.pth or best.pth as `simrec train` wrote it")
    return settings_from_dict(payload["settings"], f"checkpoint {path}")


def checkpoint_vocabulary(payload: dict[str, Any], path: Path) -> Vocabulary:
    words = STORED_WORDS.check(payload["vocabulary"], f"{path} (its vocabulary)")
    try:
        return Vocabulary.from_list(words)
    except SimrecError as error:  # its own hint speaks of prepare-data's file, not of a checkpoint
        raise SimrecError(f"{path}: {error.message}", "the file is damaged; use another") from error


def build_inference_model(settings: Settings, vocabulary: Vocabulary) -> nn.Module:
    """The architecture described by a checkpoint, without loading any pretrained file from disk."""
    model_settings = settings.model.model_copy(deep=True)
    model_settings.visual_backbone.pretrained = False
    return build_model(model_settings, vocab_size=len(vocabulary), reporter=NullReporter())


HAND_MADE_HINT = (
    "the file's weights and settings disagree: it was edited or assembled by hand; use a checkpoint as "
    "`simrec train` wrote it"
)


def load_weights_strict(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    path: Path,
    *,
    model_named: str = "the model its settings describe",
    mismatch_hint: str = HAND_MADE_HINT,
) -> None:
    """Load every entry, or refuse naming the first few that do not fit (with both shapes) and how many.

    The refusal says that the weights do not fit `model_named`, and how to fix it (`mismatch_hint`).
    """
    if not isinstance(state_dict, dict) or not all(torch.is_tensor(value) for value in state_dict.values()):
        raise SimrecError(f"{path} holds no weights where its model's should be", "the file is damaged; use another")
    report = compare_state_dict(model, state_dict, f"weights in {path}")
    if not report.complete:
        raise SimrecError(f"{report.summary('fit', shown=3)} of {model_named}", mismatch_hint)
    broken = [name for name, value in state_dict.items() if value.is_floating_point() and not value.isfinite().all()]
    if broken:
        raise SimrecError(
            f"{path}: {len(broken)} weight tensors hold NaN or infinity (first: {broken[0]})",
            "the run diverged before this was saved; use an earlier checkpoint",
        )
    model.load_state_dict(state_dict, strict=True)


def load_model_from_checkpoint(
    path: Path,
    device: torch.device | str = "cpu",
    *,
    use_ema: bool = True,
    reporter: Reporter | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[nn.Module, Settings, Vocabulary]:
    """Model (eval mode, on `device`), settings and vocabulary from one checkpoint: all predict/eval need.

    `payload`, when given, is the checkpoint's content already in memory (an original SimREC checkpoint
    imported on the fly); `path` then only names it.
    """
    reporter = reporter or NullReporter()
    payload = read_checkpoint(Path(path)) if payload is None else payload
    settings = checkpoint_settings(payload, Path(path))
    vocabulary = checkpoint_vocabulary(payload, Path(path))
    model = build_inference_model(settings, vocabulary)
    ema = use_ema and bool(payload.get("ema"))
    load_weights_strict(model, payload["ema"]["weights"] if ema else payload["model"], Path(path))
    source = "EMA" if ema else "raw"
    reporter.info(f"loaded {path} (epoch {payload['epoch']}, {source} weights, vocabulary {len(vocabulary)} words)")
    if payload.get("provenance"):
        origin = payload["provenance"]
        reporter.info(
            f"imported from {origin.get('source')} (original SimREC checkpoint {origin.get('source_format')}, "
            f"sha256 {str(origin.get('source_sha256'))[:12]}...) with the vocabulary of {origin.get('annotations')}"
        )
    return model.to(device).eval(), settings, vocabulary
