"""`simrec prepare-data`: turn downloaded annotations (or the built-in generator) into a prepared dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from simrec_cli.commands.common import guarded
from simrec_cli.console import RichReporter, console

if TYPE_CHECKING:
    from simrec_cli.data.prepared import PrepareSummary


def _summary_table(summary: PrepareSummary) -> Table:
    split_by = f" ({summary.split_by})" if summary.split_by else ""
    table = Table(title=f"{summary.dataset}{split_by}: {summary.ann_path}")
    table.add_column("split", style="bold cyan")
    for column in ("images", "objects", "expressions", "expected"):
        table.add_column(column, justify="right")
    for split, counts in summary.splits.items():
        expected = "" if counts.expected_expressions is None else f"{counts.expected_expressions:,}"
        style = "" if counts.as_expected else "yellow"
        table.add_row(
            split, f"{counts.images:,}", f"{counts.objects:,}", f"{counts.expressions:,}", expected, style=style
        )
    return table


@guarded
def command(
    dataset: str = typer.Option(
        ...,
        "--dataset",
        "-d",
        help="refcoco, refcoco+, refcocog, refclef (referit), flickr, vg, merge or synthetic.",
    ),
    data_root: Path = typer.Option(
        Path("./data"),
        "--data-root",
        help="Holds <dataset>/instances.json + refs(<split-by>).p (REFER), anns/ and the images under images/<folder>/ "
        "(coco, refclef, flickr, VG: SimREC's data/ layout; see docs/data.md).",
    ),
    split_by: str | None = typer.Option(
        None,
        "--split-by",
        help="REFER split: refcoco unc|google, refcoco+ unc, refcocog umd|google, refclef berkeley|unc.",
    ),
    generate_mask: bool = typer.Option(
        False, "--generate-mask", help="REFER: also write the masks (one COCO-RLE file) for segmentation."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="Where anns/ and masks/ go (default: the data root)."
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-missing",
        "--skip-invalid",
        help="Leave out the refs or entries whose image is missing (or, REFER, whose annotation or box is invalid), "
        "instead of failing.",
    ),
    word_vectors: str | None = typer.Option(
        None,
        "--word-vectors",
        help="GloVe/word2vec .txt, a .npy matrix with a word list beside it, or a spaCy pipeline with vectors.",
    ),
    num_images: int | None = typer.Option(None, "--num-images", help="synthetic: how many images \\[default: 2000]."),
    seed: int | None = typer.Option(
        None, "--seed", help="synthetic: the seed (same seed, same dataset) \\[default: 0]."
    ),
    image_size: int | None = typer.Option(
        None, "--image-size", help="synthetic: image side in pixels \\[default: 160]."
    ),
    flickr: Path | None = typer.Option(
        None,
        "--flickr",
        help="flickr: SimREC's flickr.json \\[default: <data-root>/anns/flickr.json]; merge: a flickr.json to include.",
    ),
    vg: Path | None = typer.Option(
        None,
        "--vg",
        help="vg: a vg.json in SimREC's format \\[default: <data-root>/anns/vg.json]; merge: a vg.json to include.",
    ),
) -> None:
    """Prepare a dataset (REFER, Flickr30k, Visual Genome, merge, synthetic) in SimREC's format, with its vocabulary.

    Every image the annotations refer to must lie under <data-root>/images/ where training reads it; a missing one
    is reported before anything is written. An option the dataset does not read is refused.

    Examples:
      simrec prepare-data --dataset synthetic --data-root data
      simrec prepare-data --dataset refcoco --data-root data --generate-mask --word-vectors glove.840B.300d.txt
      simrec prepare-data --dataset flickr --data-root data --flickr downloads/flickr.json
      simrec prepare-data --dataset vg --data-root data --vg downloads/vg.json
      simrec prepare-data --dataset merge --data-root data --flickr downloads/flickr.json --vg downloads/vg.json
    """
    from simrec_cli.data.prepare import prepare_dataset

    reporter = RichReporter()
    summary = prepare_dataset(
        dataset,
        data_root,
        split_by=split_by,
        generate_mask=generate_mask,
        output_dir=output_dir,
        skip_invalid=skip_invalid,
        word_vectors=word_vectors,
        reporter=reporter,
        num_images=num_images,
        seed=seed,
        image_size=image_size,
        flickr=flickr,
        vg=vg,
    )
    console.print(_summary_table(summary))
    extras = [f"vocabulary {summary.vocab_size:,} words"]
    if summary.mask_path:
        extras.append(f"masks {summary.mask_path}")
    if summary.vectors_path:
        extras.append(f"vectors {summary.vectors_path} ({summary.vector_coverage:,} words covered)")
    if summary.removed_images:
        extras.append(f"{summary.removed_images:,} evaluation images removed")
    console.print("; ".join(extras))
    for warning in summary.warnings:
        reporter.warning(warning)
