"""SimREC: backbone -> per-scale language gating -> multi-scale fusion -> Garan attention -> REChead."""

from __future__ import annotations

import torch
from torch import nn

from simrec_cli.models.backbones import StagedBackbone
from simrec_cli.models.base import GroundingModel
from simrec_cli.models.fusion import GaranAttention, MultiScaleFusion
from simrec_cli.models.heads.rec_head import REChead
from simrec_cli.models.language import LSTM_SA


class SimREC(GroundingModel):
    """The released SimREC; submodules registered in its order, so the state_dict keys match it line by line.

    Only the top map reaches the head, so the `mid` and `bot` projections of the multi-scale fusion are
    never computed (their parameters stay, and get no gradient: DDP needs `find_unused_parameters=True`).
    """

    def __init__(
        self,
        visual_encoder: StagedBackbone,
        lang_encoder: LSTM_SA,
        multi_scale_manner: MultiScaleFusion,
        fusion_manner: nn.ModuleList,
        attention_manner: GaranAttention,
        head: REChead,
    ):
        super().__init__()
        self.visual_encoder = visual_encoder
        self.lang_encoder = lang_encoder
        self.multi_scale_manner = multi_scale_manner
        self.fusion_manner = fusion_manner
        self.attention_manner = attention_manner
        self.head = head

    def _top(self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None) -> torch.Tensor:
        feats = self.visual_features(images, image_index)
        language = self.lang_encoder(tokens)["flat_lang_feat"]
        feats = [fusion(feat, language) for fusion, feat in zip(self.fusion_manner, feats, strict=True)]
        _, _, top = self.multi_scale_manner(feats, with_bot=False, with_mid=False)
        top, _ = self.attention_manner(language, top)
        return top

    def infer(
        self, images: torch.Tensor, tokens: torch.Tensor, image_index: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        return {"boxes": self.head.predict(self._top(images, tokens, image_index))}

    def losses(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor | None,
        image_index: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        loss = self.head.loss(self._top(images, tokens, image_index), targets)
        return {"loss": loss, "loss_det": loss.detach(), "loss_seg": torch.zeros((), device=loss.device)}
