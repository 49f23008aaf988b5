"""MCN: one backbone, two tasks. Gated top map + multi-scale fusion -> Garan attention per task -> MCNhead."""

from __future__ import annotations

import torch

from simrec_cli.models.backbones import StagedBackbone
from simrec_cli.models.base import GroundingModel
from simrec_cli.models.fusion import GaranAttention, MultiScaleFusion, SimpleFusion
from simrec_cli.models.heads.mcn_head import MCNhead
from simrec_cli.models.language import LSTM_SA


class MCN(GroundingModel):
    """Boxes from the attended top map (stride 32), masks from the attended bottom map (stride 8, upsampled x8)."""

    has_mask_head = True

    def __init__(
        self,
        visual_encoder: StagedBackbone,
        lang_encoder: LSTM_SA,
        fusion_manner: SimpleFusion,
        multi_scale_manner: MultiScaleFusion,
        det_garan: GaranAttention,
        seg_garan: GaranAttention,
        head: MCNhead,
    ):
        super().__init__()
        self.visual_encoder = visual_encoder
        self.lang_encoder = lang_encoder
        self.fusion_manner = fusion_manner
        self.multi_scale_manner = multi_scale_manner
        self.det_garan = det_garan
        self.seg_garan = seg_garan
        self.head = head

    def _attended(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        """(top, bot, det_attn, seg_attn)."""
        feats = self.visual_features(images, image_index)
        language = self.lang_encoder(tokens)["flat_lang_feat"]
        feats[-1] = self.fusion_manner(feats[-1], language)
        bot, _, top = self.multi_scale_manner(feats, with_mid=False)
        bot, seg_attn = self.seg_garan(language, bot)
        top, det_attn = self.det_garan(language, top)
        return top, bot, det_attn, seg_attn

    def infer(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        top, bot, _, _ = self._attended(images, tokens, image_index)
        boxes, masks = self.head.predict(top, bot)
        return {"boxes": boxes, "masks": masks}

    def losses(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor | None,
        image_index: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        top, bot, det_attn, seg_attn = self._attended(images, tokens, image_index)
        loss, loss_det, loss_seg = self.head.loss(top, bot, targets, masks, det_attn, seg_attn)
        return {"loss": loss, "loss_det": loss_det.detach(), "loss_seg": loss_seg.detach()}
