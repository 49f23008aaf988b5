"""Box arithmetic shared by the heads: grids of cell indices, IoU of centre-size boxes, corner conversion."""

from __future__ import annotations

import torch


def cell_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """[H * W, 2] (x, y) index of every cell, row by row (the order of a flattened [H, W] map)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack((xs, ys), dim=-1).view(-1, 2)


Corners = tuple[torch.Tensor, torch.Tensor]


def _corners(boxes: torch.Tensor) -> Corners:
    return boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2


def _overlap_and_union(
    a: torch.Tensor, b: torch.Tensor, a_corners: Corners, b_corners: Corners
) -> tuple[torch.Tensor, torch.Tensor]:
    (a_min, a_max), (b_min, b_max) = a_corners, b_corners
    overlap = (torch.minimum(a_max, b_max) - torch.maximum(a_min, b_min)).clamp(min=0).prod(dim=-1)
    return overlap, a[..., 2:].prod(dim=-1) + b[..., 2:].prod(dim=-1) - overlap


def iou_cxcywh(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
    """Element-wise IoU of (cx, cy, w, h) boxes, broadcasting over leading dimensions."""
    overlap, union = _overlap_and_union(a, b, _corners(a), _corners(b))
    return overlap / (union + eps)


def giou_cxcywh(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
    """Element-wise generalized IoU (IoU minus the empty share of the enclosing box), in [-1, 1].

    Unlike IoU it still has a gradient when the boxes do not overlap, so a far-off prediction is pulled in.
    """
    a_corners, b_corners = _corners(a), _corners(b)
    overlap, union = _overlap_and_union(a, b, a_corners, b_corners)
    enclosing = (torch.maximum(a_corners[1], b_corners[1]) - torch.minimum(a_corners[0], b_corners[0])).prod(dim=-1)
    return overlap / (union + eps) - (enclosing - union) / (enclosing + eps)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    half = boxes[..., 2:] / 2
    return torch.cat((boxes[..., :2] - half, boxes[..., :2] + half), dim=-1)


def best_of(boxes_xyxy: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The highest-scoring box of each image, no threshold and no NMS: [B, N, 4], [B, N] -> [B, 5]."""
    best = scores.argmax(dim=1)
    rows = torch.arange(boxes_xyxy.shape[0], device=boxes_xyxy.device)
    return torch.cat((boxes_xyxy[rows, best], scores[rows, best, None]), dim=1)
