"""CSPDarkNet: the YOLOv5 v6 backbone (layers 0-9) with YOLOv5's `model.N` names, so its weights map one to one."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from simrec_cli.models.backbones.base import StagedBackbone
from simrec_cli.models.layers import SPPF, C3Block, ConvBnAct, scale_channels, scale_depth

# (channels, C3 repeats) per stage at width/depth 1.0: the YOLOv5-L layout SimREC uses.
STAGE_CHANNELS = (64, 128, 256, 512, 1024)
C3_REPEATS = (3, 6, 9, 3)


class CspDarkNet(StagedBackbone):
    """Stem, four (stride-2 conv, C3) stages and SPPF; outputs of layers 4, 6 and 9."""

    out_indices = (4, 6)  # freeze_backbone: layers 0-7 frozen, 8 (C3) and 9 (SPPF) train

    def __init__(self, width: float = 1.0, depth: float = 1.0):
        super().__init__()
        c1, c2, c3, c4, c5 = (scale_channels(c, width) for c in STAGE_CHANNELS)
        n1, n2, n3, n4 = (scale_depth(n, depth) for n in C3_REPEATS)
        self.model = nn.Sequential(
            ConvBnAct(3, c1, k=6, s=2, p=2),
            ConvBnAct(c1, c2, k=3, s=2),
            C3Block(c2, c2, n1),
            ConvBnAct(c2, c3, k=3, s=2),
            C3Block(c3, c3, n2),
            ConvBnAct(c3, c4, k=3, s=2),
            C3Block(c4, c4, n3),
            ConvBnAct(c4, c5, k=3, s=2),
            C3Block(c5, c5, n4),
            SPPF(c5, c5, k=5),
        )
        self.out_channels = (c3, c4, c5)

    def stages(self) -> Sequence[nn.Module]:
        return self.model
