"""`build_model`: settings -> SimREC or MCN, with channel counts derived from the parts they connect."""

from __future__ import annotations

import numpy as np
from torch import nn

from simrec_cli.errors import SimrecError
from simrec_cli.models.backbones import build_backbone
from simrec_cli.models.base import GroundingModel
from simrec_cli.models.fusion import GaranAttention, MultiScaleFusion, SimpleFusion
from simrec_cli.models.heads.mcn_head import MCNhead
from simrec_cli.models.heads.rec_head import REChead
from simrec_cli.models.language import LSTM_SA
from simrec_cli.models.mcn import MCN
from simrec_cli.models.simrec import SimREC
from simrec_cli.models.weights import load_backbone_weights
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings.model import LanguageEncoderSettings, ModelSettings


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all, trainable) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _language_encoder(
    settings: LanguageEncoderSettings, vocab_size: int, vectors: np.ndarray | None, reporter: Reporter
) -> LSTM_SA:
    if vectors is not None:
        if vectors.ndim != 2 or vectors.shape[0] != vocab_size:
            raise SimrecError(
                f"word vectors of shape {tuple(vectors.shape)} do not fit a vocabulary of {vocab_size} words",
                "build the vectors from the same vocabulary file as the model (one row per word)",
            )
        embed_size, freeze = int(vectors.shape[1]), settings.freeze_embedding
    else:
        embed_size, freeze = settings.word_embed_size, False
        if settings.freeze_embedding:
            reporter.info(
                "no word vectors given: the word embedding is random and trained "
                "(model.language_encoder.freeze_embedding applies only to pre-trained vectors)"
            )
    return LSTM_SA(
        vocab_size,
        embed_size,
        settings.hidden_size,
        settings.num_heads,
        settings.ffn_size,
        settings.depth,
        settings.flat_glimpses,
        settings.dropout_rate,
        pretrained_embedding=vectors,
        freeze_embedding=freeze,
    )


def build_model(
    settings: ModelSettings,
    vocab_size: int,
    pretrained_embedding: np.ndarray | None = None,
    reporter: Reporter | None = None,
) -> GroundingModel:
    """The model the settings describe (random weights unless the backbone is `pretrained`).

    With `pretrained_embedding` [vocab_size, D], D decides the embedding size and `freeze_embedding` applies;
    without it, the embedding is random and trainable.
    """
    reporter = reporter or NullReporter()
    if vocab_size < 1:
        raise SimrecError(f"vocabulary size {vocab_size} is not positive", "prepare the data to build a vocabulary")
    backbone_settings = settings.visual_backbone
    backbone = build_backbone(backbone_settings)
    if backbone_settings.pretrained:
        load_backbone_weights(backbone, backbone_settings.pretrained_weight_path, reporter)
    language = _language_encoder(settings.language_encoder, vocab_size, pretrained_embedding, reporter)
    lang_size = settings.language_encoder.hidden_size
    fused, hidden = settings.fusion_manner.out_planes, settings.multi_scale_manner.hidden_planes
    scaled, head, attention = settings.multi_scale_manner.scaled, settings.head, settings.attention_manner
    low, mid, high = backbone.out_channels

    def garan() -> GaranAttention:
        return GaranAttention(lang_size, hidden, attention.n_head, attention.dropout, attention.transpose_output)

    if settings.name == "simrec":
        model: GroundingModel = SimREC(
            backbone,
            language,
            MultiScaleFusion((fused, fused, fused), hidden, scaled),
            nn.ModuleList(SimpleFusion(planes, lang_size, fused) for planes in backbone.out_channels),
            garan(),
            REChead(hidden, head.width, head.act, head.depthwise, head.label_smooth, head.box_loss),
        )
    else:
        model = MCN(
            backbone,
            language,
            SimpleFusion(high, lang_size, fused),
            MultiScaleFusion((low, mid, fused), hidden, scaled),
            garan(),
            garan(),
            MCNhead(hidden, max(1, int(hidden * head.width) // 2), head.anchors, head.ignore_thresh),
        )
    total, trainable = count_parameters(model)
    reporter.info(
        f"model {settings.name} ({backbone_settings.name}): {total:,} parameters, {trainable:,} trainable "
        f"({total / 1e6:.2f} M / {trainable / 1e6:.2f} M)"
    )
    return model
