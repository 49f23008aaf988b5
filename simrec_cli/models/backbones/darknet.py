"""DarkNet53 with the three YOLOv3 layers MCN keeps on top, in the darknet port's `module_list` layout.

The released `darknet_coco.weights` is a darknet file; `simrec_cli.models.darknet_weights` reads it in the
registration order of this module list.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from simrec_cli.models.backbones.base import StagedBackbone
from simrec_cli.models.layers import DarknetBlock, DarknetConv, scale_channels, scale_depth

RESIDUAL_REPEATS = (1, 2, 8, 8, 4)


class DarkNet53(StagedBackbone):
    """Stem, five (stride-2 conv, residual blocks) stages, then YOLOv3's first branch; outputs of 6, 8 and 13."""

    out_indices = (6, 8)

    def __init__(self, width: float = 1.0, depth: float = 1.0):
        super().__init__()
        stem, *widths = (scale_channels(c, width) for c in (32, 64, 128, 256, 512, 1024))
        repeats = [scale_depth(n, depth) for n in RESIDUAL_REPEATS]
        layers: list[nn.Module] = [DarknetConv(3, stem, 3)]
        previous = stem
        for channels, blocks in zip(widths, repeats, strict=True):
            layers += [DarknetConv(previous, channels, 3, stride=2), DarknetBlock(channels, blocks)]
            previous = channels
        top = widths[-1]
        layers += [
            DarknetBlock(top, scale_depth(2, depth), shortcut=False),
            DarknetConv(top, top // 2, 1),
            DarknetConv(top // 2, top, 3),
        ]
        self.module_list = nn.ModuleList(layers)
        self.out_channels = (widths[2], widths[3], top)

    def stages(self) -> Sequence[nn.Module]:
        return self.module_list
