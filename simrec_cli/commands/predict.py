"""`simrec predict`: answer expressions on your own images with a trained checkpoint."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.text import Text

from simrec_cli.commands.common import (
    DEVICE_OPTION,
    HALF_OPTION,
    PRECISION_OPTION,
    RUNTIME_OPTION,
    chosen_precision,
    guarded,
    report_error,
)
from simrec_cli.console import RichReporter, error_console, fitted_table, print_table, state
from simrec_cli.engine.checkpoint_paths import newest_checkpoint, require_model_file
from simrec_cli.errors import EXIT_SOME_FAILED, SimrecError, quoted
from simrec_cli.interruption import between_items
from simrec_cli.predict.defaults import DEFAULT_BATCH_SIZE
from simrec_cli.reporting import Reporter

if TYPE_CHECKING:
    from simrec_cli.predict.predictor import PredictionResult
    from simrec_cli.predict.sources import ImageRequest

T = TypeVar("T")


class JsonModeReporter(RichReporter):
    """Keeps stdout for the JSON lines: messages go to stderr, and there are no progress bars or tables."""

    def info(self, message: str) -> None:
        if not state.quiet:
            error_console.print(message)

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
        yield from between_items(items)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        return None


def _requests(source: str | None, expressions: list[str] | None, pairs: Path | None) -> list[ImageRequest]:
    from simrec_cli.predict.sources import requests_from_pairs, requests_from_source

    if pairs is not None:
        if source is not None or expressions:
            raise SimrecError("give either SOURCE EXPRESSION... or --pairs FILE, not both", "drop one of them")
        return requests_from_pairs(pairs)
    if source is None:
        raise SimrecError("no image given", 'run e.g. simrec predict photo.jpg "the dog on the left"')
    return requests_from_source(source, expressions or [])


def _print_table(results: list[PredictionResult], with_masks: bool) -> None:
    """The answers, with long paths and expressions cut in the middle so the numbers always show in full."""
    columns = ["image", "expression", "box (x1, y1, x2, y2)", "score", *(["mask area"] if with_masks else [])]
    rows: list[list[str | Text]] = []
    for result in results:
        if result.ok and result.box is not None and result.score is not None:
            cells: list[str | Text] = [", ".join(f"{value:.1f}" for value in result.box), f"{result.score:.3f}"]
            cells += [str(result.mask_area)] if with_masks else []
        else:
            cells = [Text(str(result.error), style="red"), "", *([""] if with_masks else [])]
        rows.append([str(result.image), result.expression, *cells])
    print_table(fitted_table("predictions", columns, rows, cut=["image", "expression"]))


@guarded
def command(
    source: str | None = typer.Argument(
        None, help="An image file, a folder of images, or a glob such as 'imgs/*.jpg'."
    ),
    expressions: list[str] | None = typer.Argument(
        None, help="One or more expressions, each answered on every image.", show_default=False
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        "-c",
        help="A best.pth/last.pth from `simrec train`, or an .onnx/.xml from `simrec export` (default: newest "
        "runs/**/best.pth).",
    ),
    pairs: Path | None = typer.Option(
        None, "--pairs", help="JSONL or CSV file of image/expression pairs (instead of SOURCE EXPRESSION...)."
    ),
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        "-o",
        help="Folder for the pictures and masks (default: runs/predict, predict2, ...); files already there are kept "
        "(a taken name gets _2, _3, ...).",
    ),
    json_lines: bool = typer.Option(False, "--json", help="Print one JSON object per answer instead of a table."),
    device: str = DEVICE_OPTION,
    precision: str = PRECISION_OPTION,
    runtime: str = RUNTIME_OPTION,
    half: bool = HALF_OPTION,
    no_save: bool = typer.Option(False, "--no-save", help="Write no pictures or masks; only print the answers."),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, "--batch-size", "-b", min=1, help="Expressions per forward pass."
    ),
) -> None:
    """Find the object each EXPRESSION describes in SOURCE: box, score (and mask), plus annotated pictures.

    Exit status 0 when every image was answered, 1 when some could not be read or their pictures not written
    (e.g. a full disk: the answers are still printed), 2 for a usage error.
    """
    from simrec_cli.predict.output import predictions_folder
    from simrec_cli.predict.sources import image_paths_among

    reporter: Reporter = JsonModeReporter() if json_lines else RichReporter()
    requests = _requests(source, expressions, pairs)
    for named in image_paths_among(expressions or []):
        reporter.warning(
            f"the expression {quoted(named)} is the path of an image; every expression is answered on {source}: to "
            "predict on several images, give a folder or a glob pattern such as 'imgs/*.jpg'"
        )
    if checkpoint is None:
        checkpoint = newest_checkpoint()
        reporter.info(f"using checkpoint {checkpoint} (the newest best.pth under runs/)")
    require_model_file(checkpoint)
    precision = chosen_precision(precision, half)
    folder: AbstractContextManager[Path | None] = nullcontext() if no_save else predictions_folder(output_dir)
    with folder as target:
        # The model code (torch) is imported only now that the inputs are known to exist.
        from simrec_cli.predict.predictor import Predictor, predict_requests

        rows = sum(len(request.expressions) for request in requests)
        predictor = Predictor.load(
            checkpoint, device=device, precision=precision, runtime=runtime, rows=rows, reporter=reporter
        )
        reporter.info(predictor.runtime.describe())
        started = time.perf_counter()
        results: list[PredictionResult] = []
        for result in predict_requests(predictor, requests, target, batch_size=batch_size, reporter=reporter):
            results.append(result)
            if json_lines:
                sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False) + "\n")
                sys.stdout.flush()
    failed_images = {result.image for result in results if not result.ok}
    if not json_lines:
        _print_table(results, predictor.has_mask)
        elapsed = time.perf_counter() - started
        saved = f"; pictures in {target}" if target is not None else ""
        answered = sum(result.ok for result in results)
        images = f"{len(requests) - len(failed_images)} of {len(requests)} images answered"
        reporter.info(f"{answered} answers, {images} in {elapsed:.1f} s{saved}")
    _report_failures(results, len(requests))


def _report_failures(results: list[PredictionResult], images: int) -> None:
    """One error line for the images that could not be read and the pictures that could not be written, then
    exit status 1; the answers were all printed before."""
    problems, fixes = [], []
    failed = [result for result in results if not result.ok]
    if failed:
        count = len({result.image for result in failed})
        problems.append(f"{count} of {images} images could not be read (first: {failed[0].error})")
        fixes.append("the other images were answered")
    unsaved = [result for result in results if result.unsaved]
    if unsaved:
        count = len({result.image for result in unsaved})
        problems.append(f"the pictures of {count} of {images} images were not written: {unsaved[0].unsaved}")
        fixes.append("every answer was printed; free some space or choose another --output-dir")
    if problems:
        report_error(SimrecError("; ".join(problems), "; ".join(fixes)))
        raise typer.Exit(EXIT_SOME_FAILED)
