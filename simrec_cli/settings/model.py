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

    name: BackboneName = Field("cspdarknet", description="The image encoder's architecture.")
    pretrained: bool = Field(
        False, description="Load the backbone's weights from `pretrained_weight_path` before training."
    )
    pretrained_weight_path: str = Field(
        "./data/weights/cspdarknet_coco.pth",
        description="Backbone weights: a YOLOv5-style or torchvision `.pth`, or a darknet `.weights` file.",
    )
    freeze_backbone: bool = Field(
        True, description="Keep the backbone's weights and BatchNorm statistics fixed during training."
    )
    width_multiplier: float = Field(
        1.0, gt=0, le=2, description="Scales every backbone channel count (0.25 for a small CPU model)."
    )
    depth_multiplier: float = Field(
        1.0, gt=0, le=2, description="Scales the number of blocks in each backbone stage (0.33 for a small model)."
    )


class LanguageEncoderSettings(StrictModel):
    """LSTM_SA (`model.language_encoder`): embedding, recurrent layer, self-attention, attention pooling."""

    name: Literal["lstm_sa"] = Field("lstm_sa", description="The expression encoder (SimREC's LSTM_SA).")
    depth: int = Field(1, ge=0, description="Self-attention layers after the recurrent layer.")
    hidden_size: int = Field(512, gt=0, description="Width of the recurrent layer and of the language feature.")
    num_heads: int = Field(8, gt=0, description="Heads of each self-attention layer; must divide `hidden_size`.")
    ffn_size: int = Field(2048, gt=0, description="Width of the feed-forward layer inside each self-attention layer.")
    flat_glimpses: int = Field(1, ge=1, description="Attention glimpses that pool the words into one feature.")
    word_embed_size: int = Field(
        300, gt=0, description="Word embedding size; with word vectors it is taken from the vectors' dimension."
    )
    dropout_rate: float = Field(0.1, ge=0, lt=1, description="Dropout inside the language encoder.")
    freeze_embedding: bool = Field(
        True, description="Keep pre-trained word vectors fixed (a randomly initialised embedding always trains)."
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> LanguageEncoderSettings:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        return self


class FusionSettings(StrictModel):
    """SimpleFusion (`model.fusion_manner`): language-gated projection of each visual scale."""

    out_planes: int = Field(512, gt=0, description="Channels of each fused visual-language map.")


class MultiScaleSettings(StrictModel):
    """MultiScaleFusion (`model.multi_scale_manner`): the PAN-style top-down and bottom-up path."""

    hidden_planes: int = Field(512, gt=0, description="Channels of the multi-scale path and of the head's input.")
    scaled: bool = Field(
        True,
        description="Resample between the three scales (bilinear up, average-pool down); false for maps that already "
        "share one size.",
    )


class AttentionSettings(StrictModel):
    """GaranAttention (`model.attention_manner`)."""

    n_head: int = Field(2, gt=0, description="Attention heads of the language-guided attention.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of the attention.")
    transpose_output: bool = Field(
        True,
        description="Write each cell's language match to the transposed cell, as the released model does (its "
        "weights depend on it); false keeps it on its own cell, which trains faster from scratch.",
    )


class HeadSettings(StrictModel):
    """Detection head: REChead for SimREC (anchor-free, SimOTA), MCNhead for MCN (anchors + ASPP mask)."""

    label_smooth: float = Field(0.0, ge=0, lt=0.5, description="REChead: label smoothing of the objectness target.")
    width: float = Field(1.0, gt=0, description="Scales the head's channel count.")
    act: Literal["silu", "relu", "lrelu"] = Field("silu", description="REChead's activation function.")
    depthwise: bool = Field(False, description="REChead: depthwise-separable convolutions (YOLOX's option).")
    box_loss: Literal["iou", "giou"] = Field(
        "iou",
        description="REChead's box loss: `iou` is the released 5 * (1 - IoU²); `giou` (5 * (1 - GIoU)) also pulls "
        "in boxes that do not overlap their target yet, which helps training from scratch.",
    )
    anchors: list[tuple[int, int]] = Field(
        [(137, 256), (248, 272), (386, 271)], description="MCNhead's anchor boxes, [width, height] in input pixels."
    )
    ignore_thresh: float = Field(
        0.5, gt=0, lt=1, description="MCNhead: predictions overlapping the box by more than this lose no objectness."
    )
    mask_threshold: float = Field(
        0.35, gt=0, lt=1, description="MCN: the mask probability above which a pixel belongs to the object."
    )


class ModelSettings(StrictModel):
    """`model.*`: which architecture and the settings of each of its parts."""

    name: Literal["simrec", "mcn"] = Field(
        "simrec", description="SimREC (boxes) or MCN (boxes and masks; needs a dataset with masks)."
    )
    visual_backbone: VisualBackboneSettings = VisualBackboneSettings()
    language_encoder: LanguageEncoderSettings = LanguageEncoderSettings()
    fusion_manner: FusionSettings = FusionSettings()
    multi_scale_manner: MultiScaleSettings = MultiScaleSettings()
    attention_manner: AttentionSettings = AttentionSettings()
    head: HeadSettings = HeadSettings()
