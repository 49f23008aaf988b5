"""Data benchmarks, printed as JSON (never part of the tests; the machine is shared, so numbers are noisy).

1. prepare-data (masks included) on a generated REFER fixture of RefCOCO scale: 19,994 images, 50,000
   objects, 142,210 expressions, polygon masks. Writing the fixture is not timed (placeholder JPEGs).
2. Training samples per second of `RefDataset` at 416 on one core, decoding 640x480 JPEGs.

Usage: python benchmarks/bench_data.py [--scale 1.0] [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.refer_fixture

import cv2
import numpy as np
import torch

from simrec_cli.data.dataset import RefDataset, load_vocabulary
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.settings import DatasetSettings
from tests.refer_fixture import write_refer_fixture

REFCOCO_SCALE = {"num_images": 19_994, "num_objects": 50_000, "num_sentences": 142_210}


def bench_prepare(root: Path, scale: float) -> dict:
    counts = {key: max(1, round(value * scale)) for key, value in REFCOCO_SCALE.items()}
    started = time.perf_counter()
    write_refer_fixture(root, **counts, crowd=False, placeholder_jpeg=True, image_scale=8, keep_true_masks=False)
    fixture_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = prepare_dataset("refcoco", root, generate_mask=True)
    seconds = time.perf_counter() - started
    return {
        **counts,
        "fixture_seconds_untimed": round(fixture_seconds, 1),
        "prepare_seconds": round(seconds, 2),
        "target_seconds": 60,
        "expressions_written": sum(split.expressions for split in summary.splits.values()),
        "mask_file_mb": round(summary.mask_path.stat().st_size / 2**20, 1),
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = {
            "prepare_data_refcoco_scale": bench_prepare(Path(folder) / "prepare", args.scale),
            "dataset_throughput": bench_dataset(Path(folder) / "dataset", args.samples),
            "cpu_count": os.cpu_count(),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
