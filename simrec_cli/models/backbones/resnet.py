"""torchvision ResNet18/34/101 under the attribute `resnet`, as SimREC wraps them (so its keys load).

torchvision is imported only when a ResNet is built: importing it costs more than a second (it pulls in
torch's compiler stack), which every `simrec predict` with another backbone would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from simrec_cli.models.backbones.base import StagedBackbone

# Stem pieces and the four residual stages; outputs of layer2 (stride 8), layer3 (16) and layer4 (32).
STAGE_NAMES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
RESNET_NAMES = ("resnet18", "resnet34", "resnet101")


class ResNet(StagedBackbone):
    """A torchvision ResNet whose classifier `fc` is kept only so checkpoints load; it is never trained."""

    out_indices = (5, 6)
    trainable_tail = 1  # layer4 trains; the original froze the whole network

    def __init__(self, name: str):
        super().__init__()
        from torchvision.models import resnet

        self.resnet = getattr(resnet, name)(weights=None)
        self.resnet.fc.requires_grad_(False)
        expansion = 4 if name == "resnet101" else 1
        self.out_channels = (128 * expansion, 256 * expansion, 512 * expansion)

    def stages(self) -> Sequence[nn.Module]:
        return [getattr(self.resnet, name) for name in STAGE_NAMES]
