"""Training throughput at the refcoco-scratch settings, fp32 beside bf16 autocast and the data loader; prints JSON.

    python benchmarks/bench_train.py [--device cpu|cuda] [--batch-size 8] [--steps 6] [--workers N]
        [--precisions fp32,bf16] [KEY=VALUE ...]

The model is the default SimREC (CSPDarkNet layers 0-7 and a 300-d embedding frozen, as the preset trains it;
random weights, since speed does not depend on them) with the preset's multi-scale training, EMA and
gradient clipping, driven by the engine's own `Trainer.train_step`. The data are synthetic scenes decoded
from 640x480 JPEGs and letterboxed to 416, like COCO images. The loader is timed alone, with the same number
of workers, to show whether it could keep up with the steps; its workers are stopped before the steps are
timed, so they do not compete with them for the cores. Every precision trains the same batches at the same
multi-scale sizes (the size is a function of the step), each from the same initial weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch

from simrec_cli.data.dataset import Batch
from simrec_cli.data.synthetic import generate_synthetic
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.distributed import init_world
from simrec_cli.engine.trainer import Trainer, scale_for_step
from simrec_cli.models.precision import cpu_flags
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import load_settings


def _write_glove_file(path: Path, words: list[str]) -> None:
    """Random 300-d vectors in GloVe's text format, so the embedding is frozen as with real GloVe."""
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8") as handle:
        for word in words:
            handle.write(word + " " + " ".join(f"{value:.4f}" for value in rng.standard_normal(300)) + "\n")


def _loader_throughput(trainer: Trainer, batches: int) -> tuple[float, list[Batch]]:
    """Images per second of the loader alone, and the batches it made; its workers end with the iterator."""
    stream = iter(trainer.loader)
    next(stream)  # worker start-up is not part of the steady state
    started = time.perf_counter()
    made = [next(stream) for _ in range(batches)]
    seconds = time.perf_counter() - started
    del stream
    return sum(batch.images.shape[0] for batch in made) / seconds, made


def _seconds_per_step(trainer: Trainer, batches: list[Batch], warmup: int, device: torch.device) -> list[float]:
    """Each timed step's seconds, after `warmup` untimed steps (allocator, oneDNN/cuDNN algorithm choice)."""
    for batch in batches[:warmup]:
        trainer.train_step(batch, "warm-up")
    times = []
    for batch in batches[warmup:]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        trainer.train_step(batch, "benchmark")
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


AMP = {"fp32": ["train.amp.enabled=false"], "bf16": ["train.amp.enabled=true", "train.amp.dtype=bfloat16"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 8 on CPU, the preset's 32 on CUDA")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE settings on top of refcoco-scratch")
    args = parser.parse_args()
    batch_size = args.batch_size or (32 if args.device == "cuda" else 8)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate_synthetic(root, num_images=args.images, image_size=640, seed=0)
        vectors = root / "vectors.txt"
        _write_glove_file(vectors, Vocabulary.load(root / "anns" / "synthetic.vocab.json").to_list())
        common = [
            "dataset.name=synthetic",
            f"dataset.data_root={root}",
            f"dataset.word_vectors={vectors}",
            "model.visual_backbone.pretrained=false",
            f"train.batch_size={batch_size}",
            f"train.data.num_workers={args.workers}",
            f"train.device={args.device}",
            "train.auto_resume.enabled=false",
            *args.overrides,
        ]
        batches: list[Batch] = []
        for precision in args.precisions.split(","):
            settings = load_settings(
                "refcoco-scratch", [*common, *AMP[precision], f"train.output_dir={root / precision}"]
            )
            trainer = Trainer(settings, init_world(args.device), NullReporter())  # seeded: the same initial weights
            if not batches:
                loader_images_per_second, batches = _loader_throughput(trainer, args.warmup + args.steps)
            times = _seconds_per_step(trainer, batches, args.warmup, trainer.world.device)
            results[precision] = {
                "seconds_per_step": round(statistics.median(times), 3),
                "mean_seconds_per_step": round(statistics.mean(times), 3),
                "seconds_per_step_each": [round(seconds, 3) for seconds in times],
                "images_per_second": round(batch_size / statistics.median(times), 2),
            }
    steps = range(args.warmup, args.warmup + args.steps)
    sizes = [scale_for_step(settings, step) or settings.dataset.input_shape for step in steps]
    print(
        json.dumps(
            {
                "device": str(trainer.world.device),
                "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
                "cpu_flags": sorted(cpu_flags()),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "preset": "refcoco-scratch (multi-scale 224-608, EMA, clip 0.15, backbone 0-7 frozen)",
                "overrides": args.overrides,
                "batch_size": batch_size,
                "timed_input_sizes": [f"{h}x{w}" for h, w in sizes],
                **results,
                "loader_workers": args.workers,
                "loader_images_per_second": round(loader_images_per_second, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
