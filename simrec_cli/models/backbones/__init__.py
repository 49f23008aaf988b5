"""Visual backbones: each returns the stride-8, stride-16 and stride-32 maps and knows its default frozen stages."""

from __future__ import annotations

from simrec_cli.errors import SimrecError
from simrec_cli.models.backbones.base import StagedBackbone
from simrec_cli.models.backbones.cspdarknet import CspDarkNet
from simrec_cli.models.backbones.darknet import DarkNet53
from simrec_cli.models.backbones.resnet import RESNET_NAMES, ResNet
from simrec_cli.models.backbones.vgg import VGG16
from simrec_cli.settings.model import VisualBackboneSettings


def build_backbone(settings: VisualBackboneSettings) -> StagedBackbone:
    """The backbone named in the settings, with its multipliers, frozen as configured (weights loaded later)."""
    width, depth = settings.width_multiplier, settings.depth_multiplier
    if settings.name == "cspdarknet":
        backbone: StagedBackbone = CspDarkNet(width, depth)
    elif settings.name == "darknet53":
        backbone = DarkNet53(width, depth)
    elif settings.name == "vgg16":
        if depth != 1.0:
            raise SimrecError("model.visual_backbone.depth_multiplier has no meaning for vgg16", "leave it at 1.0")
        backbone = VGG16(width)
    elif settings.name in RESNET_NAMES:
        if (width, depth) != (1.0, 1.0):
            raise SimrecError(
                f"model.visual_backbone width/depth multipliers are not available for {settings.name}",
                "leave them at 1.0, or use cspdarknet or darknet53 for a small variant",
            )
        backbone = ResNet(settings.name)
    else:  # pragma: no cover - the settings' Literal type rules this out
        raise SimrecError(f"unknown backbone {settings.name}")
    if settings.freeze_backbone:
        backbone.freeze_default()
    return backbone


__all__ = ["VGG16", "CspDarkNet", "DarkNet53", "ResNet", "StagedBackbone", "build_backbone"]
