"""`simrec export --format onnx`: the eval model with its decoding inside, as an ONNX file usable without simrec.

The graph takes the letterboxed image scaled to [0, 1] (the mean/std normalization of the checkpoint is
inside the graph, so every user does the same three preprocessing steps) and the token ids, and returns the
box with its score in letterbox pixels (and the mask probabilities for mask models). The settings, the vocabulary
and the preprocessing travel in the file's metadata and in a JSON file beside it (runtimes/metadata.py).
The OpenVINO export (export/openvino.py) converts this same graph.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import load_model_from_checkpoint, read_checkpoint
from simrec_cli.engine.distributed import resolve_device
from simrec_cli.engine.metrics import box_iou_xyxy
from simrec_cli.errors import SimrecError
from simrec_cli.export.defaults import DEFAULT_OPSET, MIN_OPSET
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.runtimes.metadata import ONNX_FORMAT, export_metadata, metadata_strings
from simrec_cli.settings import Settings
from simrec_cli.storage.outputs import OutputFile, Outputs

# On the check input each exported box must overlap PyTorch's this much, or score within SCORE_TIE of it (a
# near tie between candidate boxes that float16 rounding may break the other way); else nothing is written.
MIN_BOX_IOU = 0.99
SCORE_TIE = 0.01
CHECK_BATCH = 3  # rows of the check input of a file that takes any batch size
OUTPUT_OPTION = "-o/--output"


class ExportedModel(nn.Module):
    """What the exported graph computes: normalize, run the eval model, return float32 boxes (and masks)."""

    def __init__(self, model: nn.Module, settings: Settings) -> None:
        super().__init__()
        self.model = model
        data = settings.train.data
        self.register_buffer("mean", torch.tensor(data.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(data.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        normalized = (image - self.mean) / self.std
        outputs = self.model(normalized, tokens)
        masks = outputs.get("masks")
        return (outputs["boxes"],) if masks is None else (outputs["boxes"], masks)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    min_box_iou: float | None  # None: no runtime was installed to check the file with
    checked_by: str | None  # the runtime that ran the check


@dataclass
class TracedCheckpoint:
    """A checkpoint's model wrapped for export, with what the metadata and the checks need."""

    wrapper: ExportedModel
    settings: Settings
    vocabulary: Vocabulary
    has_mask: bool
    epoch: int
    device: torch.device

    @property
    def output_names(self) -> list[str]:
        return ["boxes", "masks"] if self.has_mask else ["boxes"]

    def metadata(self, file_format: str, checkpoint: Path, **extra: Any) -> dict[str, Any]:
        return export_metadata(self.settings, self.vocabulary, self.has_mask, file_format, checkpoint=str(checkpoint),
                               epoch=self.epoch, **extra)  # fmt: skip

    def check_inputs(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return example_inputs(self.settings, self.vocabulary, self.device, batch)

    def to_onnx(self, path: Path, opset: int, dynamic_batch: bool) -> None:
        """Trace the wrapper into the ONNX file `path`."""
        inputs = self.check_inputs(batch=1)
        _trace_to_onnx(self.wrapper, inputs, path, self.output_names, opset, dynamic_batch)


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise SimrecError("exporting needs the onnx package", "pip install simrec[export]") from exc
    return onnx


def check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise SimrecError(f"--opset {opset} is too old for this model", f"use --opset {MIN_OPSET} or newer (einsum)")


def load_for_export(checkpoint: Path, device: str, reporter: Reporter) -> TracedCheckpoint:
    torch_device = resolve_device(device)
    payload = read_checkpoint(checkpoint)
    model, settings, vocabulary = load_model_from_checkpoint(checkpoint, torch_device, reporter=reporter,
                                                             payload=payload)  # fmt: skip
    has_mask = bool(getattr(model, "has_mask_head", False))
    wrapper = ExportedModel(model, settings).to(torch_device).eval()
    epoch = int(payload.get("best_epoch") or payload.get("epoch") or 0)
    return TracedCheckpoint(wrapper, settings, vocabulary, has_mask, epoch, torch_device)


def export_onnx(
    checkpoint: Path,
    output: Path | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    half: bool = False,
    device: str = "cpu",
    reporter: Reporter | None = None,
) -> ExportResult:
    """Write CHECKPOINT as ONNX (default: beside it, `.onnx`) plus `<output>.json`, committed together."""
    check_opset(opset)
    onnx = require_onnx()
    reporter = reporter or NullReporter()
    output = output or Path(checkpoint).with_suffix(".onnx")
    if output.suffix.lower() != ".onnx":
        raise SimrecError(f"output {output} must end in .onnx", "e.g. --output model.onnx")
    outputs, (model_file, metadata_file) = export_outputs(
        checkpoint, output, ("ONNX file", ".onnx"), ("metadata file", ".json")
    )
    traced = load_for_export(checkpoint, device, reporter)
    metadata = traced.metadata(ONNX_FORMAT, checkpoint, opset=opset, dynamic_batch=dynamic_batch, half=half)
    with outputs:  # both renamed into place together, or neither
        with outputs.writing(model_file) as temporary:
            traced.to_onnx(temporary, opset, dynamic_batch)
            proto = onnx.load(str(temporary))
            if half:
                proto = _to_float16(proto)
            for key, value in metadata_strings(metadata).items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.checker.check_model(proto)
            onnx.save(proto, str(temporary))
            box_iou = _check_with_onnxruntime(temporary, traced, CHECK_BATCH if dynamic_batch else 1)
        outputs.write_json(metadata_file, metadata)
    return ExportResult(output, metadata_file.path, metadata, box_iou, "onnxruntime" if box_iou is not None else None)


def export_outputs(checkpoint: Path, output: Path, *parts: tuple[str, str]) -> tuple[Outputs, list[OutputFile]]:
    """The files of one export, `output` with each (words, suffix) of `parts`, as outputs committed together; all
    checked now, before the model loads, and none of them the checkpoint itself."""
    files = [OutputFile(output.with_suffix(suffix), what, OUTPUT_OPTION) for what, suffix in parts]
    return Outputs(*files, reads=[checkpoint]), files


def example_inputs(
    settings: Settings, vocabulary: Vocabulary, device: torch.device, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed, non-trivial inputs (random image, a few real word ids then padding) to trace and check with."""
    height, width = settings.dataset.input_shape
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, height, width, generator=generator)
    length = settings.dataset.max_token_length
    tokens = torch.zeros(batch, length, dtype=torch.int64)
    words = min(length, 4)
    first_word = Vocabulary.CLS + 1
    tokens[:, :words] = torch.randint(
        first_word, max(len(vocabulary), first_word + 1), (batch, words), generator=generator
    )
    return image.to(device), tokens.to(device)


def _trace_to_onnx(
    wrapper: nn.Module,
    inputs: tuple[torch.Tensor, torch.Tensor],
    path: Path,
    output_names: list[str],
    opset: int,
    dynamic_batch: bool,
) -> None:
    require_onnx()  # torch's exporter needs it too
    axes = {name: {0: "batch"} for name in ["image", "tokens", *output_names]} if dynamic_batch else None
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter warns about its own deprecation and about traced shape arithmetic; the
        # comparison with PyTorch after export is what tells whether the file is right.
        warnings.simplefilter("ignore")
        with _native_output_held() as held:
            try:
                torch.onnx.export(
                    wrapper,
                    inputs,
                    str(path),
                    dynamo=False,
                    input_names=["image", "tokens"],
                    output_names=output_names,
                    opset_version=opset,
                    dynamic_axes=axes,
                    do_constant_folding=True,
                )
            except (RuntimeError, ValueError) as exc:
                exc.add_note(held())  # the graph torch printed: part of the traceback that --debug shows
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SimrecError(
                    f"ONNX export failed at opset {opset}: {first}",
                    f"try another --opset, e.g. {DEFAULT_OPSET} (the default; {MIN_OPSET} is the oldest that works)",
                ) from exc


@contextlib.contextmanager
def _native_output_held() -> Iterator[Callable[[], str]]:
    """Hold what native code writes to file descriptor 1 in the block; yields a function that returns it.

    When an export fails, torch's C++ side prints the whole traced graph (hundreds of lines) straight to
    stdout, past Python's sys.stdout, ahead of the one line that says what went wrong.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors="replace"))[1]
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _to_float16(proto: Any) -> Any:
    """float16 weights and arithmetic with float32 inputs and outputs.

    Converting the exported graph (rather than tracing a half model) clamps constants such as the -1e9
    attention mask fill to the float16 range instead of failing on them.
    """
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise SimrecError("--half needs onnxruntime's float16 converter", "pip install simrec[export]") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_float_to_float16(proto, keep_io_types=True)
    _sort_nodes(converted.graph)
    return converted


def _sort_nodes(graph: Any) -> None:
    """Order the nodes so each comes after the nodes it reads from, as ONNX requires.

    The float16 converter appends the casts of the graph inputs at the end of the node list.
    """
    available = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise SimrecError("the float16 graph has a cycle or a missing input", "export without --half")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        ready_ids = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in ready_ids]
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _check_with_onnxruntime(path: Path, traced: TracedCheckpoint, batch: int) -> float | None:
    """Smallest IoU between onnxruntime's and PyTorch's boxes on the check input; None without onnxruntime."""
    from simrec_cli.runtimes.onnxruntime_runtime import OnnxRuntimeRunner, onnxruntime_installed

    if not onnxruntime_installed():
        return None
    return check_against_torch(
        OnnxRuntimeRunner(path, "cpu").run, traced, batch, "try another --opset, or export without --half"
    )


def check_against_torch(
    run: Callable[[np.ndarray, np.ndarray], list[np.ndarray]], traced: TracedCheckpoint, batch: int, fix: str
) -> float:
    """Smallest IoU between the exported file's boxes (`run` on the check input) and PyTorch's.

    A box below MIN_BOX_IOU whose score is not a near tie with PyTorch's is an error, so a wrong file is
    never put in place.
    """
    image, tokens = traced.check_inputs(batch)
    exported_boxes = run(image.cpu().numpy(), tokens.cpu().numpy())[0]
    with torch.no_grad():
        torch_boxes = traced.wrapper(image, tokens)[0].cpu().numpy()
    ious = box_iou_xyxy(exported_boxes[:, :4].astype(np.float64), torch_boxes[:, :4].astype(np.float64))
    ties = np.abs(exported_boxes[:, 4] - torch_boxes[:, 4]) <= SCORE_TIE
    if not ((ious >= MIN_BOX_IOU) | ties).all():
        raise SimrecError(
            f"the exported graph's boxes overlap PyTorch's only with IoU {ious.min():.3f} on a test input", fix
        )
    return float(ious.min())
