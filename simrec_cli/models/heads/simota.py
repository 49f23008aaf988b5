"""SimOTA label assignment (YOLOX) for one ground-truth box per image, vectorized over the batch.

REC has exactly one box per expression, so the matching-conflict step of general SimOTA (a point claimed by
two boxes) never arises and the whole batch can be assigned with a few tensor operations.
"""

from __future__ import annotations

import torch

from simrec_cli.models.heads.boxes import iou_cxcywh

CENTER_RADIUS = 2.5  # in strides: points this close to the box centre are candidates even outside the box
CANDIDATE_TOP_K = 10  # the dynamic k is the integer part of the sum of the best 10 IoUs
IOU_COST_WEIGHT = 3.0
OUTSIDE_COST = 1e5  # cost added to candidates that are not both inside the box and near its centre


def simota_assign(pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, grid: torch.Tensor, stride: int) -> torch.Tensor:
    """Foreground mask [B, A] for predictions [B, A, 4] and targets [B, 4], both (cx, cy, w, h) in pixels.

    A point is a candidate when its cell centre lies strictly inside the box or within 2.5 strides of the
    box centre. Each image takes its k lowest-cost candidates, cost = 3 * -log(IoU) + 1e5 unless the point
    is both inside the box and near its centre, k = max(1, int(sum of the 10 best candidate IoUs)).
    """
    centers = (grid + 0.5) * stride
    cx, cy = centers[None, :, 0], centers[None, :, 1]
    gx, gy, gw, gh = (gt_boxes[:, i : i + 1] for i in range(4))
    in_box = (cx > gx - gw / 2) & (cx < gx + gw / 2) & (cy > gy - gh / 2) & (cy < gy + gh / 2)
    radius = CENTER_RADIUS * stride
    in_center = (cx > gx - radius) & (cx < gx + radius) & (cy > gy - radius) & (cy < gy + radius)
    candidate = in_box | in_center

    iou = iou_cxcywh(pred_boxes, gt_boxes[:, None, :]) * candidate
    cost = IOU_COST_WEIGHT * -torch.log(iou + 1e-8) + OUTSIDE_COST * ~(in_box & in_center)
    cost = cost.masked_fill(~candidate, float("inf"))

    top_k = min(CANDIDATE_TOP_K, iou.shape[1])
    dynamic_k = iou.topk(top_k, dim=1).values.sum(dim=1).int().clamp(min=1)
    order = cost.argsort(dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return (rank < dynamic_k[:, None]) & candidate
