"""Data benchmarks, printed as JSON (never part of the tests; the machine is shared, so numbers are noisy).

1. prepare-data (masks included) on a generated REFER fixture of RefCOCO scale: 19,994 images, 50,000
   objects, 142,210 expressions, polygon masks. Writing the fixture is not timed (placeholder JPEGs). Beside it,
   in the same run, the floor: just loading the two inputs (`json.load` of instances.json plus `pickle.load` of
   the refs); the goal is prepare-data <= 5x that floor. Medians of `--repeats` alternating runs. The SHA-256 of
   the annotation and mask files let two versions of the code be checked for byte-identical output.
2. Training samples per second of `RefDataset` at 416 on one core, decoding 640x480 JPEGs.

Usage: python benchmarks/bench_data.py [--scale 1.0] [--samples 300] [--repeats 3] [--no-dataset]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.refer_fixture

import cv2
import numpy as np
import torch
from bench_model import cpu_description

from simrec_cli.data.dataset import RefDataset, load_vocabulary
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.settings import DatasetSettings
from tests.refer_fixture import write_refer_fixture

REFCOCO_SCALE = {"num_images": 19_994, "num_objects": 50_000, "num_sentences": 142_210}
GOAL_RATIO = 5.0


def load_inputs(refer_dir: Path) -> float:
    """Seconds to just load prepare-data's two inputs, as any script reading them would."""
    started = time.perf_counter()
    with open(refer_dir / "instances.json", encoding="utf-8") as handle:
        json.load(handle)
    with open(refer_dir / "refs(unc).p", "rb") as handle:
        pickle.load(handle, encoding="utf-8")
    return time.perf_counter() - started


def load_inputs_without_gc(refer_dir: Path) -> float:
    """The same with Python's cycle collector paused, as prepare-data runs."""
    gc.disable()
    try:
        return load_inputs(refer_dir)
    finally:
        gc.enable()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bench_prepare(root: Path, scale: float, repeats: int) -> dict:
    counts = {key: max(1, round(value * scale)) for key, value in REFCOCO_SCALE.items()}
    started = time.perf_counter()
    write_refer_fixture(root, **counts, crowd=False, placeholder_jpeg=True, image_scale=8, keep_true_masks=False)
    fixture_seconds = time.perf_counter() - started
    floors, floors_without_gc, prepares, digests = [], [], [], set()
    for _ in range(repeats):
        floors.append(load_inputs(root / "refcoco"))
        floors_without_gc.append(load_inputs_without_gc(root / "refcoco"))
        started = time.perf_counter()
        summary = prepare_dataset("refcoco", root, generate_mask=True)
        prepares.append(time.perf_counter() - started)
        digests.add((sha256(summary.ann_path), sha256(summary.mask_path)))
    floor, prepare = statistics.median(floors), statistics.median(prepares)
    (ann_digest, mask_digest), *others = digests
    return {
        **counts,
        "fixture_seconds_untimed": round(fixture_seconds, 1),
        "repeats": repeats,
        "prepare_seconds": round(prepare, 2),
        "load_inputs_seconds": round(floor, 2),
        "load_inputs_without_gc_seconds": round(statistics.median(floors_without_gc), 2),
        "prepare_over_load": round(prepare / floor, 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": prepare <= GOAL_RATIO * floor,
        "samples_seconds": {"prepare": [round(t, 2) for t in prepares], "load_inputs": [round(t, 2) for t in floors]},
        "expressions_written": sum(split.expressions for split in summary.splits.values()),
        "mask_file_mb": round(summary.mask_path.stat().st_size / 2**20, 1),
        "anns_sha256": ann_digest,
        "masks_sha256": mask_digest,
        "identical_every_repeat": not others,
    }


def _natural_jpeg(path: Path, rng: np.random.Generator) -> None:
    """A 640x480 picture with smooth structure and grain, decoding like a photo rather than like noise."""
    coarse = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (640, 480), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-12, 12, size=image.shape, dtype=np.int16)
    cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])


def bench_dataset(root: Path, samples: int) -> dict:
    fixture = write_refer_fixture(
        root, num_images=64, num_objects=128, crowd=False, write_images=True, placeholder_jpeg=True
    )
    rng = np.random.default_rng(0)
    for image in fixture.images:
        _natural_jpeg(fixture.image_dir / image["file_name"], rng)
    prepare_dataset("refcoco", root)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    settings = DatasetSettings(name="refcoco", data_root=root, input_shape=(416, 416))
    dataset = RefDataset(settings, "train", load_vocabulary(settings), training=True, load_masks=False)
    for index in range(10):
        dataset[index % len(dataset)]  # warm up
    started = time.perf_counter()
    for index in range(samples):
        dataset.set_epoch(index // len(dataset))
        dataset[index % len(dataset)]
    seconds = time.perf_counter() - started
    return {
        "input": 416,
        "jpeg": "640x480",
        "samples": samples,
        "samples_per_second_one_core": round(samples / seconds, 1),
        "target_samples_per_second": 150,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of RefCOCO's size for the fixture")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="prepare-data runs (and input loads) to take medians of")
    parser.add_argument("--no-dataset", action="store_true", help="skip the dataset throughput part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = {
            **cpu_description(),
            "cpu_count": os.cpu_count(),
            "prepare_data_refcoco_scale": bench_prepare(Path(folder) / "prepare", args.scale, args.repeats),
        }
        if not args.no_dataset:
            result["dataset_throughput"] = bench_dataset(Path(folder) / "dataset", args.samples)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
