"""`model.*` settings: the SimREC and MCN architectures with SimREC's parameter names and defaults.

Channel counts that follow from the backbone (the fusion's visual planes, the head's input) are derived by
the model builder instead of being repeated here, so a width multiplier cannot leave them inconsistent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simrec_cli.settings.base import StrictModel

BackboneName = Literal["cspdarknet", "darknet53", "vgg16", "resnet18", "resnet34", "resnet101"]


class VisualBackboneSettings(StrictModel):
    """The image encoder (`model.visual_backbone`)."""

    name: BackboneName = "cspdarknet"
    pretrained: bool = False
    pretrained_weight_path: str = "./data/weights/cspdarknet_coco.pth"
    freeze_backbone: bool = True
    width_multiplier: float = Field(1.0, gt=0, le=2)
    depth_multiplier: float = Field(1.0, gt=0, le=2)


class LanguageEncoderSettings(StrictModel):
    """LSTM_SA (`model.language_encoder`): embedding, recurrent layer, self-attention, attention pooling."""

    name: Literal["lstm_sa"] = "lstm_sa"
    depth: int = Field(1, ge=0)
    hidden_size: int = Field(512, gt=0)
    num_heads: int = Field(8, gt=0)
    ffn_size: int = Field(2048, gt=0)
    flat_glimpses: int = Field(1, ge=1)
    word_embed_size: int = Field(300, gt=0)
    dropout_rate: float = Field(0.1, ge=0, lt=1)
    freeze_embedding: bool = True

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> LanguageEncoderSettings:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        return self


class FusionSettings(StrictModel):
    """SimpleFusion (`model.fusion_manner`): language-gated projection of each visual scale."""

    out_planes: int = Field(512, gt=0)


class MultiScaleSettings(StrictModel):
    """MultiScaleFusion (`model.multi_scale_manner`): the PAN-style top-down and bottom-up path."""

    hidden_planes: int = Field(512, gt=0)
    scaled: bool = True


class AttentionSettings(StrictModel):
    """GaranAttention (`model.attention_manner`)."""

    n_head: int = Field(2, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    # True reproduces the released model's spatial transpose of the attended map, which its weights depend on;
    # False puts each cell's language match on that cell, which trains faster from scratch.
    transpose_output: bool = True


class HeadSettings(StrictModel):
    """Detection head: REChead for SimREC (anchor-free, SimOTA), MCNhead for MCN (anchors + ASPP mask)."""

    label_smooth: float = Field(0.0, ge=0, lt=0.5)
    width: float = Field(1.0, gt=0)
    act: Literal["silu", "relu", "lrelu"] = "silu"
    depthwise: bool = False
    # REChead box loss: "iou" is the released 5 * (1 - IoU^2); "giou" (5 * (1 - GIoU)) also pulls in boxes that
    # do not overlap their target yet, which helps training from scratch.
    box_loss: Literal["iou", "giou"] = "iou"
    anchors: list[tuple[int, int]] = [(137, 256), (248, 272), (386, 271)]
    ignore_thresh: float = Field(0.5, gt=0, lt=1)
    mask_threshold: float = Field(0.35, gt=0, lt=1)


class ModelSettings(StrictModel):
    """`model.*`: which architecture and the settings of each of its parts."""

    name: Literal["simrec", "mcn"] = "simrec"
    visual_backbone: VisualBackboneSettings = VisualBackboneSettings()
    language_encoder: LanguageEncoderSettings = LanguageEncoderSettings()
    fusion_manner: FusionSettings = FusionSettings()
    multi_scale_manner: MultiScaleSettings = MultiScaleSettings()
    attention_manner: AttentionSettings = AttentionSettings()
    head: HeadSettings = HeadSettings()
