"""`write_report`: an evaluation's per-expression results as `report.json` and a self-contained `index.html`.

The page is rendered from the very dictionary saved as report.json, so every number on it is in the file.
Everything is written into a hidden folder beside the target and swapped in at the end: an interrupted report
leaves the previous one (or nothing), never half a page. The swap replaces only a folder that is new, empty or
an earlier report holding nothing but its own files (see `simrec_cli.storage.owned`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from simrec_cli.data.annotations import Annotations, load_annotations
from simrec_cli.data.categories import known_category_names
from simrec_cli.data.dataset import evaluation_items, split_entries
from simrec_cli.data.masks import MaskStore
from simrec_cli.data.objects import ImageObjects, image_objects
from simrec_cli.engine.metrics import SampleResult, SplitMetrics
from simrec_cli.engine.protocol import EvaluationProtocol, protocol_named
from simrec_cli.engine.rundir import read_metrics_rows
from simrec_cli.errors import SimrecError
from simrec_cli.report import analysis
from simrec_cli.report.folder import DEFAULT_HITS, DEFAULT_MISSES, REPORT_FORMAT, report_output
from simrec_cli.report.gallery import GallerySource, draw_gallery
from simrec_cli.report.page import render_page
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import DatasetSettings, Settings
from simrec_cli.storage.outputs import Outputs, StagedFolder


def _file_stem(split: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", split)


def _pictures(
    rows: list[int], files: list[str], samples: analysis.SplitSamples, results: list[SampleResult], classes: list
) -> list[dict]:
    return [
        {
            "file": name,
            "expression": samples.expressions[row],
            "iou": samples.ious[row].item(),
            "score": samples.scores[row].item(),
            "image_id": results[row].image_id,
            "class": classes[row] or "hit",
        }
        for row, name in zip(rows, files, strict=True)
    ]


@dataclass(frozen=True)
class _Data:
    """What every split's analysis reads: the evaluated dataset's settings, annotations, objects and masks, and
    the protocol the results were counted by."""

    dataset: DatasetSettings
    anns: Annotations
    objects: ImageObjects
    category_names: dict[int, str]
    masks: MaskStore | None
    protocol: EvaluationProtocol


def _split_report(
    metrics: SplitMetrics, results: list[SampleResult], data: _Data, folder: StagedFolder, gallery: tuple[int, int]
) -> dict:
    """Everything the report says about one split, with its pictures drawn into the folder's `images/`."""
    dataset = data.dataset
    entries = split_entries(data.anns, metrics.split, dataset)
    items = evaluation_items(entries)
    if len(items) != len(results):
        raise SimrecError(
            f"{dataset.resolved_ann_path()} holds {len(items)} expressions in {metrics.split}, the evaluation "
            f"had {len(results)}",
            "the annotations changed during the evaluation; run it again",
        )
    row_entries = [entries[items[result.index][0]] for result in results]
    samples = analysis.SplitSamples.from_results(results, row_entries, data.protocol)
    scenes = analysis.Scenes(samples, data.objects)
    classes = analysis.classify_misses(scenes)
    taxonomy = analysis.taxonomy(classes)
    edges, counts = analysis.iou_histogram(samples.ious)
    source = GallerySource(dataset, row_entries, results, scenes, data.masks)
    stem = _file_stem(metrics.split)
    miss_rows = analysis.worst_misses(samples, gallery[0])
    hit_rows = analysis.typical_hits(samples, gallery[1])
    miss_files = draw_gallery(source, miss_rows, folder, f"images/{stem}-miss")
    hit_files = draw_gallery(source, hit_rows, folder, f"images/{stem}-hit")
    synthetic = dataset.name == "synthetic"
    return {
        "split": metrics.split,
        "metrics": metrics.as_dict(),
        "iou_histogram": {"edges": edges, "counts": counts},
        "taxonomy": {
            "misses": taxonomy.misses,
            "classes": [
                {"name": name, "count": taxonomy.counts[name], "share": taxonomy.share(name)}
                for name in analysis.MISS_CLASSES
            ],
        },
        "breakdowns": [asdict(item) for item in analysis.breakdowns(samples, scenes, data.category_names, synthetic)],
        "gallery": {
            "misses": _pictures(miss_rows, miss_files, samples, results, classes),
            "hits": _pictures(hit_rows, hit_files, samples, results, classes),
        },
    }


