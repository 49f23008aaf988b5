"""Open a checkpoint or an exported file in the runtime asked for, or the fastest one (`auto`), and say why.

Which runtimes can run which file:

| file                          | runtimes                                                   |
|-------------------------------|------------------------------------------------------------|
| checkpoint (.pth)             | torch; openvino (converted once, kept in the cache folder) |
| ONNX (.onnx)                  | onnxruntime, openvino                                      |
| OpenVINO IR (.xml with .bin)  | openvino                                                   |
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from simrec_cli import __version__
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.distributed import resolve_device
from simrec_cli.engine.loading import load_for_inference
from simrec_cli.errors import SimrecError, listed, quoted
from simrec_cli.models.precision import PrecisionChoice, resolve_precision
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.runtimes.base import INSTALL_HINTS, RUNTIME_CHOICES, ExportedRuntime, Runtime
from simrec_cli.runtimes.choice import (
    CACHE_ENV,
    MEASURE_MIN_ROWS,
    SpeedRecord,
    cache_dir,
    expressions,
    fastest,
    measured_reason,
    package_version,
    pass_seconds,
)
from simrec_cli.runtimes.metadata import ExportedFacts, decode_metadata
from simrec_cli.runtimes.onnxruntime_runtime import OnnxRuntimeRunner, onnxruntime_installed
from simrec_cli.runtimes.openvino_runtime import OpenVinoRunner, import_openvino, openvino_installed, rt_metadata
from simrec_cli.runtimes.torch_runtime import TorchRuntime
from simrec_cli.schemas.reports import EXPORT_METADATA
from simrec_cli.settings import Settings

RUNNABLE_BY = {"checkpoint": ("torch", "openvino"), "onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",)}
INSTALLED: dict[str, Callable[[], bool]] = {
    "torch": lambda: True,
    "onnxruntime": onnxruntime_installed,
    "openvino": openvino_installed,
}
RUNTIME_ENV = "SIMREC_RUNTIME"
KIND_NAMES = {"checkpoint": "a checkpoint", "onnx": "an ONNX file", "openvino": "an OpenVINO IR"}
CONVERT_KEY = "openvino:convert"  # the record's entry for converting a checkpoint to OpenVINO


@dataclass
class LoadedModel:
    """A runtime ready to answer, with the settings and vocabulary its file carries."""

    runtime: Runtime
    settings: Settings
    vocabulary: Vocabulary

    def describe(self) -> str:
        return self.runtime.describe()


def artefact_kind(path: Path) -> str:
    """checkpoint, onnx or openvino, by the file's name."""
    suffix = Path(path).suffix.lower()
    return {".onnx": "onnx", ".xml": "openvino"}.get(suffix, "checkpoint")


def model_signature(settings: Settings, vocabulary: Vocabulary) -> dict[str, Any]:
    """What decides a model's speed: its architecture, input size, expression length and vocabulary size."""
    return {"model": settings.model.model_dump(mode="json"), "input_shape": list(settings.dataset.input_shape),
            "tokens": settings.dataset.max_token_length, "vocabulary": len(vocabulary)}  # fmt: skip


def load_model(
    path: Path,
    *,
    device: str = "auto",
    precision: str = "auto",
    runtime: str = "auto",
    rows: int | None = None,
    reporter: Reporter | None = None,
    payload: dict[str, Any] | None = None,
) -> LoadedModel:
    """`path` ready to run in `runtime` (auto: the fastest this machine runs for `rows` rows; None: a server).

    The environment variable SIMREC_RUNTIME, where set, names the runtime `auto` takes for the files it can run
    (e.g. torch: every checkpoint in PyTorch, without measuring).

    `precision` is auto, fp32 or bf16 (`resolve_precision`); an ONNX file in onnxruntime runs in the precision it
    was exported in. `payload` is a checkpoint already in memory (an original SimREC checkpoint imported on the
    fly; `path` names it): it runs in PyTorch.
    """
    reporter = reporter or NullReporter()
    path = Path(path)
    kind = artefact_kind(path)
    preferred = os.environ.get(RUNTIME_ENV) or "auto"
    reason = "as asked"
    if runtime == "auto" and preferred in RUNNABLE_BY[kind]:
        runtime, reason = preferred, f"{RUNTIME_ENV}={preferred}"
    if runtime not in RUNTIME_CHOICES:
        raise SimrecError(f"unknown runtime {quoted(runtime)}", f"use one of: {', '.join(RUNTIME_CHOICES)}")
    torch_device = resolve_device(device)
    opener = _Opener(path, kind, torch_device, precision, reporter, payload)
    if payload is not None:
        if runtime not in ("auto", "torch"):
            raise SimrecError(
                f"--runtime {runtime} needs a checkpoint file written by simrec",
                "write one with `simrec import` first, or leave out --runtime",
            )
        return opener.open("torch", "a checkpoint imported in memory runs in PyTorch")
    if runtime != "auto":
        if runtime not in RUNNABLE_BY[kind]:
            raise SimrecError(
                f"--runtime {runtime} cannot run {path} ({KIND_NAMES[kind]})",
                f"use --runtime {' or '.join(RUNNABLE_BY[kind])}" + _export_hint(kind, runtime),
            )
        if not _runs_on(runtime, torch_device):
            raise SimrecError(f"--runtime {runtime} runs on the CPU, not on {torch_device}", "add --device cpu")
        return opener.open(runtime, reason)
    candidates = [name for name in RUNNABLE_BY[kind] if INSTALLED[name]() and _runs_on(name, torch_device)]
    if not candidates:
        needed = RUNNABLE_BY[kind]
        raise SimrecError(
            f"{path} needs {' or '.join(needed)}, and none is installed",
            " or ".join(INSTALL_HINTS[name] for name in needed if name in INSTALL_HINTS),
        )
    if len(candidates) == 1:
        return opener.open(candidates[0], _only_reason(kind, candidates[0], torch_device))
    return opener.fastest(candidates, rows)


