"""REChead: SimREC's anchor-free, single-level (stride 32) YOLOX head without classes.

Training assigns points with SimOTA and returns 5 * sum(1 - IoU^2) / num_fg + sum(BCE(objectness)) / num_fg
(the released loss), or with `box_loss="giou"` 5 * sum(1 - GIoU) / num_fg for the box term.
Inference returns the box of the point with the highest objectness, in pixels of the (letterboxed) input.
The head computes in float32 under autocast (see models/float32.py): in bf16 the near-equal objectness of a barely
trained model rounds to one value and every expression got the first cell's box.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from simrec_cli.models.float32 import float32_computation
from simrec_cli.models.heads.boxes import best_of, cell_grid, cxcywh_to_xyxy, giou_cxcywh, iou_cxcywh
from simrec_cli.models.heads.simota import simota_assign
from simrec_cli.models.layers import ConvBnAct

IOU_LOSS_WEIGHT = 5.0
OBJECTNESS_PRIOR = 0.01  # YOLOX's initial objectness; the original defined this init but never called it


class DWConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 (YOLOX's `depthwise=True` option), named `dconv`/`pconv`."""

    def __init__(self, c_in: int, c_out: int, act: str):
        super().__init__()
        self.dconv = ConvBnAct(c_in, c_in, 3, act=act, groups=c_in)
        self.pconv = ConvBnAct(c_in, c_out, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


class REChead(nn.Module):
    """stem (1x1) -> two 3x3 convs -> box (4) and objectness (1) predictions for every cell of the top map."""

    stride = 32
    computes_in_float32 = True

    def __init__(
        self,
        in_channels: int,
        width: float = 1.0,
        act: str = "silu",
        depthwise: bool = False,
        label_smooth: float = 0,
        box_loss: str = "iou",
    ):
        super().__init__()
        self.box_loss = box_loss
        hidden = int(256 * width)
        conv = (
            (lambda c_in, c_out: DWConv(c_in, c_out, act))
            if depthwise
            else (lambda c_in, c_out: ConvBnAct(c_in, c_out, 3, act=act))
        )
        self.label_smooth = label_smooth
        # Registration order and the one-element lists reproduce the released keys (`reg_convs.0.0...`).
        self.reg_convs = nn.ModuleList([nn.Sequential(conv(hidden, hidden), conv(hidden, hidden))])
        self.reg_preds = nn.ModuleList([nn.Conv2d(hidden, 4, 1)])
        self.obj_preds = nn.ModuleList([nn.Conv2d(hidden, 1, 1)])
        self.stems = nn.ModuleList([ConvBnAct(in_channels, hidden, 1, act=act)])
        nn.init.constant_(self.obj_preds[0].bias, -math.log((1 - OBJECTNESS_PRIOR) / OBJECTNESS_PRIOR))

    def forward(self, top: torch.Tensor) -> torch.Tensor:
        """Raw predictions [B, H * W, 5] (tx, ty, tw, th, objectness logit), computed in float32 under autocast."""
        with float32_computation(top):
            features = self.reg_convs[0](self.stems[0](top.float()))
            raw = torch.cat((self.reg_preds[0](features), self.obj_preds[0](features)), dim=1)
        return raw.flatten(2).transpose(1, 2)

    def decode(self, raw: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(cx, cy, w, h) in input pixels for every cell: ((t_xy + cell) * 32, exp(t_wh) * 32)."""
        grid = cell_grid(height, width, raw.device)
        return torch.cat(((raw[..., :2] + grid) * self.stride, raw[..., 2:4].exp() * self.stride), dim=-1)

    def predict(self, top: torch.Tensor) -> torch.Tensor:
        """[B, 5] = (x1, y1, x2, y2, objectness) of the best cell, in pixels of the input; not clipped."""
        raw = self(top)
        boxes = cxcywh_to_xyxy(self.decode(raw, top.shape[2], top.shape[3]))
        return best_of(boxes, raw[..., 4].sigmoid())

    def loss(self, top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss for targets [B, 4] normalized (cx, cy, w, h) in the input."""
        height, width = top.shape[2], top.shape[3]
        raw = self(top)
        pred_boxes = self.decode(raw, height, width)
        size = targets.new_tensor([width, height, width, height]) * self.stride
        gt_boxes = targets.float() * size
        with torch.no_grad():
            foreground = simota_assign(pred_boxes, gt_boxes, cell_grid(height, width, raw.device), self.stride)
        num_fg = foreground.sum().clamp(min=1)
        batch_index = foreground.nonzero()[:, 0]
        matched, target = pred_boxes[foreground], gt_boxes[batch_index]
        if self.box_loss == "giou":
            loss_box = IOU_LOSS_WEIGHT * (1 - giou_cxcywh(matched, target)).sum() / num_fg
        else:
            loss_box = IOU_LOSS_WEIGHT * (1 - iou_cxcywh(matched, target) ** 2).sum() / num_fg
        objectness_target = foreground.float()
        if self.label_smooth > 0:
            objectness_target = objectness_target.clamp(self.label_smooth, 1 - self.label_smooth)
        loss_obj = F.binary_cross_entropy_with_logits(raw[..., 4], objectness_target, reduction="sum") / num_fg
        return loss_box + loss_obj
