"""An original SimREC checkpoint made self-contained: its weights, the settings of a preset, the vocabulary the
original rebuilt from the annotations every time, and where all of it came from.

The original never saved its vocabulary: the rows of the word embedding follow the words of the dataset's
annotation file in the order it meets them (every split in file order, then entries, sentences, words). The
same annotations give the same vocabulary here (`Vocabulary.from_annotations`), so the embedding row count is
checked against it before anything else: another file gives another count, or worse, the same count in
another order, which is why the annotation file's hash is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simrec_cli import __version__
from simrec_cli.data.annotations import load_annotations
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import FORMAT_VERSION, KIND, atomic_save, build_inference_model, load_weights_strict
from simrec_cli.errors import SimrecError
from simrec_cli.importing.original import OriginalCheckpoint, file_sha256, read_original_checkpoint
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import Settings, load_settings, settings_to_dict

EMBEDDING = "lang_encoder.embedding.weight"


@dataclass(frozen=True)
class ImportedCheckpoint:
    """A simrec checkpoint's content built from an original one, and what it was built from."""

    payload: dict[str, Any]
    source: OriginalCheckpoint
    settings: Settings
    vocabulary: Vocabulary


def import_settings(
    preset: str | Path, overrides: Sequence[str] = (), data_root: Path | None = None, dataset: str | None = None
) -> Settings:
    """The preset's settings with the overrides, the data folder and the dataset the model was trained on."""
    extra = [*([f"dataset.data_root={data_root}"] if data_root is not None else []),
             *([f"dataset.name={dataset}"] if dataset is not None else [])]  # fmt: skip
    return load_settings(preset, [*overrides, *extra])


def _check_embedding(
    source: OriginalCheckpoint, vocabulary: Vocabulary, annotations: Path, settings: Settings, settings_from: str
) -> None:
    """The embedding must have one row per word of the vocabulary the annotations give, and the width the
    settings give a word."""
    embedding = source.state_dict.get(EMBEDDING)
    if embedding is None or embedding.dim() != 2:
        raise SimrecError(f"{source.path} holds no word embedding ({EMBEDDING})",
                          "it is no SimREC or MCN checkpoint; give the model's full checkpoint")  # fmt: skip
    rows, width = (int(size) for size in embedding.shape)
    if width != settings.model.language_encoder.word_embed_size:
        raise SimrecError(
            f"{source.path}: its word embedding has {width} dims, model.language_encoder.word_embed_size of "
            f"{settings_from} is {settings.model.language_encoder.word_embed_size}",
            "import it with the preset (and model.* overrides) it was trained with",
        )
    if rows != len(vocabulary):
        raise SimrecError(
            f"{source.path}: its word embedding has {rows:,} rows, the vocabulary the original builds from "
            f"{annotations} has {len(vocabulary):,} words",
            "use the annotations the model was trained with (--data-root, --dataset or dataset.ann_path=FILE: "
            "the same anns JSON the original toolbox read)",
        )


def provenance(source: OriginalCheckpoint, annotations: Path, dataset: str) -> dict[str, Any]:
    """Where an imported checkpoint came from: enough to tell later which files it was built from."""
    return {
        "source": source.path.name,
        "source_sha256": source.sha256,
        "source_format": source.layout,
        "source_epoch": source.epoch,
        "source_entries": list(source.entries),
        "annotations": str(annotations),
        "annotations_sha256": file_sha256(annotations),
        "dataset": dataset,
        "imported_by": f"simrec {__version__}",
    }


def import_original(
    path: Path, settings: Settings, *, settings_from: str = "the settings", reporter: Reporter | None = None
) -> ImportedCheckpoint:
    """Read an original checkpoint and build the simrec checkpoint for `settings` (in memory).

    Refuses, in one line each: a file that is not an original checkpoint, an embedding whose rows are not the
    vocabulary's size, and weights that do not fit the model the settings describe (a missing head, another
    backbone, another width); `settings_from` names where the settings came from (`--preset X`).
    """
    reporter = reporter or NullReporter()
    source = read_original_checkpoint(path)
    dataset = settings.dataset
    annotations = dataset.resolved_ann_path()
    vocabulary = Vocabulary.from_annotations(load_annotations(annotations, dataset.name))
    _check_embedding(source, vocabulary, annotations, settings, settings_from)
    model = build_inference_model(settings, vocabulary)
    load_weights_strict(
        model,
        source.state_dict,
        source.path,
        model_named=f"the {settings.model.name} model with a {settings.model.visual_backbone.name} backbone that "
        f"{settings_from} describes",
        mismatch_hint="import it with the preset (and model.* overrides) it was trained with, e.g. "
        "--preset refcoco-scratch for SimREC or --preset mcn-refcoco-scratch for MCN",
    )
    payload = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "ema": None,  # the original saved its EMA weights as the model's
        "epoch": source.epochs_done,
        "settings": settings_to_dict(settings),
        "vocabulary": vocabulary.to_list(),
        "metrics": None,
        "provenance": provenance(source, annotations, dataset.name),
    }
    reporter.info(
        f"{path}: original SimREC checkpoint ({source.layout}, {len(source.state_dict)} weights, "
        f"{source.epochs_done} epochs), vocabulary of {len(vocabulary):,} words from {annotations}"
    )
    return ImportedCheckpoint(payload, source, settings, vocabulary)


def write_imported(imported: ImportedCheckpoint, output: Path) -> None:
    """Write the checkpoint atomically: a kill leaves the old file or the new one, never half of one."""
    atomic_save(imported.payload, output)
