"""`simrec export`: the eval model with its decoding inside, as an ONNX file usable without simrec.

The graph takes the letterboxed image scaled to [0, 1] (the mean/std normalization of the checkpoint is
inside the graph, so every user does the same three preprocessing steps) and the token ids, and returns the
box with its score in letterbox pixels (and the mask probabilities for mask models). The settings a user
needs to prepare inputs and read outputs (input size, pad value, vocabulary, tokenizer rules) are stored in
the file's metadata and in a JSON file beside it.
"""

from __future__ import annotations

import contextlib
import json
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

from simrec_cli.data.files import atomic_path, atomic_write_json, check_writable_file
from simrec_cli.data.letterbox import PAD_VALUE
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.engine.distributed import resolve_device
from simrec_cli.engine.metrics import box_iou_xyxy
from simrec_cli.errors import SimrecError
from simrec_cli.predict.defaults import DEFAULT_OPSET, MIN_OPSET
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import Settings

# On the check input each exported box must overlap PyTorch's this much, or score within SCORE_TIE of it (a
# near tie between candidate boxes that float16 rounding may break the other way); else nothing is written.
MIN_BOX_IOU = 0.99
SCORE_TIE = 0.01
METADATA_FORMAT = "simrec-onnx-v1"
ORT_ERRORS_ONLY = 3  # onnxruntime log severity: 0 verbose, 1 info, 2 warning, 3 error
TOKENIZER_RULES = (
    "lowercase; delete the characters . , ' ! ? \" ( ) * # : ; ; replace - and / by spaces; split on whitespace; "
    "map each word to its index in `vocabulary` (unknown words -> 1), pad with 0 or cut to max_token_length"
)


class ExportedModel(nn.Module):
    """What the ONNX graph computes: normalize, run the eval model, return float32 boxes (and masks)."""

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
    onnx_path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    min_box_iou: float | None


def export_metadata(settings: Settings, vocabulary: Vocabulary, has_mask: bool, **extra: Any) -> dict[str, Any]:
    """Everything needed to use the ONNX file without simrec (also written as the sidecar JSON)."""
    height, width = settings.dataset.input_shape
    outputs = {"boxes": "float32 [B, 5]: x1, y1, x2, y2 in letterbox pixels, score"}
    if has_mask:
        outputs["masks"] = f"float32 [B, {height}, {width}]: mask probabilities in the letterbox"
    return {
        "format": METADATA_FORMAT,
        "model": settings.model.name,
        "input_size": [height, width],
        "pad_value": PAD_VALUE,
        "image_input": f"float32 [B, 3, {height}, {width}]: letterboxed RGB divided by 255 (NCHW)",
        "normalization_inside": {"mean": list(settings.train.data.mean), "std": list(settings.train.data.std)},
        "tokens_input": f"int64 [B, {settings.dataset.max_token_length}]",
        "max_token_length": settings.dataset.max_token_length,
        "pad_id": Vocabulary.PAD,
        "unk_id": Vocabulary.UNK,
        "tokenizer": TOKENIZER_RULES,
        "outputs": outputs,
        "mask_threshold": settings.model.head.mask_threshold if has_mask else None,
        "vocabulary": vocabulary.to_list(),
        **extra,
    }


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise SimrecError("ONNX export needs the onnx package", "pip install simrec[export]") from exc
    return onnx


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
    """Write CHECKPOINT as ONNX (default: beside it, `.onnx`) plus `<output>.json`; both written atomically."""
    if opset < MIN_OPSET:
        raise SimrecError(f"--opset {opset} is too old for this model", f"use --opset {MIN_OPSET} or newer (einsum)")
    onnx = _require_onnx()
    reporter = reporter or NullReporter()
    output = output or Path(checkpoint).with_suffix(".onnx")
    if output.suffix.lower() != ".onnx":
        raise SimrecError(f"output {output} must end in .onnx", "e.g. --output model.onnx")
    check_writable_file(output, "ONNX file", "-o/--output")
    torch_device = resolve_device(device)
    model, settings, vocabulary = load_model_from_checkpoint(checkpoint, torch_device, reporter=reporter)
    has_mask = bool(getattr(model, "has_mask_head", False))
    wrapper = ExportedModel(model, settings).to(torch_device).eval()
    image, tokens = example_inputs(settings, vocabulary, torch_device, batch=1)
    metadata = export_metadata(
        settings,
        vocabulary,
        has_mask,
        opset=opset,
        dynamic_batch=dynamic_batch,
        half=half,
        checkpoint=str(checkpoint),
    )
    output_names = ["boxes", "masks"] if has_mask else ["boxes"]
    metadata_path = output.with_suffix(".json")
    with atomic_path(output, "choose another -o/--output") as temporary:
        _trace_to_onnx(wrapper, (image, tokens), temporary, output_names, opset, dynamic_batch)
        proto = onnx.load(str(temporary))
        if half:
            proto = _to_float16(proto)
        for key, value in _metadata_props(metadata).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
        check_inputs = example_inputs(settings, vocabulary, torch_device, batch=3 if dynamic_batch else 1)
        box_iou = _compare_with_onnxruntime(temporary, wrapper, *check_inputs)
        atomic_write_json(
            metadata_path, metadata
        )  # before the model is renamed into place: never one without the other
    return ExportResult(output, metadata_path, metadata, box_iou)


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
    axes = {name: {0: "batch"} for name in ["image", "tokens", *output_names]} if dynamic_batch else None
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter warns about its own deprecation and about traced shape arithmetic; the
        # onnxruntime comparison after export is what tells whether the file is right.
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


def _metadata_props(metadata: dict[str, Any]) -> dict[str, str]:
    """ONNX metadata values are strings: plain strings stay, everything else is JSON."""
    return {
        f"simrec.{key}": value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        for key, value in metadata.items()
    }


def _compare_with_onnxruntime(
    path: Path, wrapper: nn.Module, image: torch.Tensor, tokens: torch.Tensor
) -> float | None:
    """Smallest IoU between onnxruntime's and PyTorch's boxes on the check input; None without onnxruntime.

    A box below MIN_BOX_IOU whose score is not a near tie with PyTorch's is an error, so a wrong file is
    never put in place.
    """
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = ORT_ERRORS_ONLY  # its notes on float16 folding are not the user's to act on
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (onnx_boxes, *_) = session.run(None, {"image": image.cpu().numpy(), "tokens": tokens.cpu().numpy()})
    with torch.no_grad():
        torch_boxes = wrapper(image, tokens)[0].cpu().numpy()
    ious = box_iou_xyxy(onnx_boxes[:, :4].astype(np.float64), torch_boxes[:, :4].astype(np.float64))
    ties = np.abs(onnx_boxes[:, 4] - torch_boxes[:, 4]) <= SCORE_TIE
    if not ((ious >= MIN_BOX_IOU) | ties).all():
        raise SimrecError(
            f"the exported graph's boxes overlap PyTorch's only with IoU {ious.min():.3f} on a test input",
            "try another --opset, or export without --half",
        )
    return float(ious.min())
