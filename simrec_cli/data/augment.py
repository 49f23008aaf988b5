"""Training augmentations that keep image, boxes, masks and expressions consistent.

SimREC flipped the image vertically while flipping the box horizontally, never flipped the mask and never
swapped "left"/"right"; its RandAugment/elastic/grid candidates moved the image but not the box. Here the
flip is horizontal for all three plus the words, and the geometric candidates move box and mask with the
image (albumentations with box parameters). As in SimREC, one candidate is drawn per training item: per
object, or with grouping per image, shared by all its objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from simrec_cli.data.text import swap_left_right

RANDAUGMENT_MAGNITUDE = 9 / 30  # SimREC's RandAugment(2, 9): each op at 9/30 of its range


@dataclass
class Scene:
    """One image and the objects drawn from it, on their way through the augmentations.

    Original pixel space; boxes are xywh [K, 4], one row, mask and sentence per object. Training one
    object at a time is the K = 1 case; grouped training passes all objects of the image, so one draw
    moves them together and the backbone still sees the image once.
    """

    image: np.ndarray
    boxes: np.ndarray
    masks: list[np.ndarray] | None
    sentences: list[str]


def flip_horizontal(scene: Scene) -> Scene:
    """Mirror image, boxes and masks, and swap left/right in the expressions so they stay true."""
    width = scene.image.shape[1]
    boxes = scene.boxes.astype(np.float64, copy=True)
    boxes[:, 0] = width - scene.boxes[:, 0] - scene.boxes[:, 2]
    return Scene(
        image=np.ascontiguousarray(scene.image[:, ::-1]),
        boxes=boxes,
        masks=None if scene.masks is None else [np.ascontiguousarray(mask[:, ::-1]) for mask in scene.masks],
        sentences=[swap_left_right(sentence) for sentence in scene.sentences],
    )


def albumentations_module() -> ModuleType:
    """The albumentations module, imported on first use: evaluation and prediction never augment, and importing
    it costs about 0.3 s."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # the library checks PyPI at import otherwise
    import albumentations

    return albumentations


def _randaugment(A: ModuleType) -> Any:
    m = RANDAUGMENT_MAGNITUDE
    ops = [
        A.AutoContrast(p=1),
        A.Equalize(p=1),
        A.Affine(rotate=(-30 * m, 30 * m), p=1),
        A.Posterize(num_bits=(4, 8), p=1),
        A.Solarize(threshold_range=(1 - m, 1), p=1),
        A.ColorJitter(brightness=0, contrast=0, saturation=0.9 * m, hue=0, p=1),
        A.RandomBrightnessContrast(brightness_limit=0.9 * m, contrast_limit=0.9 * m, p=1),
        A.Sharpen(p=1),
        A.Affine(shear={"x": (-30 * m, 30 * m), "y": (0, 0)}, p=1),
        A.Affine(shear={"x": (0, 0), "y": (-30 * m, 30 * m)}, p=1),
        A.Affine(translate_percent={"x": (-0.45 * m, 0.45 * m), "y": (0, 0)}, p=1),
        A.Affine(translate_percent={"x": (0, 0), "y": (-0.45 * m, 0.45 * m)}, p=1),
    ]
    return A.SomeOf(ops, n=2, p=1)


# name -> the transform, built from the albumentations module
CANDIDATES: dict[str, Callable[[ModuleType], Any]] = {
    "randaugment": _randaugment,
    "elastic": lambda A: A.ElasticTransform(p=1),
    "grid_distortion": lambda A: A.GridDistortion(p=1),
    "random_erasing": lambda A: A.Erasing(scale=(0.02, 0.2), ratio=(0.05, 8), fill="random", p=1),
}


class CandidateAugmenter:
    """Applies one uniformly drawn candidate per sample, seeded from the sample's own generator."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.pipelines: dict[str, Any] = {}
        if self.names:
            A = albumentations_module()
            bbox_params = A.BboxParams(format="coco", label_fields=["labels"], min_visibility=0.3)
            self.pipelines = {name: A.Compose([CANDIDATES[name](A)], bbox_params=bbox_params) for name in self.names}

    def __call__(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if not self.names:
            return scene
        pipeline = self.pipelines[self.names[int(rng.integers(len(self.names)))]]
        pipeline.set_random_seed(int(rng.integers(2**31)))
        height, width = scene.image.shape[:2]
        count = len(scene.boxes)
        inputs = {
            "image": scene.image,
            "bboxes": [_clip_box(box, width, height) for box in scene.boxes],
            "labels": list(range(count)),
        }
        if scene.masks is not None:
            inputs["masks"] = [mask.astype(np.uint8) for mask in scene.masks]
        result = pipeline(**inputs)
        if len(result["bboxes"]) != count:
            return scene  # an object left the picture: keep the scene un-augmented rather than lie about it
        order = np.argsort(np.asarray(result["labels"]))
        return Scene(
            image=result["image"],
            boxes=np.asarray(result["bboxes"], dtype=np.float64).reshape(count, 4)[order],
            masks=None if scene.masks is None else [np.asarray(result["masks"][k]).astype(bool) for k in order],
            sentences=scene.sentences,
        )


def _clip_box(box: np.ndarray, width: int, height: int) -> list[float]:
    """albumentations refuses boxes that stick out of the image by a rounding error."""
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[0] + box[2])), min(float(height), float(box[1] + box[3]))
    return [x0, y0, max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)]
