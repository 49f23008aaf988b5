"""Faster inference that keeps the boxes: BatchNorm folding, channels_last, bf16 autocast, compiled forwards.

Each option is checked by the tests to keep fp32's boxes (IoU >= 0.99 on trained weights). The box layers and the
decoding compute in float32 under autocast (models/float32.py), so bf16 only affects the features before them.

`InferenceModel` is what eval, predict and serving call: a prepared model, the precision it runs in, and
optionally a compiled forward for a few fixed batch sizes (a server's buckets). torch.compile (and inductor) is
imported only when `compile()` is called, so one-shot prediction and evaluation do not pay for it.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

import torch
from torch import nn

from simrec_cli.models.base import GroundingModel
from simrec_cli.models.float32 import float32_parts
from simrec_cli.models.host_memory import keep_freed_memory
from simrec_cli.models.layers import ConvBnAct
from simrec_cli.models.precision import PrecisionChoice


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the preceding convolution's weight and bias (in place)."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every Conv2d -> BatchNorm2d pair that runs back to back; returns how many were folded.

    Safe pairs are the adjacent children of an `nn.Sequential` (run in registration order) and the conv/bn
    of a ConvBnAct. Other BatchNorms (after a product, or whose input is also used elsewhere) stay.
    """
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, ConvBnAct) and isinstance(module.bn, nn.BatchNorm2d):
            fuse_conv_bn(module.conv, module.bn)
            module.bn = nn.Identity()
            folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in itertools.pairwise(names):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    fuse_conv_bn(conv, bn)
                    module._modules[second] = nn.Identity()
                    folded += 1
    return folded


def prepare_for_inference(
    model: GroundingModel, *, fold_bn: bool, channels_last: bool, in_place: bool = False
) -> GroundingModel:
    """An eval-mode copy of `model` for prediction (the original stays trainable).

    `in_place=True` prepares `model` itself, for a model built only to be run (one loaded from a checkpoint):
    copying it would cost a one-shot `simrec predict` about 0.1 s for nothing.
    """
    prepared = (model if in_place else copy.deepcopy(model)).eval()
    prepared.requires_grad_(False)
    if fold_bn:
        fold_batchnorm(prepared)
    if channels_last:
        prepared.to_channels_last()
    for module in prepared.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()  # a copied GRU loses cuDNN's single weight buffer; restore it
    return prepared


# The layers whose weights autocast casts to its low precision dtype on every call (convolutions and matrix products).
AUTOCAST_LOW_PRECISION_LAYERS = (nn.Conv2d, nn.Linear)


def store_autocast_weights(model: nn.Module, dtype: torch.dtype | None) -> int:
    """Store the weights of the layers autocast runs in `dtype` in that dtype already (in place); returns how many.

    Autocast would otherwise copy every one of these weights into `dtype` on every forward pass. The answers do
    not change, since autocast computes these layers in `dtype` either way and leaves tensors already in it as they
    are. Only for a model built to be run: it cannot train afterwards. The parts that compute in float32 whatever
    autocast asks (the box layers) keep float32 weights.
    """
    if dtype is None:
        return 0
    kept = float32_parts(model)
    layers = [m for m in model.modules() if isinstance(m, AUTOCAST_LOW_PRECISION_LAYERS) and m not in kept]
    for layer in layers:
        layer.to(dtype)
    return len(layers)


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """Mixed precision in `dtype` on CPU or CUDA; a no-op context when `dtype` is None."""
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def bf16_autocast(device: torch.device | str, enabled: bool = True) -> AbstractContextManager:
    """Autocast to bfloat16 on CPU or CUDA (a no-op context when `enabled` is False)."""
    return autocast(device, torch.bfloat16 if enabled else None)


Forward = Callable[..., dict[str, torch.Tensor]]
TIMED_PASSES = 2  # per compiled size at start-up; the faster one counts


