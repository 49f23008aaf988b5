"""Letterbox exactly as SimREC, and its inverse."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec_cli.data.letterbox import (
    LetterboxInfo,
    boxes_to_original,
    compute_letterbox,
    letterbox_image,
    letterbox_mask,
    mask_to_original,
    xywh_to_target,
)


def test_letterbox_geometry_and_padding() -> None:
    image = np.full((300, 500, 3), 200, dtype=np.uint8)
    canvas, info = letterbox_image(image, (416, 416))
    assert canvas.shape == (416, 416, 3) and canvas.dtype == np.uint8
    # SimREC: nw = 416, nh = int(416 / (500 / 300)) = 249, dy = (416 - 249) // 2 = 83
    assert (info.new_width, info.new_height, info.dx, info.dy) == (416, 249, 0, 83)
    assert (canvas[:83] == 127).all() and (canvas[83 + 249 :] == 127).all()
    assert (canvas[83 : 83 + 249] == 200).all()
    tall = compute_letterbox(500, 300, (416, 416))
    assert (tall.new_height, tall.new_width, tall.dx, tall.dy) == (416, 249, 83, 0)


def test_non_square_canvas_and_tiny_image() -> None:
    info = compute_letterbox(100, 100, (160, 320))
    assert (info.new_height, info.new_width, info.dx, info.dy) == (160, 160, 80, 0)
    canvas, info = letterbox_image(np.zeros((1, 1000, 3), np.uint8), (416, 416))
    assert info.new_height == 1 and canvas.shape == (416, 416, 3)


def test_info_array_round_trip() -> None:
    info = compute_letterbox(480, 640, (416, 416))
    assert LetterboxInfo.from_array(info.to_array()) == info
    assert LetterboxInfo.from_array(torch.from_numpy(info.to_array())) == info


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(20, 900),
    w=st.integers(20, 900),
    fx=st.floats(0, 0.8),
    fy=st.floats(0, 0.8),
    fw=st.floats(0.05, 0.2),
    fh=st.floats(0.05, 0.2),
)
def test_target_then_unletterbox_recovers_the_box(h, w, fx, fy, fw, fh) -> None:
    info = compute_letterbox(h, w, (416, 416))
    box = np.array([fx * w, fy * h, fw * w, fh * h])
    cx, cy, bw, bh = xywh_to_target(box, info) * 416
    letterboxed = np.array([[cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]])
    back = boxes_to_original(letterboxed, info)[0]
    np.testing.assert_allclose(back, [box[0], box[1], box[0] + box[2], box[1] + box[3]], atol=1e-6)


def test_boxes_to_original_clips_and_accepts_tensors_and_lists() -> None:
    infos = [compute_letterbox(100, 200, (416, 416)), compute_letterbox(200, 100, (416, 416))]
    boxes = torch.tensor([[-10.0, 0.0, 500.0, 416.0], [0.0, 0.0, 416.0, 416.0]])
    back = boxes_to_original(boxes, infos)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    assert back[0].tolist() == [0.0, 0.0, 200.0, 100.0]
    assert back[1].tolist() == [0.0, 0.0, 100.0, 200.0]
    stacked = boxes_to_original(boxes.numpy(), np.stack([i.to_array() for i in infos]))
    np.testing.assert_allclose(stacked, back.numpy())


def test_boxes_to_original_without_clipping_is_yolobox2label() -> None:
    info = compute_letterbox(100, 200, (416, 416))  # nw 416, nh 208, dx 0, dy 104: 2.08 canvas pixels per pixel
    boxes = np.array([[-10.0, 0.0, 500.0, 416.0]])
    back = boxes_to_original(boxes, info, clip=False)[0]
    np.testing.assert_allclose(back, [-10 / 2.08, -104 / 2.08, 500 / 2.08, 312 / 2.08])
    np.testing.assert_allclose(boxes_to_original(boxes, info)[0], [0, 0, 200, 100])


def test_target_is_clipped_like_simrec() -> None:
    info = compute_letterbox(100, 100, (416, 416))
    assert xywh_to_target([0, 0, 100, 100], info).tolist() == pytest.approx([0.5, 0.5, 0.99, 0.99])


def test_mask_letterbox_and_back() -> None:
    mask = np.zeros((90, 160), dtype=bool)
    mask[30:60, 40:120] = True
    info = compute_letterbox(90, 160, (320, 320))
    boxed = letterbox_mask(mask, info)
    assert boxed.dtype == np.float32 and boxed.shape == (320, 320)
    assert boxed[: info.dy].sum() == 0
    restored = mask_to_original(boxed > 0.5, info)
    assert restored.dtype == bool and restored.shape == mask.shape
    assert (restored ^ mask).sum() <= 0.02 * mask.sum()


def test_mask_cutoff_zero_keeps_every_pixel_the_resize_touched() -> None:
    info = compute_letterbox(90, 160, (128, 128))  # the prediction is enlarged 1.25 times back to the image
    predicted = np.zeros((128, 128), dtype=bool)
    predicted[info.dy + 10 : info.dy + 30, 20:50] = True
    half = mask_to_original(predicted, info)
    touched = mask_to_original(predicted, info, cutoff=0.0)  # the original's mask_iou: resized prediction > 0
    assert (touched >= half).all() and touched.sum() > half.sum()
    resized = cv2.resize(predicted[info.dy : info.dy + info.new_height].astype(np.float32), (160, 90))
    assert (touched == (resized > 0)).all() and (half == (resized > 0.5)).all()
