"""Pictures of the answers: each expression's box (and mask) drawn in its own colour with its text and score.

Pictures are drawn at a bounded size: a 10000 x 8000 photo is drawn at most `PICTURE_MAX_SIDE` pixels on its
long side (drawing and encoding 80 megapixels would take longer than the prediction), and a tiny image is
enlarged to `PICTURE_MIN_SIDE` so its labels stay readable. Boxes in the results stay in original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PICTURE_MAX_SIDE = 4096
PICTURE_MIN_SIDE = 320
MASK_OPACITY = 0.45
TARGET_COLOUR = (60, 180, 75)  # evaluation pictures: the true object
PREDICTION_COLOUR = (230, 25, 75)  # the model's answer
OTHER_COLOUR = (170, 170, 170)  # the image's other objects
# Distinct, saturated colours; expression k gets PALETTE[k % len(PALETTE)].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
)


@dataclass(frozen=True)
class Annotation:
    """One answer to draw: its box in original pixels, score, expression and optional boolean mask."""

    expression: str
    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class PictureBase:
    """The image at picture size, kept instead of the full decode while the model works on a batch."""

    pixels: np.ndarray
    scale: float


def picture_scale(height: int, width: int, max_width: int | None = None) -> float:
    """Factor from original pixels to picture pixels (1.0 for ordinary sizes; at most `max_width` wide)."""
    longest = max(height, width)
    scale = 1.0
    if longest > PICTURE_MAX_SIDE:
        scale = PICTURE_MAX_SIDE / longest
    elif longest < PICTURE_MIN_SIDE:
        scale = PICTURE_MIN_SIDE / longest
    if max_width is not None and width * scale > max_width:
        scale = max_width / width
    return scale


def picture_base(image: np.ndarray, max_width: int | None = None) -> PictureBase:
    """A copy of `image` (H x W x 3 uint8 RGB) at the size its picture will be drawn."""
    height, width = image.shape[:2]
    scale = picture_scale(height, width, max_width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return PictureBase(_resized(image, size), scale)


def draw_annotations(base: PictureBase, annotations: Sequence[Annotation]) -> Image.Image:
    """The picture with every annotation drawn on it; boxes and masks are given in original pixels."""
    picture = base.pixels.copy()
    size = (picture.shape[1], picture.shape[0])
    for index, annotation in enumerate(annotations):
        if annotation.mask is not None:
            _blend_mask(picture, _resized_mask(annotation.mask, size), PALETTE[index % len(PALETTE)])
    canvas = Image.fromarray(picture)
    pen = ImageDraw.Draw(canvas)
    line_width = max(2, round(max(size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(size) / 45)))
    for index, annotation in enumerate(annotations):
        outline = PALETTE[index % len(PALETTE)]
        pen.rectangle(_scaled_box(annotation.box, base.scale), outline=outline, width=line_width)
    placed: list[tuple[float, float, float, float]] = []
    for index, annotation in enumerate(annotations):
        label = f"{index + 1}. {annotation.expression} {annotation.score:.2f}"
        corner = (annotation.box[0] * base.scale, annotation.box[1] * base.scale)
        placed.append(_draw_label(pen, label, corner, PALETTE[index % len(PALETTE)], font, size, placed))
    return canvas


def draw_outcome(
    base: PictureBase,
    target: Sequence[float],
    prediction: Sequence[float],
    others: Sequence[Sequence[float]] = (),
    target_mask: np.ndarray | None = None,
    predicted_mask: np.ndarray | None = None,
) -> Image.Image:
    """One evaluated expression: the true object in green, the answer in red, the image's other objects thin
    and grey (boxes x1, y1, x2, y2 in original pixels), and the masks tinted in the same colours."""
    picture = base.pixels.copy()
    size = (picture.shape[1], picture.shape[0])
    for mask, colour in ((target_mask, TARGET_COLOUR), (predicted_mask, PREDICTION_COLOUR)):
        if mask is not None:
            _blend_mask(picture, _resized_mask(mask, size), colour)
    canvas = Image.fromarray(picture)
    pen = ImageDraw.Draw(canvas)
    line_width = max(2, round(max(size) / 300))
    for box in others:
        pen.rectangle(_scaled_box(box, base.scale), outline=OTHER_COLOUR, width=1)
    font = ImageFont.load_default(size=max(11, round(max(size) / 40)))
    placed: list[tuple[float, float, float, float]] = []
    for box, colour, label in ((target, TARGET_COLOUR, "target"), (prediction, PREDICTION_COLOUR, "answer")):
        scaled = _scaled_box(box, base.scale)
        pen.rectangle(scaled, outline=colour, width=line_width)
        placed.append(_draw_label(pen, label, scaled[:2], colour, font, size, placed))
    return canvas


def _scaled_box(box: Sequence[float], scale: float) -> tuple[float, float, float, float]:
    left, top, right, bottom = (coordinate * scale for coordinate in box)
    return left, top, max(left, right), max(top, bottom)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return np.array(image, dtype=np.uint8, order="C")
    shrinking = size[0] < image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=interpolation)


def _resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (mask.shape[1], mask.shape[0]) == size:
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


def _blend_mask(picture: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    tint = np.asarray(colour, dtype=np.float32)
    picture[mask] = (picture[mask] * (1 - MASK_OPACITY) + tint * MASK_OPACITY).astype(np.uint8)


def _draw_label(
    pen: ImageDraw.ImageDraw,
    label: str,
    corner: tuple[float, float],
    colour: tuple[int, int, int],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    size: tuple[int, int],
    placed: Sequence[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    """Text on a filled strip above the box, kept inside the picture and moved down below earlier labels it
    would cover (answers to several expressions often share a box). Returns the strip drawn."""
    left, top, right, bottom = pen.textbbox((0, 0), label, font=font)
    text_width, text_height = right - left, bottom - top
    padding = max(2, text_height // 4)
    strip_width, strip_height = text_width + 2 * padding, text_height + 2 * padding
    x = min(max(0.0, corner[0]), max(0.0, size[0] - strip_width))
    y = corner[1] - strip_height if corner[1] - strip_height >= 0 else max(0.0, corner[1])
    while any(_overlap((x, y, x + strip_width, y + strip_height), other) for other in placed):
        y += strip_height
    y = min(y, max(0.0, size[1] - strip_height))
    strip = (x, y, x + strip_width, y + strip_height)
    pen.rectangle(strip, fill=colour)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    text_colour = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    pen.text((x + padding - left, y + padding - top), label, fill=text_colour, font=font)
    return strip


def _overlap(first: tuple[float, float, float, float], second: tuple[float, float, float, float]) -> bool:
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]
