"""The model behind the server: a simrec checkpoint run by PyTorch, or an exported ONNX file run by onnxruntime.

Both offer what the batcher and the answers need: the input size, a tokenizer, a batched forward over
letterboxed canvases that encodes each distinct image once (PyTorch) or once per row (ONNX, whose graph has no
image index), a `prepare` step the batcher runs on its own thread before the first request (compiling the
forward with `--compile`), and a description for `GET /info`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simrec_cli import __version__
from simrec_cli.data.text import Vocabulary
from simrec_cli.errors import SimrecError
from simrec_cli.predict.export import ORT_ERRORS_ONLY
from simrec_cli.predict.predictor import EncodedExpression, Predictor, encode_expression
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.serve.options import ServeOptions

ONNX_METADATA_PREFIX = "simrec."


class ServedModel(Protocol):
    """What the server needs from a model."""

    input_shape: tuple[int, int]
    has_mask: bool
    mask_threshold: float

    def encode(self, expression: str) -> EncodedExpression: ...

    def prepare(self) -> None:
        """Work done once, on the thread that will run every forward pass, before the server says it is ready."""
        ...

    def forward(self, canvases: Sequence[np.ndarray], rows: Sequence[int], tokens: np.ndarray) -> dict[str, np.ndarray]:
        """Row k pairs canvases[rows[k]] with tokens[k]: "boxes" [N, 5] in letterbox pixels, "masks" [N, H, W]."""
        ...

    def describe(self) -> dict[str, Any]: ...


class TorchModel:
    """A checkpoint through the same Predictor `simrec predict` uses, so the answers are the same.

    With `compile_batch_sizes`, `prepare` compiles the forward for those numbers of expressions per pass (the
    batcher's passes are padded up to one or split over several, whichever their measured times say is faster).
    It runs on the batcher's thread because CUDA graphs are recorded per thread: compiled anywhere else, the first
    requests would record them again.
    """

    def __init__(
        self,
        predictor: Predictor,
        checkpoint: Path,
        compile_batch_sizes: Sequence[int] = (),
        reporter: Reporter | None = None,
    ) -> None:
        self.predictor = predictor
        self.checkpoint = checkpoint
        self.compile_batch_sizes = tuple(compile_batch_sizes)
        self.reporter = reporter or NullReporter()
        self.input_shape = predictor.input_shape
        self.has_mask = predictor.has_mask
        self.mask_threshold = predictor.settings.model.head.mask_threshold

    def encode(self, expression: str) -> EncodedExpression:
        return self.predictor.encode(expression)

    def prepare(self) -> None:
        if not self.compile_batch_sizes:
            return
        sizes = ", ".join(map(str, self.compile_batch_sizes))
        self.reporter.info(f"compiling the forward for batch sizes {sizes} (once, before serving)")
        started = time.perf_counter()
        try:
            self.predictor.compile(self.compile_batch_sizes)
        except Exception as exc:  # inductor and its C++ toolchain raise many types; one line says which
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise SimrecError(
                f"compiling the model failed: {type(exc).__name__}: {first_line}",
                "serve without --compile: the eager forward answers the same, only slower",
            ) from exc
        self.reporter.info(f"compiled in {time.perf_counter() - started:.0f} s")

    def forward(self, canvases: Sequence[np.ndarray], rows: Sequence[int], tokens: np.ndarray) -> dict[str, np.ndarray]:
        return self.predictor.forward(canvases, rows, tokens)

    def describe(self) -> dict[str, Any]:
        settings = self.predictor.settings
        return {
            "model": settings.model.name,
            "dataset": settings.dataset.name,
            "vocabulary_size": len(self.predictor.vocabulary),
            "input_size": list(self.input_shape),
            "masks": self.has_mask,
            "device": str(self.predictor.device),
            "precision": self.predictor.precision.name,
            "compiled_batch_sizes": list(self.compile_batch_sizes),
            "runtime": "pytorch",
            "file": self.checkpoint.name,  # a client learns which model, not where the server keeps it
            "version": __version__,
        }


class OnnxModel:
    """An ONNX file from `simrec export`, run by onnxruntime; its metadata holds the vocabulary and sizes."""

    def __init__(self, path: Path, device: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise SimrecError("serving an ONNX file needs onnxruntime", "pip install simrec[export]") from exc
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session_options = ort.SessionOptions()
        session_options.log_severity_level = ORT_ERRORS_ONLY  # its notes on float16 folding are not for the user
        try:
            self.session = ort.InferenceSession(str(path), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise SimrecError(f"{path} cannot be loaded by onnxruntime: {exc}", "export it again") from exc
        self.path = path
        self.metadata = _onnx_metadata(self.session, path)
        height, width = self.metadata["input_size"]
        self.input_shape = (int(height), int(width))
        self.vocabulary = Vocabulary.from_list(self.metadata["vocabulary"])
        self.max_token_length = int(self.metadata["max_token_length"])
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.has_mask = "masks" in self.output_names
        self.mask_threshold = float(self.metadata.get("mask_threshold") or 0.5)
        self.dynamic_batch = bool(self.metadata.get("dynamic_batch"))
        self.provider = self.session.get_providers()[0]

    def encode(self, expression: str) -> EncodedExpression:
        return encode_expression(self.vocabulary, expression, self.max_token_length)

    def prepare(self) -> None:
        """Nothing left to do: onnxruntime optimized the graph when the session was created."""

    def forward(self, canvases: Sequence[np.ndarray], rows: Sequence[int], tokens: np.ndarray) -> dict[str, np.ndarray]:
        images = np.stack([canvases[row] for row in rows]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        if self.dynamic_batch:
            outputs = self.session.run(self.output_names, {"image": images, "tokens": tokens})
        else:  # a file exported for batch 1 runs one row at a time
            parts = [self.session.run(self.output_names, {"image": images[k : k + 1], "tokens": tokens[k : k + 1]})
                     for k in range(len(rows))]  # fmt: skip
            outputs = [np.concatenate(column) for column in zip(*parts, strict=True)]
        return dict(zip(self.output_names, outputs, strict=True))

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.metadata.get("model"),
            "dataset": self.metadata.get("dataset"),
            "vocabulary_size": len(self.vocabulary),
            "input_size": list(self.input_shape),
            "masks": self.has_mask,
            "device": "cuda" if self.provider.startswith("CUDA") else "cpu",
            "precision": "fp16" if self.metadata.get("half") else "fp32",
            "compiled_batch_sizes": [],
            "runtime": f"onnxruntime ({self.provider})",
            "file": self.path.name,
            "version": __version__,
        }


def _onnx_metadata(session: Any, path: Path) -> dict[str, Any]:
    """The `simrec.*` metadata of an exported file, JSON values decoded."""
    raw = session.get_modelmeta().custom_metadata_map
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(ONNX_METADATA_PREFIX):
            try:
                metadata[key.removeprefix(ONNX_METADATA_PREFIX)] = json.loads(value)
            except json.JSONDecodeError:
                metadata[key.removeprefix(ONNX_METADATA_PREFIX)] = value
    missing = [key for key in ("input_size", "vocabulary", "max_token_length") if key not in metadata]
    if missing:
        raise SimrecError(f"{path} has no simrec metadata ({', '.join(missing)})", "export it with simrec export")
    return metadata


def load_model(options: ServeOptions, reporter: Reporter | None = None) -> ServedModel:
    """The model `options.model_path` names: an `.onnx` file through onnxruntime, anything else as a checkpoint."""
    if options.is_onnx:
        if options.precision not in ("auto", "fp32"):
            raise SimrecError(
                f"--precision {options.precision} does not apply to an ONNX file (its precision is fixed at export)",
                "export with `simrec export --half` for float16, or serve the checkpoint",
            )
        return OnnxModel(options.model_path, options.device)
    predictor = Predictor.from_checkpoint(
        options.model_path, device=options.device, precision=options.precision, reporter=reporter
    )
    if reporter is not None:
        reporter.info(f"precision {predictor.precision.describe()} on {predictor.device}")
    return TorchModel(predictor, options.model_path, options.compile_batch_sizes, reporter)
