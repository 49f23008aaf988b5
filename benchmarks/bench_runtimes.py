"""The default inference path against each runtime, and against the CPU's bf16 peak; prints one JSON object.

    python benchmarks/bench_runtimes.py [--checkpoint CKPT] [--size 416] [--threads 2] [--rounds 5] [--batch 8]

Without --checkpoint it writes a checkpoint of the default SimREC at --size with random weights (speed does not
depend on the weights). Each configuration is loaded once in this process and timed in `--rounds` interleaved
rounds (each round: the median of several batch-1 passes and of a few batch-N passes, random images and short
expressions); the figures are the medians over the rounds. Configurations:
- `default`: what `--runtime auto --precision auto` runs for a server or an evaluation (`load_model` with no
  expression count), chosen afresh here by its own measurement (an empty cache folder); `predict_choice` says what a
  one-shot `simrec predict` of one expression runs, with the same record;
- `torch_fp32`, `torch_bf16` (PyTorch eager; bf16 only where the CPU has native bf16), `onnxruntime_fp32` and
  `openvino_f32`, `openvino_bf16` (OpenVINO's CPU plugin on the converted IR; bf16 where native).

The bf16 peak is measured, not looked up: the best rate of a 2048 x 2048 bf16 matrix product on the same threads,
divided by the model's FLOPs per image (torch's FlopCounterMode, 2 per multiply-add). The goals of the default path on
CPUs with native bf16 but without AMX: batch 1 >= 10.4 images/s and >= 85 % of that peak, batch N >= OpenVINO's.
The CPU's flags are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_model import cpu_description, gflops

GOAL_BATCH1_IMAGES_PER_S = 10.4
GOAL_PEAK_SHARE = 0.85
GEMM_SIZE = 2048


def write_default_checkpoint(path: Path, size: int) -> Path:
    from simrec_cli.engine.checkpoint import FORMAT_VERSION, KIND, atomic_save
    from simrec_cli.models import build_model
    from simrec_cli.settings import Settings, settings_to_dict

    settings = Settings()
    settings = settings.model_copy(
        update={"dataset": settings.dataset.model_copy(update={"input_shape": (size, size)})}
    )
    words = ["PAD", "UNK", "CLS", *(f"word{index}" for index in range(9997))]
    torch.manual_seed(0)
    model = build_model(settings.model, vocab_size=len(words))
    atomic_save({"kind": KIND, "format_version": FORMAT_VERSION, "model": model.state_dict(), "ema": None, "epoch": 0,
                 "settings": settings_to_dict(settings), "vocabulary": words}, path)  # fmt: skip
    return path


def bf16_peak_gflops(repeats: int = 20) -> float:
    """The best rate of a bf16 matrix product on torch's threads (oneDNN), in GFLOP/s."""
    a = torch.randn(GEMM_SIZE, GEMM_SIZE).to(torch.bfloat16)
    b = torch.randn(GEMM_SIZE, GEMM_SIZE).to(torch.bfloat16)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * GEMM_SIZE**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="bench-runtimes-"))
    os.environ["SIMREC_CACHE_DIR"] = str(folder / "cache")  # the choice is measured afresh
    os.environ.pop("SIMREC_RUNTIME", None)

    from simrec_cli.engine.checkpoint import load_model_from_checkpoint
    from simrec_cli.model_files.loading import load_model
    from simrec_cli.models.precision import cpu_has_native_bf16
    from simrec_cli.runtimes.choice import pass_seconds

    checkpoint = args.checkpoint or write_default_checkpoint(folder / "default.pth", args.size)
    started = time.perf_counter()
    default = load_model(checkpoint, device="cpu")
    default_seconds = time.perf_counter() - started
    predict_choice = load_model(checkpoint, device="cpu", rows=1)
    native = cpu_has_native_bf16()
    configurations = {"default": default}
    plans = [("torch_fp32", "torch", "fp32"), ("onnxruntime_fp32", None, "fp32"), ("openvino_f32", "openvino", "fp32")]
    if native:
        plans += [("torch_bf16", "torch", "bf16"), ("openvino_bf16", "openvino", "bf16")]
    for name, runtime, precision in plans:
        if runtime is None:
            from simrec_cli.export.onnx import export_onnx

            onnx_path = export_onnx(checkpoint, folder / "model.onnx", dynamic_batch=True).path
            configurations[name] = load_model(onnx_path, device="cpu", runtime="onnxruntime")
        else:
            configurations[name] = load_model(checkpoint, device="cpu", runtime=runtime, precision=precision)
    settings = default.settings
    shape, length = tuple(settings.dataset.input_shape), settings.dataset.max_token_length
    samples: dict[str, dict[str, list[float]]] = {name: {"batch1": [], "batchN": []} for name in configurations}
    for _ in range(args.rounds):
        for name, loaded in configurations.items():
            samples[name]["batch1"].append(1 / pass_seconds(loaded.runtime, 1, shape, length, passes=5))
            samples[name]["batchN"].append(
                args.batch / pass_seconds(loaded.runtime, args.batch, shape, length, passes=2)
            )
    figures = {name: {"batch1_images_per_s": round(statistics.median(values["batch1"]), 2),
                      f"batch{args.batch}_images_per_s": round(statistics.median(values["batchN"]), 2),
                      "samples": {key: [round(v, 2) for v in series] for key, series in values.items()}}
               for name, values in samples.items()}  # fmt: skip
    model, _, _ = load_model_from_checkpoint(checkpoint, "cpu")
    model_gflops = gflops(model, shape[0], len(default.vocabulary), torch.device("cpu"))
    peak_gflops = bf16_peak_gflops()
    peak_images_per_s = peak_gflops / model_gflops
    default_b1 = figures["default"]["batch1_images_per_s"]
    default_bn = figures["default"][f"batch{args.batch}_images_per_s"]
    openvino_name = "openvino_bf16" if native else "openvino_f32"
    openvino_bn = figures[openvino_name][f"batch{args.batch}_images_per_s"]
    result = {
        **cpu_description(),
        "threads": args.threads,
        "python": sys.version.split()[0],
        "checkpoint": str(args.checkpoint or f"default SimREC at {args.size}, random weights"),
        "model_gflops_per_image": round(model_gflops, 2),
        "bf16_gemm_peak_gflops": round(peak_gflops, 1),
        "bf16_peak_images_per_s": round(peak_images_per_s, 2),
        "default_choice": default.describe().replace("\n", "; "),
        "default_load_and_choose_s": round(default_seconds, 1),
        "predict_choice": predict_choice.describe().replace("\n", "; "),
        "rounds": args.rounds,
        "figures": figures,
        "default_share_of_peak": round(default_b1 / peak_images_per_s, 3),
        "goals": {
            "batch1_images_per_s": GOAL_BATCH1_IMAGES_PER_S,
            "batch1_met": default_b1 >= GOAL_BATCH1_IMAGES_PER_S,
            "peak_share": GOAL_PEAK_SHARE,
            "peak_share_met": default_b1 >= GOAL_PEAK_SHARE * peak_images_per_s,
            f"batch{args.batch}_at_least_openvino": default_bn >= openvino_bn,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
