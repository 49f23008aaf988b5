"""int8 models for CPUs with VNNI or AMX: static post-training quantization of a checkpoint.

The route is PT2E (torchao): the eval model (BatchNorm folded, channels_last) is exported with torch.export,
the x86 inductor quantizer marks its convolutions and linear layers for int8, observers record activation
ranges on a few hundred training samples of the checkpoint's own dataset (letterboxed as in evaluation, no
augmentation), and the converted graph is exported again with a dynamic batch dimension and saved as one
`.pt2` file with the settings and vocabulary beside the graph. inductor (with freezing) then lowers the
quantize/dequantize pairs around each convolution into oneDNN int8 kernels, so an int8 model always runs
compiled. The graph takes one image per expression (`images` [N, 3, H, W], `tokens` [N, L]).

torchao and torch.export are imported only here, and this module only when int8 is asked for.
"""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simrec_cli.data.dataset import RefDataset
from simrec_cli.data.files import atomic_write, ensure_writable_dir
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import load_model_from_checkpoint
from simrec_cli.errors import SimrecError
from simrec_cli.models.inference import prepare_for_inference
from simrec_cli.models.precision import INT8_SUFFIX, is_quantized_file
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import DatasetSettings, Settings, settings_from_dict, settings_to_dict

METADATA_NAME = "simrec.json"
METADATA_FORMAT = "simrec-int8-v1"
WRITE_ONE = "write one with `simrec export CHECKPOINT --format int8`"
DEFAULT_CALIBRATION_SAMPLES = 256
MAX_BATCH = 1024  # the exported graph's batch dimension goes up to this


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    calibration_samples: int
    seconds: float


def _quantization_api() -> tuple[Any, Any, Any]:
    """prepare_pt2e, convert_pt2e and the x86 inductor quantizer module, from torchao (an optional extra)."""
    torchao_logger = logging.getLogger("torch.utils._pytree")
    level = torchao_logger.level
    torchao_logger.setLevel(logging.ERROR)  # torchao's import warns about its own enum registration
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as exc:
        raise SimrecError("int8 quantization needs torchao", "pip install 'simrec[int8]'") from exc
    finally:
        torchao_logger.setLevel(level)
    return prepare_pt2e, convert_pt2e, x86


def _calibration_set(settings: Settings, vocabulary: Vocabulary, data_root: Path | None) -> RefDataset:
    data = settings.dataset.model_dump()
    if data_root is not None:
        data["data_root"] = data_root
    dataset = DatasetSettings.model_validate(data)
    loader = settings.train.data
    return RefDataset(dataset, dataset.train_split, vocabulary, training=False, load_masks=False,
                      mean=loader.mean, std=loader.std)  # fmt: skip


def _calibration_batches(dataset: RefDataset, samples: int, batch_size: int) -> list[tuple[torch.Tensor, ...]]:
    """`samples` training samples spread evenly over the split (so over many images), in batches."""
    count = min(samples, len(dataset))
    step = len(dataset) / count
    picked = [dataset[int(k * step)] for k in range(count)]
    batches = []
    for start in range(0, count, batch_size):
        part = picked[start : start + batch_size]
        batches.append((torch.stack([s.image for s in part]), torch.stack([s.tokens for s in part])))
    return batches


def _export(model: nn.Module, example: tuple[torch.Tensor, torch.Tensor]) -> Any:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model, example, dynamic_shapes=({0: batch}, {0: batch}))