class InferenceModel:
    """A model ready to answer: call it like the eval model, `(images, tokens, image_index=None) -> outputs`.

    It runs under the autocast its precision asks for. After `compile(batch_sizes)` (a server's buckets), batches
    go through a forward compiled for those row counts, each image repeated once per expression, so every call
    meets a graph of fixed shapes, compiled before the first request. The rows are spread over the compiled sizes
    by their measured time per pass (`plan_passes`): padded up to a size or split into smaller ones, whichever is
    faster.
    """

    def __init__(self, module: nn.Module, device: torch.device, precision: PrecisionChoice) -> None:
        self.module = module
        self.device = torch.device(device)
        self.precision = precision
        if self.device.type == "cpu":
            keep_freed_memory()  # each pass reuses the last one's activations instead of faulting them in again
        self.batch_sizes: tuple[int, ...] = ()
        self.pass_seconds: dict[int, float] = {}  # per compiled size, measured after compiling
        self._compiled: Forward | None = None

    @property
    def has_mask_head(self) -> bool:
        return bool(getattr(self.module, "has_mask_head", False))

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def compile(self, batch_sizes: Sequence[int], input_shape: Sequence[int], token_length: int) -> None:
        """Compile the forward for each of `batch_sizes` now (inductor with frozen weights on CPU, CUDA graphs on
        GPU), for images of `input_shape` (height, width) and `token_length` tokens per expression.

        Compiling costs about a minute per size for the default SimREC on a 2-core CPU, so callers compile once
        and reuse this object.
        """
        sizes = tuple(sorted({int(size) for size in batch_sizes}))
        if not sizes or sizes[0] < 1:
            raise ValueError(f"batch sizes {batch_sizes} must be positive")
        self._compiled = compile_module(self.module, self.device, len(sizes))
        self.batch_sizes, self.pass_seconds = sizes, {}
        height, width = input_shape
        # CUDA graph trees run a new graph once to warm up and record it on the next call; replays start after.
        calls = 3 if self.device.type == "cuda" else 1
        for size in sizes:
            images = torch.zeros(size, 3, height, width, device=self.device)
            tokens = torch.ones(size, token_length, dtype=torch.int64, device=self.device)
            for _ in range(calls):
                self._compiled_pass(images, tokens)
            self.pass_seconds[size] = min(self._timed_pass(images, tokens) for _ in range(TIMED_PASSES))

    @torch.inference_mode()
    def __call__(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if self._compiled is None:
            with autocast(self.device, self.precision.autocast_dtype):
                return self.module(images, tokens, image_index=image_index)
        if image_index is not None:
            images = images.index_select(0, image_index)
        return self._bucketed(images, tokens)  # each compiled pass enters the autocast itself

    @property
    def _image_format(self) -> torch.memory_format:
        return torch.channels_last if getattr(self.module, "channels_last_input", False) else torch.contiguous_format

    @staticmethod
    def _as_compiled_input(
        tensor: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format
    ) -> torch.Tensor:
        """`tensor` as an inference-mode tensor in `memory_format`, copied only where it is not one already.

        The compiled graphs guard on both: the warm-up's zeros, a data loader's batch, a server's canvases (created
        under inference mode, permuted from height x width x channels) and a padded batch differ in them, and each
        difference recompiled a graph at its first call, which took the server seconds to minutes per batch size.
        """
        if tensor.is_inference() and tensor.is_contiguous(memory_format=memory_format):
            return tensor
        return tensor.clone(memory_format=memory_format)

    def _bucketed(self, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rows through the compiled sizes of `plan_passes`, the last pass padded by repeating its last row."""
        parts, start = [], 0
        for size in plan_passes(tokens.shape[0], self.pass_seconds):
            chunk_images, chunk_tokens = images[start : start + size], tokens[start : start + size]
            rows = chunk_tokens.shape[0]
            if size > rows:
                chunk_images = torch.cat([chunk_images, chunk_images[-1:].expand(size - rows, *images.shape[1:])])
                chunk_tokens = torch.cat([chunk_tokens, chunk_tokens[-1:].expand(size - rows, *tokens.shape[1:])])
            outputs = self._compiled_pass(chunk_images, chunk_tokens)
            parts.append({key: value[:rows].clone() for key, value in outputs.items()})
            start += rows
        return parts[0] if len(parts) == 1 else {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    def _compiled_pass(self, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self._compiled is not None
        with torch.inference_mode(), autocast(self.device, self.precision.autocast_dtype):
            return self._compiled(self._as_compiled_input(images, self._image_format), self._as_compiled_input(tokens))

    def _timed_pass(self, images: torch.Tensor, tokens: torch.Tensor) -> float:
        """Seconds of one compiled pass (the device's queue drained on both sides)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        started = time.perf_counter()
        self._compiled_pass(images, tokens)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started


def plan_passes(rows: int, pass_seconds: Mapping[int, float]) -> list[int]:
    """The compiled sizes, largest first, that run `rows` rows in the least time by the measured `pass_seconds`.

    Padding up to the next size wastes rows, which costs nothing where a pass is mostly overhead (a small model)
    and most of the pass where it is arithmetic: compiled in bf16, the default SimREC at 416 on a 2-core CPU with
    AMX took 0.045, 0.125 and 0.457 s for 1, 4 and 16 rows, so 9 rows run faster as 4 + 4 + 1 than padded to 16,
    and a server compiled for 1, 4 and 16 answered at 0.62x the eager one's rate when every batch was padded.
    """
    sizes = sorted(pass_seconds.items())
    best, first = [0.0] + [math.inf] * rows, [0] * (rows + 1)
    for count in range(1, rows + 1):
        for size, seconds in sizes:
            total = seconds + best[max(0, count - size)]
            if total < best[count]:
                best[count], first[count] = total, size
    plan, left = [], rows
    while left > 0:
        plan.append(first[left])
        left -= first[left]
    return sorted(plan, reverse=True)


def compile_module(module: nn.Module, device: torch.device, shapes: int) -> Forward:
    """torch.compile for fixed shapes: inductor with constant folding of the frozen weights on CPU, CUDA graphs
    (`reduce-overhead`) on GPU. `shapes` is how many input shapes it will see, so none falls back to eager.

    The language encoder's GRU is traced into the graph (dynamo's `allow_rnn`): otherwise the forward breaks
    into seven graphs around it, and the default SimREC at 416 runs about 9 % slower at batch 1 and 8 on a
    2-core CPU with AMX. On CPU the graph's kernels are called from C++ (inductor's `cpp_wrapper`) rather than from
    generated Python: at batch 1 the Python calls of its ~150 kernels cost about 4 ms of a 40 ms pass."""
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, shapes)
    torch._dynamo.config.allow_rnn = True
    if device.type == "cuda":
        return torch.compile(module, dynamic=False, mode="reduce-overhead")
    # Freezing must be set in inductor's global config: passed as `options`, it leaves the weights graph inputs,
    # cast to bf16 on every call, and the convolutions unfused.
    torch._inductor.config.freezing = True
    _import_cpp_extension_quietly()
    return torch.compile(module, dynamic=False, options={"cpp_wrapper": True})


def _import_cpp_extension_quietly() -> None:
    """Import torch's C++ build helper, which inductor loads to compile CPU kernels, without its one warning.

    A CUDA build of torch on a machine without a GPU warns "No CUDA runtime is found" as the helper is imported:
    true, and beside the point for a CPU compile, yet it lands among a server's start-up lines."""
    helper_log = logging.getLogger("torch.utils.cpp_extension")
    level = helper_log.level
    helper_log.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension  # noqa: F401
    finally:
        helper_log.setLevel(level)
