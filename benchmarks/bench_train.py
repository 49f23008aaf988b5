"""Training throughput at the refcoco-scratch settings, beside data-loader-only throughput; prints JSON.

    python benchmarks/bench_train.py [--device cpu|cuda] [--batch-size 8] [--steps 5] [--workers N]

The model is the default SimREC (CSPDarkNet layers 0-7 and a 300-d embedding frozen, as the preset trains it;
random weights, since speed does not depend on them) with the preset's multi-scale training, EMA and
gradient clipping, driven by the engine's own `Trainer.train_step`. The data are synthetic scenes decoded
from 640x480 JPEGs and letterboxed to 416, like COCO images. The loader is timed alone, with the same number
of workers, to show whether it could keep up with the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch

from simrec_cli.data.dataset import Batch
from simrec_cli.data.synthetic import generate_synthetic
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.distributed import init_world
from simrec_cli.engine.trainer import Trainer
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import load_settings


def _write_glove_file(path: Path, words: list[str]) -> None:
    """Random 300-d vectors in GloVe's text format, so the embedding is frozen as with real GloVe."""
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8") as handle:
        for word in words:
            handle.write(word + " " + " ".join(f"{value:.4f}" for value in rng.standard_normal(300)) + "\n")


def _batches(trainer: Trainer) -> Iterator[Batch]:
    """Training batches without end, epoch after epoch."""
    while True:
        yield from trainer.loader


def _loader_throughput(trainer: Trainer, batches: int) -> float:
    stream = _batches(trainer)
    next(stream)  # worker start-up is not part of the steady state
    started = time.perf_counter()
    count = sum(next(stream).images.shape[0] for _ in range(batches))
    return count / (time.perf_counter() - started)


def _step_throughput(trainer: Trainer, steps: int, device: torch.device) -> tuple[float, float]:
    stream = _batches(trainer)
    for _ in range(2):  # warm-up: allocator, oneDNN/cuDNN algorithm choice
        trainer.train_step(next(stream), "warm-up")
    batches = [next(stream) for _ in range(steps)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches:
        trainer.train_step(batch, "benchmark")
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    return seconds, batches[0].images.shape[0] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 8 on CPU, the preset's 32 on CUDA")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--images", type=int, default=120)
    args = parser.parse_args()
    batch_size = args.batch_size or (32 if args.device == "cuda" else 8)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate_synthetic(root, num_images=args.images, image_size=640, seed=0)
        vectors = root / "vectors.txt"
        _write_glove_file(vectors, Vocabulary.load(root / "anns" / "synthetic.vocab.json").to_list())
        settings = load_settings(
            "refcoco-scratch",
            [
                "dataset.name=synthetic",
                f"dataset.data_root={root}",
                f"dataset.word_vectors={vectors}",
                "model.visual_backbone.pretrained=false",
                f"train.batch_size={batch_size}",
                f"train.data.num_workers={args.workers}",
                f"train.output_dir={root / 'run'}",
                f"train.device={args.device}",
            ],
        )
        trainer = Trainer(settings, init_world(args.device), NullReporter())
        loader_images_per_second = _loader_throughput(trainer, batches=max(4, args.steps))
        seconds, images_per_second = _step_throughput(trainer, args.steps, trainer.world.device)
    print(
        json.dumps(
            {
                "device": str(trainer.world.device),
                "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "preset": "refcoco-scratch (multi-scale 224-608, EMA, clip 0.15, backbone 0-7 frozen)",
                "batch_size": batch_size,
                "train_seconds_per_step": round(seconds, 3),
                "train_images_per_second": round(images_per_second, 1),
                "loader_workers": args.workers,
                "loader_images_per_second": round(loader_images_per_second, 1),
                "loader_keeps_up": loader_images_per_second > images_per_second,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
