"""The model behind the server: a checkpoint or an exported file in any runtime (see `simrec_cli.runtimes`).

It offers what the batcher and the answers need: the input size, a tokenizer, a batched forward over
letterboxed canvases that encodes each distinct image once (PyTorch) or once per row (exported graphs have no
image index), a `prepare` step the batcher runs on its own thread before the first request (compiling the
forward with `--compile`), and a description for `GET /info`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from simrec_cli import __version__
from simrec_cli.errors import SimrecError
from simrec_cli.predict.predictor import EncodedExpression, Predictor
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.serve.options import ServeOptions


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


class PredictorModel:
    """A checkpoint or exported file through the same Predictor `simrec predict` uses, so the answers are the same.

    With `compile_batch_sizes` (PyTorch only), `prepare` compiles the forward for those numbers of expressions per
    pass (the batcher's passes are padded up to one or split over several, whichever their measured times say is
    faster). It runs on the batcher's thread because CUDA graphs are recorded per thread: compiled anywhere else,
    the first requests would record them again.
    """

    def __init__(
        self, predictor: Predictor, compile_batch_sizes: Sequence[int] = (), reporter: Reporter | None = None
    ) -> None:
        self.predictor = predictor
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
        runtime = self.predictor.runtime
        return {
            "model": settings.model.name,
            "dataset": settings.dataset.name,
            "vocabulary_size": len(self.predictor.vocabulary),
            "input_size": list(self.input_shape),
            "masks": self.has_mask,
            "device": str(self.predictor.device),
            "precision": self.predictor.precision.name,
            "compiled_batch_sizes": list(self.compile_batch_sizes),
            "runtime": runtime.where,
            "runtime_reason": runtime.reason,
            "file": runtime.path.name,  # a client learns which model, not where the server keeps it
            "version": __version__,
        }


def load_model(options: ServeOptions, reporter: Reporter | None = None) -> ServedModel:
    """The model `options.model_path` names, in the runtime `options.runtime` (auto: the fastest here)."""
    runtime = "torch" if options.compile and options.runtime == "auto" else options.runtime
    predictor = Predictor.load(
        options.model_path, device=options.device, precision=options.precision, runtime=runtime, reporter=reporter
    )
    if reporter is not None:
        reporter.info(predictor.runtime.describe())
    return PredictorModel(predictor, options.compile_batch_sizes, reporter)
