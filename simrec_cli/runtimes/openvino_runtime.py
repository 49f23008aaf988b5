"""ONNX files and OpenVINO IR in OpenVINO's CPU plugin, in f32 or bf16.

OpenVINO is imported only here, when a model is run with it, so commands that do not use it start as fast as
before. Its threads follow torch's (OMP_NUM_THREADS, or one per core), so every runtime is timed and run on the
same share of the machine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simrec_cli.errors import SimrecError
from simrec_cli.runtimes.base import missing_runtime
from simrec_cli.runtimes.metadata import decode_metadata
from simrec_cli.runtimes.signal_stack import signal_stack_kept

# OpenVINO's names of the precisions simrec speaks of.
INFERENCE_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def import_openvino(what: str) -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise missing_runtime("openvino", what) from exc
    return openvino


class OpenVinoRunner:
    """A model compiled by OpenVINO's CPU plugin for any batch size, with one inference request."""

    def __init__(self, source: Path | Any, precision: str, threads: int | None = None) -> None:
        """`source`: an .xml/.onnx path, or an `openvino.Model` already in memory (an export being checked)."""
        openvino = import_openvino(f"running {source}")
        core = openvino.Core()
        try:
            model = core.read_model(str(source)) if isinstance(source, Path) else source
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise SimrecError(f"{source} cannot be read by OpenVINO: {first}", "export it again") from exc
        self.metadata = rt_metadata(model)
        self.output_names = [output.get_any_name() for output in model.outputs]
        config = {
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[precision],
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
            "PERFORMANCE_HINT": "LATENCY",
        }
        with signal_stack_kept():  # the CPU plugin leaves the thread a signal stack it frees later
            self.compiled = core.compile_model(model, "CPU", config)
            self.request = self.compiled.create_infer_request()
        self.provider = "CPU"

    def run(self, images: np.ndarray, tokens: np.ndarray) -> list[np.ndarray]:
        self.request.infer({"image": images, "tokens": tokens})
        # the request reuses its output buffers on the next call: the answers are copied out
        return [self.request.get_output_tensor(index).data.copy() for index in range(len(self.output_names))]


def rt_metadata(model: Any) -> dict[str, Any]:
    """The `simrec.*` entries OpenVINO keeps under rt_info['framework'] (an ONNX file's metadata_props)."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info()["framework"]
    return decode_metadata({str(key): str(value.astype(str)) for key, value in framework.items()})
