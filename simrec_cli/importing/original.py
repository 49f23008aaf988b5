"""Checkpoint files of the original SimREC toolbox: what they hold and which of its two layouts wrote them.

The original saves `{'epoch', 'state_dict', 'optimizer', 'scheduler', 'lr'}` (any of the last three may be
missing in released files). Its first layout (v1, April 2022) saved the DistributedDataParallel wrapper's
state_dict, so every key starts with `module.`, and stored the number of finished epochs; the current one (v2)
saves the bare model's state_dict and the 0-based index of the last finished epoch. Module names are otherwise
the same, and the same as simrec's. Only the weights are read: the optimizer and scheduler belong to the
original's parameter groups and schedule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from simrec_cli.engine.checkpoint import KIND, load_checkpoint_file
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.models.weights import DDP_PREFIX, strip_ddp_prefix

ORIGINAL_FILES = "give a checkpoint the original SimREC toolbox wrote (last_checkpoint.pth, det_best_model.pth, ...)"
HASH_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class OriginalCheckpoint:
    """The weights of an original checkpoint (without `module.`), its layout and its bookkeeping entries."""

    path: Path
    sha256: str
    layout: str  # "v1" (DDP `module.` prefix, epoch = epochs done) or "v2" (bare names, epoch = last index)
    state_dict: dict[str, torch.Tensor]
    epoch: int | None
    entries: tuple[str, ...]  # the top-level keys of the file, e.g. ('epoch', 'state_dict', 'optimizer', ...)

    @property
    def epochs_done(self) -> int:
        """Finished epochs, whichever convention the layout stored."""
        if self.epoch is None:
            return 0
        return self.epoch if self.layout == "v1" else self.epoch + 1


def _epoch(content: Mapping[str, Any], path: Path) -> int | None:
    value = content.get("epoch")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SimrecError(f"{path}: its epoch is {quoted(value)}, not a count", "the file was edited; use another")
    return value


def read_original_checkpoint(path: Path) -> OriginalCheckpoint:
    """Read `path` safely (no code from it runs) and check that it is an original SimREC checkpoint."""
    path = Path(path)
    content = load_checkpoint_file(path, ORIGINAL_FILES)
    if isinstance(content, Mapping) and content.get("kind") == KIND:
        raise SimrecError(
            f"{path} is already a simrec checkpoint (it carries its settings and vocabulary)",
            "use it as it is with eval, predict, serve or export",
        )
    weights = content.get("state_dict") if isinstance(content, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        raise SimrecError(f"{path} holds no 'state_dict' of model weights, so it is no original SimREC checkpoint",
                          ORIGINAL_FILES)  # fmt: skip
    foreign = [str(key) for key, value in weights.items() if not isinstance(key, str) or not torch.is_tensor(value)]
    if foreign:
        raise SimrecError(f"{path}: its state_dict holds {quoted(foreign[0])}, which is no weight tensor",
                          "the file is damaged; use another")  # fmt: skip
    prefixed = sum(key.startswith(DDP_PREFIX) for key in weights)
    if prefixed not in (0, len(weights)):
        raise SimrecError(
            f"{path}: {prefixed} of its {len(weights)} weights carry the `module.` prefix and the others do not",
            "the file was assembled from two models; use the file as the original toolbox wrote it",
        )
    return OriginalCheckpoint(
        path=path,
        sha256=file_sha256(path),
        layout="v1" if prefixed else "v2",
        state_dict=strip_ddp_prefix(weights),
        epoch=_epoch(content, path),
        entries=tuple(str(key) for key in content),
    )
