"""MCNhead: MCN's multi-task head, a YOLOv3 box layer (3 anchors, stride 32) plus an ASPP mask branch.

Training adds the collaborative energy between the detection and segmentation attention maps, which pulls
both branches onto the same object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simrec_cli.models.float32 import Float32Conv2d
from simrec_cli.models.heads.boxes import best_of, cell_grid, cxcywh_to_xyxy, iou_cxcywh
from simrec_cli.models.layers import ASPP

MASK_LOSS_NORMALIZER = 640.0  # MCN divides the summed mask BCE by 640 and the batch size
ENERGY_EPS = 1e-6


class MCNhead(nn.Module):
    """`dconv` predicts (tx, ty, tw, th, objectness) per anchor and cell; `sconv` predicts mask logits (x8)."""

    stride = 32

    def __init__(self, in_channels: int, aspp_channels: int, anchors: list[tuple[int, int]], ignore_thresh: float):
        super().__init__()
        self.ignore_thresh = ignore_thresh
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32) / self.stride, persistent=False)
        self.d_proj = nn.Conv2d(in_channels, 1, kernel_size=3, padding=1)
        self.s_proj = nn.Conv2d(in_channels, 1, kernel_size=3, padding=1)
        self.dconv = Float32Conv2d(in_channels, len(anchors) * 5, 1)  # box and objectness in float32 (float32.py)
        self.sconv = nn.Sequential(ASPP(in_channels, aspp_channels, 1), nn.UpsamplingBilinear2d(scale_factor=8))

    def _raw_boxes(self, top: torch.Tensor) -> torch.Tensor:
        """[B, anchors, H, W, 5] raw predictions, float32."""
        batch, _, height, width = top.shape
        raw = self.dconv(top).view(batch, len(self.anchors), 5, height, width)
        return raw.permute(0, 1, 3, 4, 2)

    def _decode(self, raw: torch.Tensor) -> torch.Tensor:
        """(cx, cy, w, h) in cells: (sigmoid(t_xy) + cell, exp(t_wh) * anchor)."""
        height, width = raw.shape[2], raw.shape[3]
        grid = cell_grid(height, width, raw.device).view(1, 1, height, width, 2)
        xy = raw[..., :2].sigmoid() + grid
        wh = raw[..., 2:4].exp() * self.anchors.view(1, -1, 1, 1, 2)
        return torch.cat((xy, wh), dim=-1)

    def predict(self, top: torch.Tensor, bot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best box [B, 5] in input pixels and mask probabilities [B, H, W] of the input size."""
        raw = self._raw_boxes(top)
        batch = raw.shape[0]
        boxes = cxcywh_to_xyxy(self._decode(raw) * self.stride).reshape(batch, -1, 4)
        box = best_of(boxes, raw[..., 4].sigmoid().reshape(batch, -1))
        return box, self.sconv(bot).float().squeeze(1).sigmoid()

    def loss(
        self,
        top: torch.Tensor,
        bot: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor,
        det_attn: torch.Tensor,
        seg_attn: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, detection, segmentation) losses; targets [B, 4] normalized (cx, cy, w, h), masks [B, 1, H, W]."""
        loss_det = self._detection_loss(self._raw_boxes(top), targets.float())
        mask_logits = self.sconv(bot).float()
        batch = top.shape[0]
        loss_seg = F.binary_cross_entropy_with_logits(mask_logits, masks.float(), reduction="sum")
        loss_seg = loss_seg / MASK_LOSS_NORMALIZER / batch
        loss_energy = self._collaborative_energy(det_attn.float(), seg_attn.float()).sum()
        return loss_det + loss_seg + loss_energy, loss_det, loss_seg

    def _detection_loss(self, raw: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """YOLOv3 loss for one box per image: the best-shaped anchor at the box centre's cell is responsible.

        Predictions overlapping the box by more than `ignore_thresh` elsewhere get no objectness loss. Box
        terms are weighted by 2 - w * h (normalized), as in the YOLOv3 port MCN builds on.
        """
        batch, _, height, width = raw.shape[:4]
        rows = torch.arange(batch, device=raw.device)
        truth = targets * targets.new_tensor([width, height, width, height])
        anchor_overlap = torch.minimum(truth[:, None, 2:], self.anchors[None]).prod(dim=-1)
        anchor_union = truth[:, None, 2:].prod(dim=-1) + self.anchors.prod(dim=-1)[None] - anchor_overlap
        best_anchor = (anchor_overlap / anchor_union).argmax(dim=1)
        cell_x = truth[:, 0].long().clamp(max=width - 1)
        cell_y = truth[:, 1].long().clamp(max=height - 1)

        with torch.no_grad():
            pred_iou = iou_cxcywh(self._decode(raw), truth.view(batch, 1, 1, 1, 4), eps=0.0)
            objectness_weight = (pred_iou <= self.ignore_thresh).float()
            objectness_weight[rows, best_anchor, cell_y, cell_x] = 1.0
        objectness_target = torch.zeros_like(objectness_weight)
        objectness_target[rows, best_anchor, cell_y, cell_x] = 1.0

        assigned = raw[rows, best_anchor, cell_y, cell_x]
        target_xy = truth[:, :2] - truth[:, :2].floor()
        target_wh = torch.log(truth[:, 2:] / self.anchors[best_anchor] + 1e-16)
        scale = (2 - truth[:, 2] * truth[:, 3] / (width * height))[:, None]
        loss_xy = F.binary_cross_entropy_with_logits(assigned[:, :2], target_xy, weight=scale, reduction="sum")
        loss_wh = (scale * (assigned[:, 2:4] - target_wh) ** 2).sum() / 2
        loss_obj = F.binary_cross_entropy_with_logits(
            raw[..., 4], objectness_target, weight=objectness_weight, reduction="sum"
        )
        return (loss_xy + loss_wh + loss_obj) / batch

    def _collaborative_energy(self, det_attn: torch.Tensor, seg_attn: torch.Tensor) -> torch.Tensor:
        """-log of the expected (cosine + 1) / 2 similarity between the two maps under their attention.

        With p and q the softmaxed projections, sum_lk p_l q_k (x_l . y_k + 1) / 2 equals
        ((sum_l p_l x_l) . (sum_k q_k y_k) + 1) / 2, which avoids the [HW_top, HW_bot] similarity matrix.
        """
        batch = det_attn.shape[0]
        p = self.s_proj(det_attn).view(batch, -1).softmax(dim=-1)
        q = self.d_proj(seg_attn).view(batch, -1).softmax(dim=-1)
        x = F.normalize(det_attn, dim=1).flatten(2)
        y = F.normalize(seg_attn, dim=1).flatten(2)
        expected = (torch.einsum("bcl,bl->bc", x, p) * torch.einsum("bck,bk->bc", y, q)).sum(dim=1)
        return -torch.log((expected + 1) / 2 + ENERGY_EPS)
