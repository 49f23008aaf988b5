"""Which settings a resumed run uses: the checkpoint's, except for the few that may safely change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.settings import Settings, settings_from_dict, settings_to_dict

# Settings that do not change what is computed, only where data lives, how long to go on, and logging.
SAFE_RESUME_KEYS = frozenset(
    {
        "train.epochs",
        "train.output_dir",
        "train.device",
        "train.log_period",
        "train.save_period",
        "train.checkpoint_every_steps",
        "train.ddp.rendezvous_timeout",
        "train.log_image",
        "train.evaluation.eval_batch_size",
        "train.data.num_workers",
        "train.data.pin_memory",
        "train.auto_resume.enabled",
        "train.resume_path",
        "dataset.data_root",
        "dataset.ann_path",
        "dataset.image_path",
        "dataset.mask_path",
    }
)
# Derived from the word vectors at the start of a run, so a fresh preset cannot know it.
DERIVED_KEYS = frozenset({"model.language_encoder.word_embed_size"})


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def merge_for_resume(stored: Settings, requested: Settings, checkpoint: Path) -> Settings:
    """The stored settings with the safe keys taken from `requested`; any other difference is refused."""
    old, new = flatten(settings_to_dict(stored)), flatten(settings_to_dict(requested))
    for key, value in new.items():
        if key in SAFE_RESUME_KEYS or key in DERIVED_KEYS or old.get(key) == value:
            continue
        raise SimrecError(
            f"{key} is {quoted(old.get(key))} in {checkpoint} but {quoted(value)} now; "
            "a resumed run keeps its settings",
            f"drop that change, or start a new run with another train.output_dir (changeable: "
            f"{', '.join(sorted(k.split('.')[-1] for k in SAFE_RESUME_KEYS if k.startswith('train.e')))}, ...)",
        )
    merged = {**old, **{key: new[key] for key in SAFE_RESUME_KEYS if key in new}}
    return settings_from_dict(unflatten(merged), f"checkpoint {checkpoint}")


def checkpoint_in(run_dir_or_checkpoint: Path) -> Path:
    """`last.pth` of a run directory, or the checkpoint file itself."""
    path = Path(run_dir_or_checkpoint)
    if path.is_dir():
        candidate = path / "last.pth"
        if not candidate.is_file():
            raise SimrecError(f"{path} holds no last.pth", "give a run directory of `simrec train` or a .pth file")
        return candidate
    if not path.is_file():
        raise SimrecError(f"{path} does not exist", "give a run directory of `simrec train` or a .pth file")
    return path
