"""SimREC's letterbox (longest side to the input size, pad 127, centred) and its exact inverse.

Boxes are always compared in original image pixels, so every transform here records what it did
(`LetterboxInfo`) and the inverse functions undo it the way SimREC's `yolobox2label` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

PAD_VALUE = 127
TARGET_MAX = 0.99  # SimREC clips normalized targets to [0, 0.99]


@dataclass(frozen=True)
class LetterboxInfo:
    """Where the resized image sits on the canvas: original size, resized size, offsets, canvas size (H, W)."""

    height: int
    width: int
    new_height: int
    new_width: int
    dx: int
    dy: int
    size: tuple[int, int]

    def to_array(self) -> np.ndarray:
        """Eight float64 numbers, so infos can be collated and all-gathered as tensors."""
        return np.array(
            [self.height, self.width, self.new_height, self.new_width, self.dx, self.dy, *self.size],
            dtype=np.float64,
        )

    @classmethod
    def from_array(cls, array: np.ndarray | torch.Tensor | Sequence[float]) -> LetterboxInfo:
        values = [round(float(v)) for v in (array.tolist() if hasattr(array, "tolist") else array)]
        h, w, nh, nw, dx, dy, size_h, size_w = values
        return cls(h, w, nh, nw, dx, dy, (size_h, size_w))


def compute_letterbox(height: int, width: int, size: tuple[int, int]) -> LetterboxInfo:
    """SimREC's arithmetic: the limiting side becomes the canvas side, the other is truncated with int()."""
    canvas_h, canvas_w = size
    aspect = width / height
    if canvas_w / aspect <= canvas_h:
        new_w, new_h = float(canvas_w), canvas_w / aspect
    else:
        new_h, new_w = float(canvas_h), canvas_h * aspect
    new_w, new_h = max(1, int(new_w)), max(1, int(new_h))
    return LetterboxInfo(height, width, new_h, new_w, (canvas_w - new_w) // 2, (canvas_h - new_h) // 2, size)


def letterbox_image(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize (cv2 bilinear) and centre an HxWx3 uint8 image on a canvas of `size` filled with 127."""
    info = compute_letterbox(image.shape[0], image.shape[1], tuple(size))
    canvas = np.full((info.size[0], info.size[1], 3), PAD_VALUE, dtype=np.uint8)
    resized = cv2.resize(image, (info.new_width, info.new_height), interpolation=cv2.INTER_LINEAR)
    canvas[info.dy : info.dy + info.new_height, info.dx : info.dx + info.new_width] = resized
    return canvas, info


def letterbox_mask(mask: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """The mask resized like its image (bilinear on floats, as SimREC) and zero padded: float32 HxW."""
    canvas = np.zeros(info.size, dtype=np.float32)
    resized = cv2.resize(mask.astype(np.float32), (info.new_width, info.new_height), interpolation=cv2.INTER_LINEAR)
    canvas[info.dy : info.dy + info.new_height, info.dx : info.dx + info.new_width] = resized
    return canvas


def _info_columns(infos: LetterboxInfo | Sequence[LetterboxInfo] | np.ndarray | torch.Tensor, count: int) -> np.ndarray:
    """Infos as a float64 [count, 8] array whatever form they came in."""
    if isinstance(infos, LetterboxInfo):
        rows = infos.to_array()[None]
    elif isinstance(infos, torch.Tensor):
        rows = infos.detach().cpu().double().numpy().reshape(-1, 8)
    elif isinstance(infos, np.ndarray):
        rows = infos.astype(np.float64).reshape(-1, 8)
    else:
        rows = np.stack([info.to_array() for info in infos])
    return np.broadcast_to(rows, (count, 8)) if len(rows) == 1 else rows


def boxes_to_original(boxes_xyxy: np.ndarray | torch.Tensor, infos, *, clip: bool = True) -> np.ndarray | torch.Tensor:
    """Undo the letterbox of [N, 4] xyxy boxes as SimREC's yolobox2label, then (with `clip`) clip them to the image.

    The original's evaluation does not clip (engine/protocol.py); pictures and served answers do.
    """
    is_tensor = isinstance(boxes_xyxy, torch.Tensor)
    boxes = boxes_xyxy.detach().cpu().double().numpy() if is_tensor else np.asarray(boxes_xyxy, dtype=np.float64)
    boxes = boxes.reshape(-1, 4)
    info = _info_columns(infos, len(boxes))
    h, w, nh, nw, dx, dy = (info[:, k] for k in range(6))
    result = np.empty_like(boxes)
    result[:, 0] = (boxes[:, 0] - dx) / nw * w
    result[:, 1] = (boxes[:, 1] - dy) / nh * h
    result[:, 2] = (boxes[:, 2] - dx) / nw * w
    result[:, 3] = (boxes[:, 3] - dy) / nh * h
    if clip:
        np.clip(result[:, 0::2], 0, w[:, None], out=result[:, 0::2])
        np.clip(result[:, 1::2], 0, h[:, None], out=result[:, 1::2])
    if is_tensor:
        return torch.from_numpy(result).to(device=boxes_xyxy.device, dtype=boxes_xyxy.dtype)
    return result


def mask_to_original(mask_letterboxed: np.ndarray, info: LetterboxInfo, *, cutoff: float = 0.5) -> np.ndarray:
    """Crop the image part of a letterboxed mask and resize it (cv2 bilinear, on floats) to the original size.

    A bool mask comes back bool: the resized pixels above `cutoff` (0 keeps every pixel the resize touched, as the
    original's mask_iou does); a float mask comes back as the resized floats.
    """
    crop = mask_letterboxed[info.dy : info.dy + info.new_height, info.dx : info.dx + info.new_width]
    resized = cv2.resize(crop.astype(np.float32), (info.width, info.height), interpolation=cv2.INTER_LINEAR)
    return resized > cutoff if mask_letterboxed.dtype == bool else resized


def xywh_to_target(box_xywh: Sequence[float] | np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """Normalized (cx, cy, w, h) of an original-pixel xywh box in the letterbox, clipped to [0, 0.99] (SimREC)."""
    x, y, bw, bh = (float(v) for v in box_xywh)
    scale_x, scale_y = info.new_width / info.width, info.new_height / info.height
    canvas_h, canvas_w = info.size
    target = np.array(
        [
            ((x + bw / 2) * scale_x + info.dx) / canvas_w,
            ((y + bh / 2) * scale_y + info.dy) / canvas_h,
            bw * scale_x / canvas_w,
            bh * scale_y / canvas_h,
        ]
    )
    return np.clip(target, 0.0, TARGET_MAX)
