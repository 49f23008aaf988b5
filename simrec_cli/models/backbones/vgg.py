"""VGG16 (conv layers with bias and ReLU, no BatchNorm) plus six darknet convolutions, in `module_list` layout."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from simrec_cli.models.backbones.base import StagedBackbone
from simrec_cli.models.layers import DarknetConv, scale_channels

# VGG16's configuration: channels of each 3x3 conv, "M" for a 2x2 max-pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VggConv(nn.Sequential):
    """3x3 Conv2d with bias -> ReLU, named `conv`/`relu`."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.add_module("conv", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=True))
        self.add_module("relu", nn.ReLU())


class VGG16(StagedBackbone):
    """The 18 VGG16 feature layers (indices 0-17) and six YOLOv3-style convs; outputs of layers 9, 13 and 23."""

    out_indices = (9, 13)
    vgg_layers = len(VGG16_LAYOUT)

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                channels = scale_channels(item, width)
                layers.append(VggConv(previous, channels))
                previous = channels
        top = scale_channels(1024, width)
        for _ in range(3):
            layers += [DarknetConv(previous, top // 2, 1), DarknetConv(top // 2, top, 3)]
            previous = top
        self.module_list = nn.ModuleList(layers)
        self.out_channels = (scale_channels(256, width), scale_channels(512, width), top)

    def stages(self) -> Sequence[nn.Module]:
        return self.module_list
