"""Run the benchmark: export, evaluate, check against fp32 and time each candidate, one table row each."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from simrec_cli.benchmark.kept import EXPORT_NAMES
from simrec_cli.data.prepared import dataset_files
from simrec_cli.engine.distributed import World, resolve_device
from simrec_cli.engine.evaluator import evaluate_split, evaluation_sets
from simrec_cli.engine.metrics import box_iou_xyxy
from simrec_cli.engine.protocol import protocol_named
from simrec_cli.errors import SimrecError
from simrec_cli.model_files.loading import INSTALLED, LoadedModel, load_model
from simrec_cli.models.precision import cpu_flags, fast_bf16
from simrec_cli.predict.defaults import BENCHMARK_FORMATS
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.runtimes.base import INSTALL_HINTS
from simrec_cli.runtimes.choice import pass_seconds

GATE_POINTS = 0.5  # Acc@0.5 within this many points of fp32's
GATE_AGREEMENT = 97.0  # and at least this share (%) of boxes with IoU >= GATE_IOU against fp32's
GATE_IOU = 0.99
BATCH1_PASSES = 7
BATCHN_PASSES = 3


@dataclass(frozen=True)
class Candidate:
    format: str  # pytorch, onnx, openvino
    runtime: str
    precision: str


@dataclass
class BenchmarkRow:
    """One candidate's figures; `note` says why figures are missing (a runtime not installed)."""

    format: str
    runtime: str
    precision: str
    file: str | None = None
    size_mb: float | None = None
    acc50: float | None = None
    acc50_delta: float | None = None  # against PyTorch fp32, in points
    agreement: float | None = None  # % of boxes with IoU >= 0.99 against PyTorch fp32's
    gate: bool | None = None
    ms_batch1: float | None = None
    images_per_s: float | None = None
    note: str = ""


@dataclass
class BenchmarkResult:
    checkpoint: str
    split: str
    expressions: int
    batch: int
    machine: dict[str, object]
    rows: list[BenchmarkRow] = field(default_factory=list)
    read_files: list[Path] = field(default_factory=list)  # the evaluated dataset's files (not part of the results)

    def as_dict(self) -> dict[str, object]:
        results = asdict(self)
        del results["read_files"]
        return results


def machine_description(device: torch.device) -> dict[str, object]:
    """The GPU's name, or the CPU's model and the flags that decide bf16 and int8 speed; the threads used."""
    if device.type == "cuda":
        return {"gpu": torch.cuda.get_device_name(device)}
    from simrec_cli.runtimes.choice import machine_signature

    signature = machine_signature()
    return {"cpu": signature["cpu_model"] or platform.processor(), "cpu_flags": sorted(cpu_flags()),
            "threads": torch.get_num_threads()}  # fmt: skip


def candidates(formats: tuple[str, ...], device: torch.device) -> list[Candidate]:
    """PyTorch fp32 first (the reference every row is checked against); bf16 only where the device runs it natively."""
    unknown = [name for name in formats if name not in BENCHMARK_FORMATS]
    if unknown:
        raise SimrecError(f"unknown format {unknown[0]!r} (--formats)", f"use {', '.join(BENCHMARK_FORMATS)}")
    bf16 = fast_bf16(device)
    planned = [Candidate("pytorch", "torch", "fp32")]
    if "pytorch" in formats and bf16:
        planned.append(Candidate("pytorch", "torch", "bf16"))
    if "onnx" in formats:
        planned.append(Candidate("onnx", "onnxruntime", "fp32"))
    if "openvino" in formats and device.type == "cpu":
        planned += [Candidate("openvino", "openvino", "fp32"), *([Candidate("openvino", "openvino", "bf16")] * bf16)]
    return planned


def run_benchmark(
    checkpoint: Path,
    *,
    workdir: Path,
    kept_in: Path | None = None,
    data_root: Path | None = None,
    split: str = "val",
    formats: tuple[str, ...] = BENCHMARK_FORMATS,
    batch: int = 8,
    device: str = "auto",
    reporter: Reporter | None = None,
) -> BenchmarkResult:
    """Benchmark `checkpoint` on `split`; exported files go to `workdir`, whose content will be kept in `kept_in`
    (the rows name the files there), or removed (None: the rows name no exported file)."""
    reporter = reporter or NullReporter()
    torch_device = resolve_device(device)
    planned = candidates(formats, torch_device)
    bench = _Bench(checkpoint, workdir, kept_in, data_root, split, batch, torch_device)
    for candidate in reporter.track(_announced(planned, reporter), len(planned), "benchmark"):
        bench.rows.append(bench.measure(candidate))
    return BenchmarkResult(str(checkpoint), split, bench.expressions, batch, machine_description(torch_device),
                           bench.rows, bench.read_files)  # fmt: skip


