"""`--runtime auto`: the fastest runtime this machine runs for this model, measured here, remembered, and explained.

Which runtime is fastest depends on the CPU (its bf16 and int8 instructions), the thread count, the model's size
and the versions installed, so it is measured rather than guessed: the first time a model of this architecture
and input size is run on this machine, each runtime that can run it is timed on a few batch-1 passes, and the
figures are kept in a small JSON record in the cache folder (`SIMREC_CACHE_DIR`, else `$XDG_CACHE_HOME/simrec`,
else `~/.cache/simrec`), so later runs choose at once. The record also keeps what setting a runtime up cost (for a
checkpoint in OpenVINO: converting it once, then compiling it at each start), and the choice weighs that against
the work ahead: a one-shot prediction of a few expressions stays in PyTorch, which is loaded already, while an
evaluation or a server takes the runtime that answers fastest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from simrec_cli.errors import SimrecError
from simrec_cli.models.precision import cpu_flags
from simrec_cli.runtimes.base import Runtime
from simrec_cli.schemas.reports import SPEED_RECORD
from simrec_cli.storage.atomic import atomic_write_json

CACHE_ENV = "SIMREC_CACHE_DIR"
TIMED_PASSES = 3  # after one warm-up pass; the median counts
# Without a record, a few rows are not worth converting a checkpoint for: at the default SimREC's 416 pixels on a
# 2-core CPU the conversion costs about as much as this many passes.
MEASURE_MIN_ROWS = 64
RECORD_VERSION = 1


def cache_dir() -> Path:
    """Where simrec keeps what it can rebuild: converted models and measured speeds."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simrec"


def package_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_signature() -> dict[str, Any]:
    """What decides speed besides the model: the CPU, its flags, the threads and the runtimes' versions."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_flags": sorted(cpu_flags()),
        "threads": torch.get_num_threads(),
        "versions": {name: package_version(name) for name in ("torch", "onnxruntime", "openvino")},
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")


def record_key(model_signature: dict[str, Any], precision: str) -> str:
    text = json.dumps({"model": model_signature, "precision": precision, "machine": machine_signature()},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class SpeedRecord:
    """Measured seconds per batch-1 pass and set-up seconds, per runtime, for one model shape on one machine."""

    path: Path
    row_seconds: dict[str, float] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def open(cls, model_signature: dict[str, Any], precision: str) -> SpeedRecord:
        path = cache_dir() / "speed" / f"{record_key(model_signature, precision)}.json"
        if path.is_file():
            try:
                data = SPEED_RECORD.read(path)
            except SimrecError:
                return cls(path)  # a damaged record: measure again
            if data["version"] == RECORD_VERSION:
                return cls(path, dict(data["row_seconds"]), dict(data["setup_seconds"]))
        return cls(path)

    def save(self) -> str | None:
        """Write the record; the reason it could not be written (a read-only home, say), else None."""
        data = {"version": RECORD_VERSION, "row_seconds": self.row_seconds, "setup_seconds": self.setup_seconds,
                "machine": machine_signature()}  # fmt: skip
        try:
            atomic_write_json(self.path, data)
        except SimrecError as error:
            return error.message
        return None


def pass_seconds(
    runtime: Runtime, rows: int, input_shape: tuple[int, int], token_length: int, passes: int = TIMED_PASSES
) -> float:
    """Median seconds of a pass over `rows` rows (after a warm-up pass): random images and short expressions."""
    generator = torch.Generator().manual_seed(rows)
    images = torch.rand(rows, 3, *input_shape, generator=generator).to(runtime.device)
    tokens = torch.zeros(rows, token_length, dtype=torch.int64)
    tokens[:, :4] = torch.randint(3, 7, (rows, 4), generator=generator)
    tokens = tokens.to(runtime.device)
    runtime(images, tokens)
    times = []
    for _ in range(passes):
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)
        started = time.perf_counter()
        runtime(images, tokens)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def expected_seconds(record: SpeedRecord, name: str, rows: int | None, setup: float) -> float:
    """Time to set runtime `name` up (`setup` seconds) and answer `rows` rows with it (None rows: a server, where
    only the rate counts)."""
    if rows is None:
        return record.row_seconds[name]
    return setup + rows * record.row_seconds[name]


def fastest(record: SpeedRecord, names: Iterable[str], rows: int | None, setup: dict[str, float]) -> str:
    """The runtime of `names` that answers `rows` rows soonest by the record, each after the `setup` seconds it still
    needs (none for a runtime already loaded)."""
    return min(names, key=lambda name: expected_seconds(record, name, rows, setup.get(name, 0.0)))


def measured_reason(record: SpeedRecord, chosen: str, names: Iterable[str], rows: int | None) -> str:
    """Why `chosen` won, in the measured figures: '... 96 ms per image against torch 128 ms ...'."""
    others = [name for name in names if name != chosen]
    figures = ", ".join(f"{name} {_milliseconds(record.row_seconds[name])}" for name in others)
    workload = "" if rows is None else f" for {expressions(rows)}, set-up included"
    return (
        f"auto: fastest measured on this machine{workload}, {_milliseconds(record.row_seconds[chosen])} per image "
        f"against {figures}"
    )


def expressions(rows: int) -> str:
    return f"{rows} expression" if rows == 1 else f"{rows} expressions"


def _milliseconds(seconds: float) -> str:
    milliseconds = 1000 * seconds
    return f"{milliseconds:.0f} ms" if milliseconds >= 10 else f"{milliseconds:.1f} ms"