def training_curves(run_dir: Path) -> dict | None:
    """The run's metrics.csv as series per column (val metrics and losses), or None without one."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    try:
        rows = read_metrics_rows(path)
    except SimrecError:
        return None  # a damaged metrics.csv: the report shows no curves rather than failing after the evaluation
    if not rows:
        return None
    columns = [key for key in rows[0] if key.startswith(("val_", "loss"))]

    def number(text: str | None) -> float | None:
        try:
            return float(text) if text not in (None, "") else None
        except ValueError:
            return None

    return {
        "metrics_csv": str(path),
        "epochs": [int(row["epoch"]) for row in rows],
        "series": {column: [number(row.get(column)) for row in rows] for column in columns},
    }


def _objects_note(objects: ImageObjects, path: Path) -> str:
    if objects.complete:
        return f"Every object of each image comes from {path}."
    return (
        f"{path} is missing (the data was prepared by another tool or an older simrec), so the miss taxonomy and "
        "the same-category counts use the other referred objects of each image: an answer on an object no "
        "expression mentions counts as background. Run simrec prepare-data again to write it."
    )


def write_report(
    checkpoint: Path,
    metrics: list[SplitMetrics],
    predictions: dict[str, list[SampleResult]],
    settings: Settings,
    folder: Path | StagedFolder,
    *,
    misses: int = DEFAULT_MISSES,
    hits: int = DEFAULT_HITS,
    reporter: Reporter | None = None,
) -> dict:
    """Write `folder/index.html`, `folder/report.json` and `folder/images/` for an evaluation; returns the report.

    `settings` are those of the evaluation (its dataset is the one evaluated); `predictions` hold every
    expression's result per split, in dataset order, as `evaluate_checkpoint` returns them. `folder` is the
    report's folder (checked, filled and swapped in here), or a command's staged folder, swapped in with the
    command's other outputs.
    """
    if isinstance(folder, Path):
        target = report_output(folder)
        with Outputs(target) as outputs:
            report = write_report(checkpoint, metrics, predictions, settings, outputs.folder(target), misses=misses,
                                  hits=hits)  # fmt: skip
        (reporter or NullReporter()).info(f"report written to {folder / 'index.html'}")
        return report
    dataset = settings.dataset
    anns = load_annotations(dataset.resolved_ann_path(), dataset.name)
    objects_path = dataset.resolved_objects_path()
    objects = image_objects(objects_path, anns)
    category_names = {**known_category_names(dataset.name), **objects.category_names}
    with_masks = any(result.mask_rle is not None for results in predictions.values() for result in results[:1])
    masks = MaskStore(dataset.resolved_mask_path(), dataset.legacy_mask_dir()) if with_masks else None
    protocol = protocol_named(metrics[0].protocol if metrics else settings.train.evaluation.protocol)
    run_dir = Path(checkpoint).resolve().parent
    data = _Data(dataset, anns, objects, category_names, masks, protocol)
    splits = [_split_report(item, predictions[item.split], data, folder, (misses, hits)) for item in metrics]
    report = {
        "format": REPORT_FORMAT,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checkpoint": str(checkpoint),
        "checkpoint_resolved": str(Path(checkpoint).resolve()),
        "model": settings.model.name,
        "input_shape": list(dataset.input_shape),
        "dataset": dataset.name,
        "annotations": str(dataset.resolved_ann_path()),
        "masks": with_masks,
        "protocol": protocol.as_dict() | {"miss_rule": protocol.miss_rule()},
        "objects": {
            "path": str(objects_path),
            "complete": objects.complete,
            "note": _objects_note(objects, objects_path),
        },
        "splits": splits,
        "training": training_curves(run_dir),
    }
    folder.write_text("report.json", json.dumps(report, indent=1, default=str))
    folder.write_text("index.html", render_page(report))
    return report