def without_dtype_asserts(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Drop the dtype assertions export writes for no-op casts (`x.float()` on a float32 tensor), so the graph
    also runs under bf16 autocast, where those tensors are bfloat16 (int8 convolutions with bf16 in between)."""
    for node in list(graph.graph.nodes):
        if node.target is torch.ops.aten._assert_tensor_metadata.default:
            graph.graph.erase_node(node)
    graph.recompile()
    return graph


def quantize_checkpoint(
    checkpoint: Path,
    output: Path | None = None,
    *,
    data_root: Path | None = None,
    samples: int = DEFAULT_CALIBRATION_SAMPLES,
    reporter: Reporter | None = None,
) -> QuantizeResult:
    """Write CHECKPOINT as an int8 model file (default: beside it, `<stem>.int8.pt2`), calibrated on `samples`
    training samples of its dataset (under `data_root`, default the run's)."""
    reporter = reporter or NullReporter()
    if samples < 1:
        raise SimrecError(f"calibration samples {samples} must be at least 1", "use --calibration-samples 256")
    started = time.perf_counter()
    output = output or Path(checkpoint).with_name(Path(checkpoint).stem + INT8_SUFFIX)
    if not is_quantized_file(output):
        raise SimrecError(f"output {output} must end in .pt2", f"e.g. --output model{INT8_SUFFIX}")
    ensure_writable_dir(output.parent, "int8 model file")
    prepare_pt2e, convert_pt2e, x86 = _quantization_api()
    model, settings, vocabulary = load_model_from_checkpoint(checkpoint, "cpu", reporter=reporter)
    if settings.model.name != "simrec":
        raise SimrecError(f"int8 export supports SimREC models, not {settings.model.name}", "use --format onnx")
    prepared = prepare_for_inference(model, fold_bn=True, channels_last=True)
    batches = _calibration_batches(_calibration_set(settings, vocabulary, data_root), samples, batch_size=8)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        observed = prepare_pt2e(without_dtype_asserts(_export(prepared, batches[0]).module()), quantizer)
        for images, tokens in reporter.track(batches, len(batches), "calibrate"):
            observed(images, tokens)
        quantized = convert_pt2e(observed)
        program = _export(quantized, batches[0])
    metadata = {
        "format": METADATA_FORMAT,
        "settings": settings_to_dict(settings),
        "vocabulary": vocabulary.to_list(),
        "has_mask_head": prepared.has_mask_head,
        "calibration_samples": sum(len(tokens) for _, tokens in batches),
        "source": str(checkpoint),
    }
    archive = io.BytesIO()
    torch.export.save(program, archive, extra_files={METADATA_NAME: json.dumps(metadata)})
    atomic_write(output, lambda handle: handle.write(archive.getvalue()), binary=True)
    return QuantizeResult(output, metadata["calibration_samples"], time.perf_counter() - started)


def load_quantized(path: Path, reporter: Reporter | None = None) -> tuple[nn.Module, Settings, Vocabulary]:
    """The int8 graph (a module taking one image per expression), its settings and vocabulary."""
    path = Path(path)
    if not path.is_file():
        raise SimrecError(f"int8 model file {path} does not exist", WRITE_ONE)
    _quantization_api()  # registers the quantized operators the graph calls
    extra = {METADATA_NAME: ""}
    try:
        with warnings.catch_warnings():  # the archive reader warns about weights it finds whole on the CPU
            warnings.filterwarnings("ignore", message="No complete tensor found")
            program = torch.export.load(path, extra_files=extra)
        metadata = json.loads(extra[METADATA_NAME])
    except (zipfile.BadZipFile, RuntimeError, ValueError, KeyError) as exc:
        raise SimrecError(
            f"{path} is not a readable int8 model file: {type(exc).__name__}",
            WRITE_ONE,
        ) from exc
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise SimrecError(f"{path} is not a simrec int8 model file", WRITE_ONE)
    settings = settings_from_dict(metadata["settings"], f"int8 model file {path}")
    vocabulary = Vocabulary.from_list(list(metadata["vocabulary"]))
    module = without_dtype_asserts(program.module())
    module.has_mask_head = bool(metadata["has_mask_head"])
    (reporter or NullReporter()).info(
        f"loaded {path} (int8, calibrated on {metadata['calibration_samples']} samples of {metadata['source']})"
    )
    return module, settings, vocabulary
