"""Speed and size of the default SimREC model; prints one JSON object.

    python benchmarks/bench_model.py [--device cpu|cuda] [--size 416] [--vocab 10000]

Reports parameters, GFLOPs at the input size (2 FLOPs per multiply-add, counted by torch's FlopCounterMode),
eval latency at batch 1 and 8 for fp32 and for BN folding combined with channels_last and bf16 autocast, and
one training step at batch 8 with SimREC's default freezing (backbone layers 0-7 and the word embedding
frozen), NCHW and channels_last. The weights are random, so no agreement between precisions is reported here:
on random weights the objectness map is nearly flat and any rounding picks another cell.
`bench_precision.py` measures agreement (and the compiled forward) on a trained checkpoint.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from simrec_cli.models import build_model, count_parameters
from simrec_cli.models.inference import bf16_autocast, prepare_for_inference
from simrec_cli.models.precision import cpu_flags
from simrec_cli.settings import ModelSettings

EVAL_VARIANTS = {  # name: (fold_bn, channels_last, bf16)
    "fp32": (False, False, False),
    "fp32_folded": (True, False, False),
    "channels_last_folded": (True, True, False),
    "bf16_folded": (True, False, True),
    "bf16_channels_last_folded": (True, True, True),
}


def cpu_description() -> dict:
    """CPU model and the instruction sets that decide bf16 and int8 speed (bf16 is emulated without
    avx512_bf16/AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    return {"cpu": model, "cpu_flags": sorted(cpu_flags())}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inputs(batch: int, size: int, vocab: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, 3, size, size, generator=generator)
    tokens = torch.randint(3, vocab, (batch, 15), generator=generator)
    tokens[:, 8:] = 0
    return images.to(device), tokens.to(device)


def gflops(model: torch.nn.Module, size: int, vocab: int, device: torch.device) -> float:
    images, tokens = inputs(1, size, vocab, device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(images, tokens)
    return counter.get_total_flops() / 1e9


def predict(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.inference_mode(), bf16_autocast(images.device, enabled=bf16):
        return model(images, tokens)["boxes"]


def eval_latency(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> dict:
    results: dict[str, dict] = {}
    for batch in (1, 8):
        images, tokens = inputs(batch, args.size, args.vocab, device)
        warmup, repeats = (3, args.repeats * 3) if batch == 1 else (1, args.repeats)
        for name, (fold_bn, channels_last, bf16) in EVAL_VARIANTS.items():
            prepared = prepare_for_inference(model, fold_bn=fold_bn, channels_last=channels_last)

            run = functools.partial(predict, prepared, images, tokens, bf16)
            seconds = timed(run, device, warmup, repeats)
            results[f"batch{batch}_{name}"] = {
                "ms_per_batch": round(seconds * 1000, 1),
                "images_per_s": round(batch / seconds, 2),
            }
    return results


def training_step(args: argparse.Namespace, device: torch.device, channels_last: bool) -> float:
    vectors = np.random.default_rng(0).normal(size=(args.vocab, 300)).astype(np.float32)
    model = build_model(ModelSettings(), args.vocab, vectors).to(device).train()
    if channels_last:
        model.to_channels_last()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    images, tokens = inputs(8, args.size, args.vocab, device)
    targets = torch.tensor([[0.5, 0.5, 0.3, 0.4]], device=device).repeat(8, 1)

    def step() -> None:
        loss = model(images, tokens, targets=targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, device, 1, args.train_repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="timed batch-8 passes (batch 1: three times as many)")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    torch.manual_seed(0)
    vectors = np.random.default_rng(0).normal(size=(args.vocab, 300)).astype(np.float32)
    model = build_model(ModelSettings(), args.vocab, vectors).to(device).eval()
    total, trainable = count_parameters(model)
    report = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        **cpu_description(),
        "input_size": args.size,
        "vocab": args.vocab,
        "params": total,
        "params_without_embedding": total - 300 * args.vocab,
        "trainable_params": trainable,
        "gflops": round(gflops(model, args.size, args.vocab, device), 2),
        "eval": eval_latency(model, args, device),
    }
    if not args.skip_training:
        report["train_step_batch8_s"] = {
            "nchw": round(training_step(args, device, channels_last=False), 3),
            "channels_last": round(training_step(args, device, channels_last=True), 3),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
