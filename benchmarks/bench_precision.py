"""Speed and agreement of each inference precision on a trained checkpoint; prints one JSON object.

    python benchmarks/bench_precision.py CHECKPOINT --data-root DIR [--split val] [--batches 1 8]

For each configuration (fp32, bf16, and bf16 compiled for the timed batch sizes, as a server compiles its
buckets) it evaluates the split and reports Acc@0.5 and how many boxes agree with fp32's (IoU >= 0.99). The
compiled model is compiled once and serves both its evaluation and its timing. Agreement means something only on
trained weights: on random weights the objectness map is nearly flat and any rounding picks another cell.
The accuracy gate is the one the tests assert: within 0.5 points of fp32's Acc@0.5; `auto_choice` says which
precision `auto` picks on this machine and whether it passes.

Speed: images per second of the forward pass at batch 1 and 8 (random images and tokens at the checkpoint's
input size; the weights do not change the speed) for our plain fp32 NCHW model (the baseline every ratio is
against, measured in the same run), fp32 with BatchNorm folded and channels_last, bf16, and the compiled
forward, with the time it took to compile. Only the model's forward is timed: no image decoding, letterbox or
tokenizing. Each configuration is timed in a process of its own (so none inherits another's allocator state,
compiled caches or thread pools), in `--rounds` interleaved rounds; each round reports the median of its passes
and the figure is the median over the rounds (`--in-process` times them all in this process instead). The CPU's
flags are printed with the figures, since they decide bf16 speed. The goals: at batch 1 a ratio >= 4.5 against
the baseline, and at batch 8 >= 25 images/s, both within the accuracy gate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from simrec_cli.data.dataset import RefDataset
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.engine.distributed import joined_world
from simrec_cli.engine.evaluator import evaluate_split
from simrec_cli.engine.loading import load_for_inference
from simrec_cli.engine.metrics import box_iou_xyxy
from simrec_cli.models.inference import InferenceModel
from simrec_cli.models.precision import PrecisionChoice, cpu_flags, resolve_precision
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import DatasetSettings, Settings

GATE_POINTS = 0.5
GOAL_BATCH1_RATIO = 4.5
GOAL_BATCH8_IMAGES_PER_S = 25.0


def _evaluate(
    model: InferenceModel, settings: Settings, vocabulary: Vocabulary, args: argparse.Namespace
) -> tuple[dict, np.ndarray]:
    """Acc@0.5 of one model on the split, and its boxes in sample order."""
    data = settings.dataset.model_dump()
    if args.data_root is not None:
        data["data_root"] = args.data_root
    dataset = RefDataset(DatasetSettings.model_validate(data), args.split, vocabulary, training=False,
                         load_masks=False, mean=settings.train.data.mean, std=settings.train.data.std)  # fmt: skip
    started = time.perf_counter()
    with joined_world("cpu") as world:
        metrics, results = evaluate_split(model, dataset, split=args.split, world=world, batch_size=args.batch_size,
                                          num_workers=0, reporter=NullReporter())  # fmt: skip
    boxes = np.array([result.box for result in results], np.float64)
    summary = {"acc50": round(metrics.acc50, 2), "count": metrics.count,
               "eval_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    return summary, boxes


def _timed(run: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median seconds of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _inputs(rows: int, size: tuple[int, int], vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(rows)
    tokens = torch.randint(3, vocab, (rows, 15), generator=generator)
    tokens[:, 8:] = 0
    return torch.rand(rows, 3, *size, generator=generator), tokens


def _speed(model: InferenceModel, settings: Settings, vocabulary: Vocabulary, args: argparse.Namespace) -> dict:
    """Images per second of the forward at each batch size (one image per expression)."""
    size = tuple(settings.dataset.input_shape)
    entry = {}
    for rows in args.batches:
        images, tokens = _inputs(rows, size, len(vocabulary))
        repeats = args.repeats * (3 if rows == 1 else 1)
        seconds = _timed(lambda images=images, tokens=tokens: model(images, tokens), 2, repeats)
        entry[f"batch{rows}_images_per_s"] = round(rows / seconds, 2)
    return entry


CONFIGURATIONS = {  # name: (precision, compiled)
    "fp32_nchw": ("fp32", False),  # our plain model: no folding, NCHW, eager; the baseline of every ratio
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "bf16_compiled": ("bf16", True),
}


def _load(name: str, args: argparse.Namespace) -> tuple[InferenceModel, Settings, Vocabulary, dict]:
    """The model of one configuration, compiled (for the timed batch sizes) where it asks for it."""
    device = torch.device("cpu")
    precision, compiled = CONFIGURATIONS[name]
    if name == "fp32_nchw":
        plain, settings, vocabulary = load_model_from_checkpoint(args.checkpoint, device)
        model = InferenceModel(plain, device, PrecisionChoice("fp32", "baseline"))
    else:
        model, settings, vocabulary = load_for_inference(args.checkpoint, device, precision)
    entry: dict[str, object] = {"precision": model.precision.describe()}
    if compiled:
        started = time.perf_counter()
        model.compile(args.batches, settings.dataset.input_shape, settings.dataset.max_token_length)
        entry["compile_s"] = round(time.perf_counter() - started, 1)
    return model, settings, vocabulary, entry


def measure_accuracy(args: argparse.Namespace) -> dict[str, dict]:
    """Per configuration (the baseline aside): Acc@0.5 on the split and agreement of its boxes with fp32's."""
    accuracy: dict[str, dict] = {}
    reference: np.ndarray | None = None
    for name in [name for name in args.configurations if name != "fp32_nchw"]:
        model, settings, vocabulary, _ = _load(name, args)
        summary, boxes = _evaluate(model, settings, vocabulary, args)
        reference = boxes if reference is None else reference
        iou = box_iou_xyxy(boxes, reference)
        summary["share_of_boxes_iou_ge_0.99_vs_fp32"] = round(float((iou >= 0.99).mean()), 4)
        summary["boxes_moved_vs_fp32"] = int((iou < 0.99).sum())
        summary["acc50_points_vs_fp32"] = round(summary["acc50"] - accuracy.get("fp32", summary)["acc50"], 2)
        summary["within_gate"] = abs(summary["acc50_points_vs_fp32"]) <= GATE_POINTS
        accuracy[name] = summary
        print(json.dumps({name: {"accuracy": summary}}), file=sys.stderr)
    return accuracy


