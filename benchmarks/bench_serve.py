"""Throughput and latency of `simrec serve` under concurrent clients, with and without dynamic batching.

Starts `simrec serve` on 127.0.0.1 once per setting: batched (`--max-batch 16`, the default wait), unbatched
(`--max-batch 1`) and, with `--settings ...,compiled`, batched with `--compile` (timed after its start-up
compile). For each client count (1, 4 and 16 by default) it sends `--requests` requests, each one distinct image
(from a pool of 32 synthetic scenes) with one expression. Prints one JSON object: requests per second and
p50/p99 latency per setting and client count, the speed-ups against the unbatched and the batched eager server,
the start-up time of each setting, and the CPU. The clients run on the same machine as the server and share its
cores, as a local deployment's would.

    python benchmarks/bench_serve.py [--model tiny|default|PATH] [--requests 400] [--device cpu]
        [--settings batched,unbatched,compiled] [--clients 1,4,16]

`tiny` is synthetic-tiny (random weights at its 192 input), `default` the default SimREC at 416 with random
weights (speed does not depend on the weights); a path serves that checkpoint or ONNX file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import httpx
import torch
from bench_model import cpu_description

from simrec_cli.data.synthetic import render_scene
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import FORMAT_VERSION, KIND, atomic_save
from simrec_cli.models import build_model
from simrec_cli.settings import load_settings, settings_to_dict
from tests.serving import running_server

SETTINGS = {
    "batched": ("--max-batch", "16"),
    "unbatched": ("--max-batch", "1"),
    "compiled": ("--max-batch", "16", "--compile"),
}
COMPILE_START_TIMEOUT_S = 1800  # three buckets of the default SimREC compile in minutes on a 2-core CPU
POOL = 32
WARMUP_REQUESTS = 16
EXPRESSIONS = ("the big red circle", "the small blue square", "the leftmost shape", "the green triangle")
MODELS = {
    "tiny": ("synthetic-tiny", [], 160),
    "default": ("refcoco-scratch", ["model.visual_backbone.pretrained=false", "dataset.use_glove=false"], 640),
}
DEFAULT_VOCABULARY = 10_000  # about RefCOCO's


def random_checkpoint(preset: str, overrides: list[str], folder: Path) -> Path:
    """A checkpoint of `preset` at random initialisation (serving speed does not depend on the weights)."""
    settings = load_settings(preset, overrides)
    words = ["the", "big", "small", "red", "blue", "green", "circle", "square", "triangle", "leftmost", "shape"]
    size = DEFAULT_VOCABULARY if preset != "synthetic-tiny" else 64
    filler = [f"word{index}" for index in range(size - len(Vocabulary.RESERVED) - len(words))]
    vocabulary = [*Vocabulary.RESERVED, *words, *filler]
    torch.manual_seed(0)
    payload = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model": build_model(settings.model, vocab_size=len(vocabulary)).state_dict(),
        "ema": None,
        "epoch": 0,
        "settings": settings_to_dict(settings),
        "vocabulary": vocabulary,
    }
    path = folder / f"{preset}.pth"
    atomic_save(payload, path)
    return path


def image_pool(width: int) -> list[bytes]:
    """JPEGs of distinct synthetic scenes, enlarged to `width` pixels wide (4:3) when larger than the scenes."""
    images = []
    for seed in range(POOL):
        scene = render_scene(500_000 + seed, 160).image
        if width != 160:
            scene = cv2.resize(scene, (width, width * 3 // 4), interpolation=cv2.INTER_CUBIC)
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(scene, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        images.append(encoded.tobytes())
    return images


def load(url: str, images: list[bytes], clients: int, requests: int) -> dict[str, float]:
    """`requests` requests from `clients` threads: requests per second and latency percentiles in ms."""
    local = threading.local()

    def send(index: int) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=120)
        files = {"image": (f"{index}.jpg", images[index % len(images)], "image/jpeg")}
        started = time.perf_counter()
        response = local.client.post("/predict", files=files, data={"expression": EXPRESSIONS[index % 4]})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"request {index} failed: {response.status_code} {response.text}")
        return elapsed

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(WARMUP_REQUESTS)))
        started = time.perf_counter()
        latencies = sorted(pool.map(send, range(requests)))
        wall = time.perf_counter() - started
    return {
        "requests_per_s": round(requests / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, default, or a checkpoint / ONNX path")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per client count")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-wait-ms", default="10")
    parser.add_argument("--settings", default="batched,unbatched", help=f"comma-separated, of {', '.join(SETTINGS)}")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--image-width", type=int, help="width of the JPEGs sent (default 640 for `default`, else 160)")
    args = parser.parse_args()
    names = args.settings.split(",")
    client_counts = [int(count) for count in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        if args.model in MODELS:
            preset, overrides, width = MODELS[args.model]
            model = random_checkpoint(preset, overrides, Path(folder))
        else:
            model, width = Path(args.model), 160
        width = args.image_width or width
        images = image_pool(width)
        results: dict[str, dict] = {}
        for name in names:
            started = time.perf_counter()
            options = ("--device", args.device, "--max-wait-ms", args.max_wait_ms, *SETTINGS[name])
            with running_server(model, *options, start_timeout_s=COMPILE_START_TIMEOUT_S) as server:
                ready_s = time.perf_counter() - started
                info = httpx.get(f"{server.url}info").json()
                results[name] = {"start_s": round(ready_s, 1)} | {
                    str(clients): load(server.url, images, clients, args.requests) for clients in client_counts
                }
    report = {
        "model": args.model,
        "input_size": info["input_size"],
        "image_size": [width, width * 3 // 4] if width != 160 else [160, 160],
        "device": info["device"],
        "precision": info["precision"],
        "max_wait_ms": float(args.max_wait_ms),
        "requests_per_client_count": args.requests,
        "settings": {name: " ".join(SETTINGS[name]) for name in names},
        "results": results,
        "speedups": speedups(results, client_counts),
        "torch_threads": torch.get_num_threads(),
        **cpu_description(),
    }
    print(json.dumps(report, indent=2))


def speedups(results: dict[str, dict], client_counts: list[int]) -> dict[str, dict[str, float]]:
    """Requests per second of one setting over another's, per client count, for the pairs that were measured."""
    pairs = {"batched_over_unbatched": ("batched", "unbatched"), "compiled_over_batched": ("compiled", "batched")}
    return {
        label: {
            str(clients): round(
                results[faster][str(clients)]["requests_per_s"] / results[slower][str(clients)]["requests_per_s"], 2
            )
            for clients in client_counts
        }
        for label, (faster, slower) in pairs.items()
        if faster in results and slower in results
    }


if __name__ == "__main__":
    main()
