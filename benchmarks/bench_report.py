"""The cost of `simrec eval --report` next to the evaluation itself, at RefCOCO val scale, printed as JSON.

The fixture is a REFER dataset shaped like RefCOCO: a val split like RefCOCO's (1,500 images of 320-760 pixels,
3,811 referred objects with about 10,834 expressions) beside a training split eleven times its size (placeholder
images, never read), so the annotation and objects files the report loads are RefCOCO's size; 7 unreferred objects
per image, as in COCO's annotations. It is prepared as prepare-data does (objects.json included); writing and
preparing it is not timed. The model is the small `synthetic-tiny` architecture at its 192-pixel input with random
weights, in the precision `simrec eval` picks by default: the evaluation of a full-size model costs far more,
while the report costs the same, so this is the harder case for the bound report <= 20 % of the evaluation.

Two reports are timed: one of the evaluation's own results (random weights: nearly every answer is a miss) and
one of simulated answers of a model at about 80 % Acc@0.5 (hits, wrong objects, loose boxes and background), whose
gallery holds the full 24 misses and 12 hits per split.

Usage: python benchmarks/bench_report.py [--images 1500] [--keep DIR]   (--images: val images)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.*
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for bench_model

import cv2
import numpy as np
from bench_model import cpu_description

from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.distributed import World
from simrec_cli.engine.metrics import SampleResult, box_iou_xyxy, summarize
from simrec_cli.model_files.evaluation import evaluate_checkpoint
from simrec_cli.report.writer import write_report
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import load_settings
from tests.refer_fixture import write_refer_fixture
from tests.unit.predict.checkpoints import write_checkpoint

REFCOCO_VAL = {"num_images": 1_500, "num_objects": 3_811, "num_sentences": 10_834}
TRAIN_PER_VAL = 11  # images: RefCOCO has 16,994 training images to 1,500 val images
UNREFERRED_PER_IMAGE = 7


def _natural_jpeg(path: Path, height: int, width: int, rng: np.random.Generator) -> None:
    """A photo-like picture of the given size: smooth structure and grain (noise would decode far slower)."""
    coarse = rng.integers(0, 255, size=(9, 12, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-12, 12, size=image.shape, dtype=np.int16)
    cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])


def write_fixture(root: Path, val_images: int) -> None:
    """Every (1 + TRAIN_PER_VAL)-th image is a val image with a real picture; the others are training images."""
    scale = val_images * (1 + TRAIN_PER_VAL) / REFCOCO_VAL["num_images"]
    counts = {key: max(1, round(value * scale)) for key, value in REFCOCO_VAL.items()}
    fixture = write_refer_fixture(
        root, **counts, crowd=False, placeholder_jpeg=True, image_scale=8, keep_true_masks=False,
        unreferred_per_image=UNREFERRED_PER_IMAGE, split_cycle=("val",) + ("train",) * TRAIN_PER_VAL,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for image in fixture.images[:: 1 + TRAIN_PER_VAL]:
        _natural_jpeg(fixture.image_dir / image["file_name"], image["height"], image["width"], rng)
    prepare_dataset("refcoco", root)


def simulated_answers(results: list[SampleResult], seed: int = 0) -> list[SampleResult]:
    """The results as a model at about 80 % Acc@0.5 would give them: most boxes near the target, some on a
    shifted copy of it (loose), some far away (background)."""
    rng = np.random.default_rng(seed)
    answers = []
    for result in results:
        x1, y1, x2, y2 = result.gt_box
        w, h = x2 - x1, y2 - y1
        draw = rng.random()
        if draw < 0.8:
            box = [x1 + 0.05 * w, y1, x2, y2 - 0.05 * h]
        elif draw < 0.9:
            box = [x1 + 0.6 * w, y1 + 0.3 * h, x2 + 0.6 * w, y2 + 0.3 * h]
        else:
            box = [0.0, 0.0, 0.2 * w, 0.2 * h]
        iou = float(box_iou_xyxy(np.array([box]), np.array([result.gt_box]))[0])
        answers.append(dataclasses.replace(result, box=box, iou=iou))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=REFCOCO_VAL["num_images"], help="val images of the fixture")
    parser.add_argument("--keep", type=Path, help="keep the fixture and reports in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        root = folder / "data"
        started = time.perf_counter()
        write_fixture(root, args.images)
        fixture_seconds = time.perf_counter() - started
        settings = load_settings("synthetic-tiny", ["dataset.name=refcoco", f"dataset.data_root={root}"])
        words = Vocabulary.load(root / "anns" / "refcoco.vocab.json").words
        checkpoint = write_checkpoint(folder / "run" / "best.pth", settings, words)

        started = time.perf_counter()
        metrics, predictions, evaluated, model = evaluate_checkpoint(
            checkpoint, world=World(), reporter=NullReporter(), splits=["val"], keep_masks=True
        )
        eval_seconds = time.perf_counter() - started

        started = time.perf_counter()
        own = write_report(checkpoint, metrics, predictions, evaluated, folder / "report")
        report_seconds = time.perf_counter() - started

        answers = {"val": simulated_answers(predictions["val"])}
        simulated_metrics = [summarize("val", answers["val"], {})]
        started = time.perf_counter()
        report = write_report(checkpoint, simulated_metrics, answers, evaluated, folder / "report-simulated")
        simulated_seconds = time.perf_counter() - started
        simulated_split = report["splits"][0]
        result = {
            "expressions": metrics[0].count,
            "val_images": args.images,
            "annotation_file_mb": round((root / "anns" / "refcoco.json").stat().st_size / 2**20, 1),
            "objects_file_mb": round((root / "anns" / "refcoco.objects.json").stat().st_size / 2**20, 1),
            "model": "synthetic-tiny architecture (random weights), input 192, batch 64, no loader workers",
            "precision": model.precision.describe(),
            "eval_ms_per_image": {key: round(value, 2) for key, value in metrics[0].timing_ms.items()},
            "fixture_seconds_untimed": round(fixture_seconds, 1),
            "eval_seconds": round(eval_seconds, 2),
            "report_seconds": round(report_seconds, 2),
            "report_share_of_eval": round(report_seconds / eval_seconds, 4),
            "report_pictures": sum(len(s["gallery"]["misses"]) + len(s["gallery"]["hits"]) for s in own["splits"]),
            "report_acc50": round(metrics[0].acc50, 2),
            "simulated_report_seconds": round(simulated_seconds, 2),
            "simulated_report_share_of_eval": round(simulated_seconds / eval_seconds, 4),
            "simulated_acc50": round(simulated_metrics[0].acc50, 2),
            "simulated_report_pictures": len(simulated_split["gallery"]["misses"] + simulated_split["gallery"]["hits"]),
            "simulated_taxonomy": {c["name"]: c["count"] for c in simulated_split["taxonomy"]["classes"]},
            "target_share": 0.2,
            "cpu_count": os.cpu_count(),
            **cpu_description(),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
