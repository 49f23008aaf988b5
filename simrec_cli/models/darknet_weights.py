"""Reader and writer of darknet `.weights` files (the format of DarkNet53/YOLOv3 and SimREC's darknet_coco.weights).

A file is a header (major, minor, revision as int32, then the images-seen counter: int64 from format 0.2 on,
int32 before) followed by float32 values, layer after layer in network order. A convolution followed by a
BatchNorm stores the BN bias, BN weight, running mean, running variance, then the conv weight; a convolution
without BN stores its bias, then its weight. Nothing in the file names the layers: the module's registration
order must be the network order, which holds for the `module_list` backbones here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from simrec_cli.errors import SimrecError
from simrec_cli.storage.atomic import atomic_write

ConvLayer = tuple[nn.Conv2d, nn.BatchNorm2d | None]


@dataclass(frozen=True)
class DarknetHeader:
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_is_int64(self) -> bool:
        return self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000


@dataclass(frozen=True)
class DarknetLoad:
    """What a load covered: layers filled from the file, layers left as they were, values not used."""

    loaded: list[ConvLayer]
    not_in_file: list[ConvLayer]
    unused_values: int


def conv_layers(module: nn.Module) -> Iterator[ConvLayer]:
    """Every Conv2d in registration order, paired with the BatchNorm2d registered right after it (if any)."""
    children = list(module.children())
    for index, child in enumerate(children):
        if isinstance(child, nn.Conv2d):
            following = children[index + 1] if index + 1 < len(children) else None
            yield child, following if isinstance(following, nn.BatchNorm2d) else None
        elif not isinstance(child, nn.BatchNorm2d):
            yield from conv_layers(child)


def _layer_tensors(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> list[torch.Tensor]:
    """The tensors of one layer in file order."""
    if bn is not None:
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var, conv.weight]
    if conv.bias is None:
        raise ValueError("a darknet convolution without BatchNorm must have a bias")
    return [conv.bias, conv.weight]


def read_darknet_file(path: Path) -> tuple[DarknetHeader, np.ndarray]:
    """Header and float32 payload; SimrecError when the file is too short to be a darknet file."""
    data = Path(path).read_bytes()
    if len(data) < 16:
        raise SimrecError(f"{path} is not a darknet .weights file ({len(data)} bytes)", "download the file again")
    major, minor, revision = (int(v) for v in np.frombuffer(data, dtype="<i4", count=3))
    header = DarknetHeader(major, minor, revision)
    seen_dtype = "<i8" if header.seen_is_int64 else "<i4"
    seen_end = 12 + np.dtype(seen_dtype).itemsize
    seen = int(np.frombuffer(data, dtype=seen_dtype, count=1, offset=12)[0])
    payload = data[seen_end:]
    if len(payload) % 4:
        raise SimrecError(f"{path} is truncated (payload is not whole float32 values)", "download the file again")
    return DarknetHeader(major, minor, revision, seen), np.frombuffer(payload, dtype="<f4")


def load_darknet_weights(module: nn.Module, path: Path) -> DarknetLoad:
    """Fill `module`'s conv layers in order from a darknet file; layers past the end of the file are untouched."""
    _, values = read_darknet_file(path)
    offset = 0
    loaded: list[ConvLayer] = []
    layers = list(conv_layers(module))
    for conv, bn in layers:
        if offset >= len(values):
            break
        tensors = _layer_tensors(conv, bn)
        needed = sum(t.numel() for t in tensors)
        if offset + needed > len(values):
            raise SimrecError(
                f"{path} ends inside layer {len(loaded) + 1} of {len(layers)} (truncated, or for another network)",
                "use the darknet weights of this backbone (e.g. darknet53 from SimREC's model zoo)",
            )
        with torch.no_grad():
            for tensor in tensors:
                count = tensor.numel()
                tensor.copy_(torch.from_numpy(values[offset : offset + count].copy()).view_as(tensor))
                offset += count
        loaded.append((conv, bn))
    return DarknetLoad(loaded, layers[len(loaded) :], len(values) - offset)


def save_darknet_weights(module: nn.Module, path: Path, header: DarknetHeader = DarknetHeader()) -> None:
    """Write `module`'s conv layers as a darknet file (atomically), e.g. to hand a trained backbone to darknet."""
    path = Path(path)
    seen_dtype = "<i8" if header.seen_is_int64 else "<i4"
    parts = [np.array([header.major, header.minor, header.revision], dtype="<i4").tobytes()]
    parts.append(np.array([header.seen], dtype=seen_dtype).tobytes())
    for conv, bn in conv_layers(module):
        for tensor in _layer_tensors(conv, bn):
            parts.append(tensor.detach().cpu().float().numpy().astype("<f4").tobytes())
    atomic_write(path, lambda stream: stream.write(b"".join(parts)), binary=True)
