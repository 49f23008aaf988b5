"""What every prepare path writes (annotations, masks, vocabulary, vectors, summary) and its summary.

The REFER datasets, flickr/vg/merge and the synthetic generator all end here, so a prepared dataset looks
the same whatever it came from, and everything is computed before the first file is replaced.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simrec_cli.data.annotations import Annotations, SplitCounts, count_split
from simrec_cli.data.masks import mask_store_json
from simrec_cli.data.objects import objects_json
from simrec_cli.data.text import Vocabulary, distinct_sentences, tokenize
from simrec_cli.data.vectors import load_word_vectors
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.reporting import Reporter
from simrec_cli.settings import DatasetSettings
from simrec_cli.storage.outputs import OutputFile, Outputs

# Widely quoted expression counts of the standard evaluation splits, checked after every prepare.
EXPECTED_EXPRESSIONS: dict[tuple[str, str], dict[str, int]] = {
    ("refcoco", "unc"): {"val": 10834, "testA": 5657, "testB": 5095},
    ("refcoco+", "unc"): {"val": 10758, "testA": 5726, "testB": 4889},
    ("refcocog", "umd"): {"val": 4896, "test": 9602},
}


@dataclass
class PrepareSummary:
    """What prepare-data produced: per-split counts, the files written, and anything the user should know."""

    dataset: str
    output_root: Path
    ann_path: Path
    splits: dict[str, SplitCounts]
    vocab_size: int
    split_by: str | None = None
    mask_path: Path | None = None
    objects_path: Path | None = None
    vectors_path: Path | None = None
    vector_coverage: int | None = None
    skipped: int = 0
    removed_images: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "split_by": self.split_by,
            "annotations": str(self.ann_path),
            "masks": str(self.mask_path) if self.mask_path else None,
            "objects": str(self.objects_path) if self.objects_path else None,
            "vectors": str(self.vectors_path) if self.vectors_path else None,
            "vector_coverage": self.vector_coverage,
            "vocab_size": self.vocab_size,
            "skipped": self.skipped,
            "removed_images": self.removed_images,
            "splits": {split: counts.to_dict() for split, counts in self.splits.items()},
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class PreparedObjects:
    """Every object of each image (referred or not) as `{image key: [[x, y, w, h, category], ...]}`."""

    rows: dict[str, list[list[float]]]
    category_names: dict[int, str]


def output_settings(dataset: str, output_root: Path) -> DatasetSettings:
    """The settings a later command will use to find what is written under `output_root`."""
    return DatasetSettings(name=dataset, data_root=output_root)


def prepared_files(settings: DatasetSettings, option: str) -> dict[str, OutputFile]:
    """Every file a preparation may write (or remove as stale), as outputs named by `option`."""
    return {
        "annotations": OutputFile(settings.resolved_ann_path(), "annotations file", option),
        "masks": OutputFile(settings.resolved_mask_path(), "masks file", option),
        "objects": OutputFile(settings.resolved_objects_path(), "objects file", option),
        "vectors": OutputFile(settings.resolved_vectors_path(), "word vectors file", option),
        "vocabulary": OutputFile(settings.resolved_vocab_path(), "vocabulary file", option),
        "summary": OutputFile(settings.resolved_summary_path(), "summary file", option),
    }


def dataset_files(settings: DatasetSettings) -> list[Path]:
    """The files of a prepared dataset (what evaluation and training read of it)."""
    return [file.path for file in prepared_files(settings, "").values()]


def check_prepared_outputs(dataset: str, output_root: Path, option: str) -> None:
    """Refuse, before any work, an output root where one of the prepared files could not be written."""
    Outputs(*prepared_files(output_settings(dataset, output_root), option).values())


def _empty_sentence_warning(anns: Annotations, tokenized: dict[str, list[str]]) -> str | None:
    empty = [(split, s) for split, entries in anns.items() for e in entries for s in e["refs"] if not tokenized[s]]
    if not empty:
        return None
    split, example = empty[0]
    example_text = f"e.g. {quoted(example)} in {split}"
    return f"{len(empty)} expressions have no words after tokenization ({example_text}); they are kept"


def write_prepared(
    dataset: str,
    output_root: Path,
    anns: Annotations,
    *,
    masks: dict[int | str, dict] | None,
    word_vectors: str | None,
    reporter: Reporter,
    split_by: str | None = None,
    skipped: int = 0,
    removed_images: int = 0,
    objects: PreparedObjects | None = None,
    outputs: Outputs | None = None,
) -> PrepareSummary:
    """Write annotations, masks, vocabulary, vectors and summary for `dataset` under `output_root`.

    Given `outputs`, the files join that command's outputs (committed with them); otherwise they are committed
    here, all together. A dataset without a single entry is refused: it would only fail later, in train or eval,
    far from its cause.
    """
    if not any(anns.values()):
        splits = f"{dataset} is prepared into the splits {', '.join(anns)}" if anns else "it names no split"
        raise SimrecError(f"no split of {dataset} holds an entry: nothing to prepare", f"check the input: {splits}")
    settings = output_settings(dataset, output_root)
    files = prepared_files(settings, "--output-dir")
    tokenized = {sentence: tokenize(sentence) for sentence in distinct_sentences(anns)}  # each sentence once
    vocab = Vocabulary.from_tokenized(tokenized.values())
    vectors = load_word_vectors(word_vectors, vocab.words, reporter) if word_vectors else None
    expected = EXPECTED_EXPRESSIONS.get((settings.stem, split_by or ""), {})
    summary = PrepareSummary(
        dataset=dataset,
        output_root=output_root,
        ann_path=files["annotations"].path,
        splits={split: count_split(entries, expected.get(split)) for split, entries in anns.items()},
        vocab_size=len(vocab),
        split_by=split_by,
        skipped=skipped,
        removed_images=removed_images,
    )
    for split, counts in summary.splits.items():
        if not counts.as_expected:
            summary.warnings.append(
                f"{split}: {counts.expressions} expressions, the published {dataset} ({split_by}) split has "
                f"{counts.expected_expressions}; check that the REFER files are complete and the right version"
            )
    empty_warning = _empty_sentence_warning(anns, tokenized)
    if empty_warning:
        summary.warnings.append(empty_warning)

    written = ["annotations", "vocabulary", "summary"]
    stale = []
    if masks is not None:
        summary.mask_path = files["masks"].path
        written.append("masks")
    if objects is not None:
        summary.objects_path = files["objects"].path
        written.append("objects")
    elif files["objects"].path.exists():
        stale.append("objects")  # objects of an earlier preparation would describe other images
    vocab_path = files["vocabulary"].path
    if vectors is not None:
        summary.vectors_path = files["vectors"].path
        summary.vector_coverage = int((vectors != 0).any(axis=1).sum())
        written.append("vectors")
    elif files["vectors"].path.exists() and not (vocab_path.is_file() and Vocabulary.load(vocab_path) == vocab):
        stale.append("vectors")  # vectors of an older vocabulary would give words the wrong rows
        summary.warnings.append(f"removed {files['vectors'].path}: it belonged to a different vocabulary")
    with contextlib.nullcontext(outputs) if outputs is not None else Outputs() as staging:
        staging.add(*(files[name] for name in written + stale))
        staging.write_json(files["annotations"], anns)
        if masks is not None:
            staging.write_json(files["masks"], mask_store_json(masks))
        if objects is not None:
            staging.write_json(files["objects"], objects_json(objects.rows, objects.category_names))
        if vectors is not None:
            staging.write(files["vectors"], lambda handle: np.save(handle, vectors), binary=True)
        staging.write_json(files["vocabulary"], vocab.to_json())
        staging.write_json(files["summary"], summary.to_dict())
        for name in stale:
            staging.remove(files[name])
    return summary