def _runs_on(name: str, device: torch.device) -> bool:
    return device.type == "cpu" or name != "openvino"  # OpenVINO's CPU plugin; torch and onnxruntime run CUDA too


def _export_hint(kind: str, runtime: str) -> str:
    if kind == "checkpoint" and runtime == "onnxruntime":
        return ", or export it first: simrec export CHECKPOINT --format onnx"
    if runtime == "torch":
        return "; torch runs the checkpoint the file was exported from"
    return ""


def _only_reason(kind: str, name: str, device: torch.device) -> str:
    others = [other for other in RUNNABLE_BY[kind] if other != name]
    if not others:
        return "auto: the only runtime for this file"
    missing = [other for other in others if not INSTALLED[other]()]
    if missing:
        hints = "; ".join(f"{other}: {INSTALL_HINTS[other]}" for other in missing)
        return f"auto: {listed(missing)} not installed ({hints})"
    return f"auto: {listed(others)} cannot run on {device}"


class _Opener:
    """Opens one file in any runtime that can run it, converting a checkpoint for OpenVINO once."""

    def __init__(
        self,
        path: Path,
        kind: str,
        device: torch.device,
        precision: str,
        reporter: Reporter,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.path, self.kind, self.device, self.precision, self.reporter = path, kind, device, precision, reporter
        self.payload = payload
        self.opened: dict[str, LoadedModel] = {}
        self.open_seconds: dict[str, float] = {}
        self.convert_seconds: float | None = None

    def open(self, name: str, reason: str) -> LoadedModel:
        if name not in self.opened:
            started = time.perf_counter()
            self.opened[name] = self._load(name)
            self.open_seconds[name] = time.perf_counter() - started
        self.opened[name].runtime.reason = reason
        return self.opened[name]

    def _load(self, name: str) -> LoadedModel:
        if name == "torch":
            model, settings, vocabulary = load_for_inference(self.path, self.device, self.precision,
                                                             reporter=self.reporter, payload=self.payload)  # fmt: skip
            return LoadedModel(TorchRuntime(model, self.path, settings), settings, vocabulary)
        if name == "onnxruntime":
            runner: Any = OnnxRuntimeRunner(self.path, self.device.type)
            facts = ExportedFacts.from_metadata(runner.metadata, self.path)
            return self._exported(name, runner, facts, _fixed_precision(self.precision, facts, self.path), self.path)
        source = self.converted() if self.kind == "checkpoint" else self.path
        choice = resolve_precision(self.precision, torch.device("cpu"))
        runner = OpenVinoRunner(source, choice.name)
        facts = ExportedFacts.from_metadata(runner.metadata, source)
        return self._exported(name, runner, facts, PrecisionChoice(choice.name, choice.reason), source)

    @staticmethod
    def _exported(name: str, runner: Any, facts: ExportedFacts, precision: PrecisionChoice, path: Path) -> LoadedModel:
        runtime = ExportedRuntime(name, runner, path, precision, facts.dynamic_batch)
        return LoadedModel(runtime, facts.settings, facts.vocabulary)

    def converted_path(self) -> Path:
        """Where this checkpoint's OpenVINO IR is kept: named by the file, its size and time, and the versions."""
        stat = self.path.stat()
        identity = (
            f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{__version__}|{package_version('openvino')}"
        )
        return cache_dir() / "openvino" / f"{hashlib.sha256(identity.encode()).hexdigest()[:24]}.xml"

    def converted(self) -> Path:
        """The checkpoint as OpenVINO IR, converted now unless the cache holds it."""
        target = self.converted_path()
        if target.is_file():
            return target
        from simrec_cli.export.openvino import export_openvino

        self.reporter.info(f"converting {self.path} to OpenVINO once (kept in {target.parent})")
        started = time.perf_counter()
        export_openvino(self.path, target, reporter=NullReporter())
        self.convert_seconds = time.perf_counter() - started
        return target

    def fastest(self, candidates: list[str], rows: int | None) -> LoadedModel:
        """The candidate that answers `rows` rows soonest by this machine's record, measured now if need be."""
        first = self.open(candidates[0], "")
        precision = first.runtime.precision.name
        record = SpeedRecord.open(model_signature(first.settings, first.vocabulary), precision)
        missing = [name for name in candidates if name not in record.row_seconds]
        if missing and rows is not None and rows < MEASURE_MIN_ROWS:
            return self._unmeasured(first, candidates, rows)
        if missing:
            self._measure(record, candidates, first)
        chosen = fastest(record, candidates, rows, {name: self._setup_left(record, name) for name in candidates})
        reason = measured_reason(record, chosen, candidates, rows)
        for name in [name for name in self.opened if name != chosen]:
            del self.opened[name]  # free the memory of the runtimes not chosen
        return self.open(chosen, reason)

    def _setup_left(self, record: SpeedRecord, name: str) -> float:
        """Seconds still to spend before `name` answers: none once it is loaded; else loading it, and converting the
        checkpoint first where the cache does not hold it yet, as measured on this machine."""
        if name in self.opened:
            return 0.0
        to_convert = name == "openvino" and self.kind == "checkpoint" and not self.converted_path().is_file()
        return record.setup_seconds.get(name, 0.0) + (record.setup_seconds.get(CONVERT_KEY, 0.0) if to_convert else 0.0)

    def _unmeasured(self, first: LoadedModel, candidates: list[str], rows: int) -> LoadedModel:
        others = listed([name for name in candidates if name != candidates[0]])
        reason = (f"auto: {others} not yet measured on this machine, and measuring costs more than it could save on "
                  f"{expressions(rows)}; eval, serve and benchmark measure it once")  # fmt: skip
        return self.open(candidates[0], reason)

    def _measure(self, record: SpeedRecord, candidates: list[str], first: LoadedModel) -> None:
        self.reporter.info(
            f"timing {listed(candidates)} on this machine once for this model (kept in {record.path.parent})"
        )
        input_shape = tuple(first.settings.dataset.input_shape)
        token_length = first.settings.dataset.max_token_length
        for name in candidates:
            loaded = self.open(name, "")
            record.row_seconds[name] = pass_seconds(loaded.runtime, 1, input_shape, token_length)
            record.setup_seconds[name] = self.open_seconds[name] - (self.convert_seconds or 0.0) * (name == "openvino")
        if self.convert_seconds is not None:
            record.setup_seconds[CONVERT_KEY] = self.convert_seconds
        problem = record.save()
        if problem:
            self.reporter.warning(f"the measured speeds were not kept ({problem}); set {CACHE_ENV} to a "
                                  "writable folder")  # fmt: skip


def _fixed_precision(requested: str, facts: ExportedFacts, path: Path) -> PrecisionChoice:
    """An ONNX file runs in onnxruntime in the precision it was exported in."""
    exported = "fp16" if facts.half else "fp32"
    if requested not in ("auto", exported):
        raise SimrecError(
            f"--precision {requested} does not apply to {path} in onnxruntime (exported in {exported})",
            "give --runtime openvino (fp32 or bf16), export again (--half for float16), or run the checkpoint",
        )
    return PrecisionChoice(exported, "fixed at export")


def read_exported_metadata(path: Path) -> dict[str, Any]:
    """An exported file's metadata without running it: the JSON beside it, else the file's own (through the onnx
    package or OpenVINO's reader)."""
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        return EXPORT_METADATA.read(sidecar)
    if path.suffix.lower() == ".xml":
        return rt_metadata(import_openvino(f"reading {path}").Core().read_model(str(path)))
    try:
        import onnx
    except ImportError as exc:
        raise SimrecError(f"reading {path} needs the onnx package", "pip install simrec[export]") from exc
    proto = onnx.load(str(path), load_external_data=False)
    return decode_metadata({entry.key: entry.value for entry in proto.metadata_props})
