"""ONNX files in ONNX Runtime: on the CPU, or on CUDA where its CUDA provider is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from simrec_cli.errors import SimrecError
from simrec_cli.runtimes.base import missing_runtime
from simrec_cli.runtimes.metadata import decode_metadata

ORT_ERRORS_ONLY = 3  # onnxruntime log severity: 0 verbose, 1 info, 2 warning, 3 error


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRuntimeRunner:
    """One onnxruntime session over an ONNX file."""

    def __init__(self, path: Path, device: str, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_runtime("onnxruntime", f"running {path}") from exc
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = ORT_ERRORS_ONLY  # its notes on float16 folding are not the user's to act on
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise SimrecError(f"{path} cannot be loaded by onnxruntime: {exc}", "export it again") from exc
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.provider = self.session.get_providers()[0]

    @property
    def metadata(self) -> dict[str, Any]:
        return decode_metadata(self.session.get_modelmeta().custom_metadata_map)

    def run(self, images: np.ndarray, tokens: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {"image": images, "tokens": tokens})
