"""The interface every runtime offers, and the part the runtimes of exported files share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from simrec_cli.errors import SimrecError
from simrec_cli.models.precision import PrecisionChoice

RUNTIMES = ("torch", "onnxruntime", "openvino")
RUNTIME_CHOICES = ("auto", *RUNTIMES)
INSTALL_HINTS = {"onnxruntime": "pip install simrec[export]", "openvino": "pip install simrec[openvino]"}
UNIT_RANGE = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # an exported graph normalizes inside: it takes RGB / 255


class Runtime(ABC):
    """A model ready to answer, in one runtime and precision.

    `runtime(images, tokens, image_index=None)` takes float32 images [N, 3, H, W] (RGB / 255, then normalized by
    `input_mean`/`input_std`) and int64 tokens [R, L]; row k of the answer pairs images[image_index[k]] (images[k]
    without an index) with tokens[k]. It returns "boxes" [R, 5] (x1, y1, x2, y2, score in letterbox pixels) and, for
    mask models, "masks" [R, H, W] probabilities, as torch tensors.
    """

    name: str
    precision: PrecisionChoice
    device: torch.device
    path: Path
    reason: str = "as asked"  # why this runtime runs the model (see model_files/loading.py)
    input_mean: tuple[float, ...] = UNIT_RANGE[0]
    input_std: tuple[float, ...] = UNIT_RANGE[1]

    @property
    @abstractmethod
    def has_mask_head(self) -> bool: ...

    @abstractmethod
    def __call__(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]: ...

    @property
    def compiled(self) -> bool:
        return False

    def compile(self, batch_sizes: Sequence[int], input_shape: Sequence[int], token_length: int) -> None:
        """Only PyTorch compiles; the other runtimes optimize the model when they load it."""
        raise SimrecError(
            f"--compile applies to the torch runtime; {self.name} optimizes the model when it loads",
            "leave out --compile, or give --runtime torch with a checkpoint",
        )

    def describe(self) -> str:
        """Two lines for the user: the runtime and why, then the precision and why, and the device."""
        return f"runtime {self.where} ({self.reason})\nprecision {self.precision.describe()} on {self.device}"

    @property
    def where(self) -> str:
        """The runtime as the user reads it: torch eager, openvino (CPU), ..."""
        return self.name


class Runner(Protocol):
    """A loaded exported file: input arrays in, output arrays out (in `output_names` order)."""

    output_names: list[str]
    provider: str  # where it runs, as its runtime names it

    def run(self, images: np.ndarray, tokens: np.ndarray) -> list[np.ndarray]: ...


class ExportedRuntime(Runtime):
    """An exported file's runner behind the `Runtime` interface.

    Its graph has no image index, so each image is repeated once per expression; a file exported for batch 1 runs
    one row at a time.
    """

    def __init__(self, name: str, runner: Runner, path: Path, precision: PrecisionChoice, dynamic_batch: bool) -> None:
        self.name = name
        self.runner = runner
        self.path = path
        self.precision = precision
        self.dynamic_batch = dynamic_batch
        self.device = torch.device("cpu")

    @property
    def has_mask_head(self) -> bool:
        return "masks" in self.runner.output_names

    def __call__(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if image_index is not None:
            images = images.index_select(0, image_index.to(images.device))
        pixels = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        token_ids = np.ascontiguousarray(tokens.detach().cpu().numpy(), dtype=np.int64)
        if self.dynamic_batch:
            outputs = self.runner.run(pixels, token_ids)
        else:
            parts = [self.runner.run(pixels[k : k + 1], token_ids[k : k + 1]) for k in range(len(token_ids))]
            outputs = [np.concatenate(column) for column in zip(*parts, strict=True)]
        return {name: torch.from_numpy(value) for name, value in zip(self.runner.output_names, outputs, strict=True)}

    @property
    def where(self) -> str:
        return f"{self.name} ({self.runner.provider})"


def missing_runtime(name: str, what: str) -> SimrecError:
    """The error for a runtime that is not installed."""
    return SimrecError(f"{what} needs {name}, which is not installed", INSTALL_HINTS.get(name, f"pip install {name}"))