def measure_speed_here(name: str, args: argparse.Namespace) -> dict:
    """One configuration's forward speed, timed in this process."""
    model, settings, vocabulary, entry = _load(name, args)
    return {**entry, **_speed(model, settings, vocabulary, args)}


def _speed_in_subprocess(name: str, args: argparse.Namespace) -> dict:
    """One configuration's forward speed, timed in a fresh process running this script."""
    command = [sys.executable, __file__, str(args.checkpoint), "--skip-accuracy", "--in-process", "--configurations",
               name, "--batches", *map(str, args.batches), "--repeats", str(args.repeats)]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"timing {name} failed:\n{finished.stderr[-4000:]}")
    return json.loads(finished.stdout)["speed"][name]


def measure_speed(args: argparse.Namespace) -> dict[str, dict]:
    """Per configuration: forward speed at each batch size and the ratio to the fp32 NCHW baseline.

    Isolated (the default): `--rounds` rounds, each timing every configuration in its own process in turn; a
    configuration's figure is the median over rounds, and each round is kept under `rounds`."""
    keys = [f"batch{rows}_images_per_s" for rows in args.batches]
    if args.in_process:
        speed = {name: measure_speed_here(name, args) for name in args.configurations}
    else:
        rounds: dict[str, list[dict]] = {name: [] for name in args.configurations}
        for _ in range(args.rounds):
            for name in args.configurations:
                rounds[name].append(_speed_in_subprocess(name, args))
                print(json.dumps({name: rounds[name][-1]}), file=sys.stderr)
        speed = {}
        for name, entries in rounds.items():
            speed[name] = {**entries[0], **{key: round(statistics.median(e[key] for e in entries), 2) for key in keys}}
            speed[name]["rounds"] = {key: [e[key] for e in entries] for key in keys}
    if "fp32_nchw" in speed:
        for entry in speed.values():
            for key in keys:
                entry[key.replace("images_per_s", "ratio_vs_fp32_nchw")] = round(
                    entry[key] / speed["fp32_nchw"][key], 2
                )
    return speed


def goals(speeds: dict, accuracy: dict | None) -> dict:
    """The fastest configuration that keeps the answers, at batch 1 and 8, against the goals."""

    def keeps_answers(name: str) -> bool:
        return accuracy is None or name.startswith("fp32") or accuracy.get(name, {}).get("within_gate", False)

    allowed = [name for name in speeds if keeps_answers(name)]
    result = {}
    for rows, key, goal, measure in [
        (1, "batch1_ratio_vs_fp32_nchw", GOAL_BATCH1_RATIO, "ratio"),
        (8, "batch8_images_per_s", GOAL_BATCH8_IMAGES_PER_S, "images_per_s"),
    ]:
        candidates = [name for name in allowed if key in speeds[name]]
        if not candidates:
            continue
        best = max(candidates, key=lambda name: speeds[name][key])
        result[f"batch{rows}"] = {"best": best, measure: speeds[best][key], "goal": goal,
                                  "met": speeds[best][key] >= goal}  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data-root", type=Path, help="the checkpoint's data folder (default: the run's)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes timed")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per batch size (batch 1: 3x)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of isolated timings (median)")
    parser.add_argument("--in-process", action="store_true", help="time every configuration in this process")
    parser.add_argument("--configurations", nargs="+", choices=list(CONFIGURATIONS), default=list(CONFIGURATIONS))
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    auto = resolve_precision("auto", torch.device("cpu"))
    report: dict[str, object] = {
        "benchmark": "precision",
        "checkpoint": str(args.checkpoint),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_flags": sorted(cpu_flags()),
        "auto_choice": auto.describe(),
    }
    accuracy = {} if args.skip_accuracy else measure_accuracy(args)
    speed = {} if args.skip_speed else measure_speed(args)
    if accuracy:
        report["split"] = args.split
        report["accuracy"] = accuracy
        if auto.name in accuracy:
            report["auto_choice_within_gate"] = accuracy[auto.name]["within_gate"]
    if speed:
        isolated = f"one process per configuration, median of {args.rounds} rounds"
        report["timing"] = "all configurations in one process" if args.in_process else isolated
        report["speed"] = speed
        report["goals"] = goals(speed, accuracy or None)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