def _announced(planned: list[Candidate], reporter: Reporter) -> Iterator[Candidate]:
    for candidate in planned:
        reporter.status(f"{candidate.format} {candidate.precision}")
        yield candidate


class _Bench:
    """The state one benchmark keeps between rows: the exported files and PyTorch fp32's boxes."""

    def __init__(
        self,
        checkpoint: Path,
        workdir: Path,
        kept_in: Path | None,
        data_root: Path | None,
        split: str,
        batch: int,
        device: torch.device,
    ) -> None:
        self.checkpoint, self.workdir, self.kept_in = checkpoint, workdir, kept_in
        self.data_root, self.split = data_root, split
        self.batch, self.device = batch, device
        self.rows: list[BenchmarkRow] = []
        self.reference: tuple[float, np.ndarray] | None = None  # fp32 Acc@0.5 and boxes
        self.expressions = 0
        self.read_files: list[Path] = []

    def measure(self, candidate: Candidate) -> BenchmarkRow:
        row = BenchmarkRow(candidate.format, candidate.runtime, candidate.precision)
        if not INSTALLED[candidate.runtime]():
            row.note = f"{candidate.runtime} is not installed: {INSTALL_HINTS[candidate.runtime]}"
            return row
        path = self._file(candidate.format)
        row.file = self._shown(path)
        row.size_mb = round(sum(part.stat().st_size for part in _parts(path)) / 2**20, 1)
        loaded = load_model(path, device=str(self.device), precision=candidate.precision, runtime=candidate.runtime)
        acc50, boxes = self._evaluate(loaded)
        if self.reference is None:
            self.reference = (acc50, boxes)
        reference_acc50, reference_boxes = self.reference
        row.acc50 = round(acc50, 2)
        row.acc50_delta = round(acc50 - reference_acc50, 2)
        row.agreement = round(100 * float(np.mean(box_iou_xyxy(boxes, reference_boxes) >= GATE_IOU)), 2)
        row.gate = abs(row.acc50_delta) <= GATE_POINTS and row.agreement >= GATE_AGREEMENT
        input_shape = tuple(loaded.settings.dataset.input_shape)
        length = loaded.settings.dataset.max_token_length
        row.ms_batch1 = round(1000 * pass_seconds(loaded.runtime, 1, input_shape, length, BATCH1_PASSES), 2)
        row.images_per_s = round(self.batch / pass_seconds(loaded.runtime, self.batch, input_shape, length,
                                                           BATCHN_PASSES), 2)  # fmt: skip
        return row

    def _file(self, file_format: str) -> Path:
        """The checkpoint itself for PyTorch; otherwise its export in `workdir`, written on first use."""
        if file_format == "pytorch":
            return self.checkpoint
        path = self.workdir / EXPORT_NAMES[file_format]
        if path.is_file():
            return path
        if file_format == "onnx":
            from simrec_cli.export.onnx import export_onnx

            export_onnx(self.checkpoint, path, dynamic_batch=True)
        else:
            from simrec_cli.export.openvino import export_openvino

            export_openvino(self.checkpoint, path)
        return path

    def _shown(self, path: Path) -> str | None:
        """The file a row names: the checkpoint, or an export where it is kept (None when it is removed)."""
        if path == self.checkpoint:
            return str(path)
        return None if self.kept_in is None else str(self.kept_in / path.relative_to(self.workdir))

    def _evaluate(self, loaded: LoadedModel) -> tuple[float, np.ndarray]:
        """Acc@0.5 on the split and every box, in the order of the split's expressions."""
        settings = loaded.settings
        data, sets = evaluation_sets(settings, loaded.vocabulary, loaded.runtime, data_root=self.data_root,
                                     splits=[self.split], reporter=NullReporter())  # fmt: skip
        self.read_files = dataset_files(data)
        dataset = sets[self.split]
        metrics, results = evaluate_split(
            loaded.runtime, dataset, split=self.split, world=World(device=self.device),
            batch_size=settings.train.evaluation.eval_batch_size, num_workers=0, reporter=NullReporter(),
            mask_threshold=settings.model.head.mask_threshold,
            protocol=protocol_named(settings.train.evaluation.protocol),
        )  # fmt: skip
        self.expressions = metrics.count
        return metrics.acc50, np.array([result.box for result in results], np.float64)


def _parts(path: Path) -> list[Path]:
    """A model's files: an OpenVINO IR's weights are in the .bin beside its .xml."""
    return [path, path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path]
