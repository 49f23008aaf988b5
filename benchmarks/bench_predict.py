"""Prediction speed of the default SimREC model at 416 (random weights; speed does not depend on them).

Prints one JSON object:
- `end_to_end`: ms per image through `predict_requests` (read the JPEG, letterbox, normalize, forward,
  un-letterbox, draw and write the picture), for fp32 and bf16, one expression per image;
- `stages`: the same work timed stage by stage (ms per image), to show where the time goes;
- with `--device cuda`: `gpu.batch1_ms` (forward only, per precision, eager and CUDA-graph compiled) and
  `gpu.throughput` (images/s of the forward pass at larger batches).

    python benchmarks/bench_predict.py [--device cpu|cuda] [--images 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np
import torch

from simrec_cli.data.letterbox import boxes_to_original, letterbox_image
from simrec_cli.data.synthetic import render_scene
from simrec_cli.data.text import Vocabulary
from simrec_cli.drawing import Annotation, draw_annotations, picture_base
from simrec_cli.models import build_model
from simrec_cli.models.inference import bf16_autocast, prepare_for_inference
from simrec_cli.predict.images import read_image
from simrec_cli.predict.output import OutputFolder
from simrec_cli.predict.predictor import Predictor, predict_requests
from simrec_cli.predict.sources import ImageRequest
from simrec_cli.settings import Settings

VOCABULARY_SIZE = 10_000  # about RefCOCO's
EXPRESSION = "the big red circle left of the blue square"
PHOTO_SIZE = (640, 480)  # a typical COCO photo


def _vocabulary() -> Vocabulary:
    words = ["the", "big", "red", "circle", "left", "of", "blue", "square"]
    filler = [f"word{index}" for index in range(VOCABULARY_SIZE - len(Vocabulary.RESERVED) - len(words))]
    return Vocabulary.from_list([*Vocabulary.RESERVED, *words, *filler])


def _photos(folder: Path, count: int) -> list[Path]:
    """Natural-looking JPEGs (synthetic scenes enlarged to 640 x 480)."""
    paths = []
    for index in range(count):
        scene = render_scene(index, 160).image
        photo = cv2.resize(scene, PHOTO_SIZE, interpolation=cv2.INTER_CUBIC)
        path = folder / f"photo{index}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def _best_ms(
    action: Callable[[], object], repeats: int, per: int = 1, sync: Callable[[], None] = lambda: None
) -> float:
    """Fastest of `repeats` timed runs after one warm-up, in ms per item."""
    action()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / per


def _end_to_end(predictor: Predictor, photos: list[Path], folder: Path, repeats: int) -> float:
    requests = [ImageRequest(path, (EXPRESSION,)) for path in photos]
    return _best_ms(lambda: list(predict_requests(predictor, requests, folder, batch_size=1)), repeats, len(photos))


def _stages(predictor: Predictor, photo: Path, folder: Path, repeats: int) -> dict[str, float]:
    """Each stage of one image's prediction, ms."""
    encoded = predictor.encode(EXPRESSION).tokens[None]
    image = read_image(photo)
    canvas, info = letterbox_image(image, predictor.input_shape)
    outputs = predictor.forward([canvas], [0], encoded)
    box = np.asarray(boxes_to_original(outputs["boxes"][:, :4].astype(np.float64), info))[0]
    output = OutputFolder(folder)

    def draw() -> None:
        picture = draw_annotations(picture_base(image), [Annotation(EXPRESSION, tuple(box), 0.5)])
        output.save(Path("stage.jpg"), picture, [])

    return {
        "read_ms": round(_best_ms(lambda: read_image(photo), repeats), 2),
        "letterbox_ms": round(_best_ms(lambda: letterbox_image(image, predictor.input_shape), repeats), 2),
        "forward_ms": round(_best_ms(lambda: predictor.forward([canvas], [0], encoded), repeats), 2),
        "unletterbox_ms": round(
            _best_ms(lambda: boxes_to_original(outputs["boxes"][:, :4].astype(np.float64), info), repeats), 3
        ),
        "draw_and_save_ms": round(_best_ms(draw, repeats), 2),
    }


def _forward(net: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor, half: bool) -> None:
    with torch.inference_mode(), bf16_autocast(images.device, enabled=half):
        net(images, tokens)


def _gpu(model: torch.nn.Module, vocabulary: Vocabulary, repeats: int, batches: list[int]) -> dict[str, object]:
    """Forward-pass latency at batch 1 (eager and with CUDA graphs) and throughput at larger batches."""
    device = torch.device("cuda")
    sync = torch.cuda.synchronize
    tokens_one = torch.from_numpy(vocabulary.encode(EXPRESSION, 15)[0])[None].to(device)
    image = torch.rand(1, 3, 416, 416, device=device)
    batch1: dict[str, float] = {}
    throughput: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        half = precision == "bf16"
        eager = functools.partial(_forward, model, image, tokens_one, half)
        batch1[f"{precision}_eager"] = round(_best_ms(eager, repeats * 20, sync=sync), 3)
        graphed = functools.partial(_forward, torch.compile(model, mode="reduce-overhead"), image, tokens_one, half)
        for _ in range(3):  # compile, then record the CUDA graph
            graphed()
        batch1[f"{precision}_cuda_graphs"] = round(_best_ms(graphed, repeats * 20, sync=sync), 3)
        for batch in batches:
            images = torch.rand(batch, 3, 416, 416, device=device)
            step = functools.partial(_forward, model, images, tokens_one.expand(batch, -1).contiguous(), half)
            throughput[f"{precision}_batch{batch}_images_per_s"] = round(
                1000 / _best_ms(step, repeats * 3, batch, sync), 1
            )
    return {
        "name": torch.cuda.get_device_name(0),
        "batch1_ms": batch1,
        "batch1_fps": {key: round(1000 / value, 1) for key, value in batch1.items()},
        "throughput": throughput,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--images", type=int, default=8, help="photos per end-to-end run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="*", default=[32, 128], help="GPU throughput batch sizes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = Settings()
    vocabulary = _vocabulary()
    model = build_model(settings.model, vocab_size=len(vocabulary)).eval()
    prepared = prepare_for_inference(model, fold_bn=True, channels_last=True).to(args.device)
    report: dict[str, object] = {
        "benchmark": "predict",
        "model": "simrec default (CSPDarkNet-L, random weights)",
        "input": 416,
        "photo": list(PHOTO_SIZE),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        photos = _photos(folder, args.images)
        end_to_end, stages = {}, {}
        for precision in ("fp32", "bf16"):
            predictor = Predictor(prepared, settings, vocabulary, torch.device(args.device), precision=precision)
            ms = _end_to_end(predictor, photos, folder / f"out-{precision}", args.repeats)
            end_to_end[precision] = {"ms_per_image": round(ms, 2), "images_per_s": round(1000 / ms, 2)}
            stages[precision] = _stages(predictor, photos[0], folder / "stages", args.repeats)
        report["end_to_end"] = end_to_end
        report["stages"] = stages
    if args.device == "cuda":
        report["gpu"] = _gpu(prepared, vocabulary, args.repeats, args.batches)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
