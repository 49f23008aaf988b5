"""Training augmentations that keep image, box, mask and expression consistent.

SimREC flipped the image vertically while flipping the box horizontally, never flipped the mask and never
swapped "left"/"right"; its RandAugment/elastic/grid candidates moved the image but not the box. Here the
flip is horizontal for all three plus the words, and the geometric candidates move box and mask with the
image (albumentations with box parameters). As in SimREC, one candidate is drawn per sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from simrec_cli.data.text import swap_left_right

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # the library checks PyPI at import otherwise

import albumentations as A

RANDAUGMENT_MAGNITUDE = 9 / 30  # SimREC's RandAugment(2, 9): each op at 9/30 of its range


@dataclass
class Example:
    """One training example on its way through the augmentations (original pixel space, box xywh)."""

    image: np.ndarray
    box: np.ndarray
    mask: np.ndarray | None
    sentence: str


def flip_horizontal(example: Example) -> Example:
    """Mirror image, box and mask, and swap left/right in the expression so it stays true."""
    width = example.image.shape[1]
    x, y, w, h = example.box
    return Example(
        image=np.ascontiguousarray(example.image[:, ::-1]),
        box=np.array([width - x - w, y, w, h], dtype=np.float64),
        mask=None if example.mask is None else np.ascontiguousarray(example.mask[:, ::-1]),
        sentence=swap_left_right(example.sentence),
    )


def _randaugment() -> A.BaseCompose:
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


CANDIDATES = {
    "randaugment": _randaugment,
    "elastic": lambda: A.ElasticTransform(p=1),
    "grid_distortion": lambda: A.GridDistortion(p=1),
    "random_erasing": lambda: A.Erasing(scale=(0.02, 0.2), ratio=(0.05, 8), fill="random", p=1),
}


class CandidateAugmenter:
    """Applies one uniformly drawn candidate per sample, seeded from the sample's own generator."""

    def __init__(self, names: list[str]) -> None:
        bbox_params = A.BboxParams(format="coco", label_fields=["labels"], min_visibility=0.3)
        self.names = list(names)
        self.pipelines = {name: A.Compose([CANDIDATES[name]()], bbox_params=bbox_params) for name in self.names}

    def __call__(self, example: Example, rng: np.random.Generator) -> Example:
        if not self.names:
            return example
        pipeline = self.pipelines[self.names[int(rng.integers(len(self.names)))]]
        pipeline.set_random_seed(int(rng.integers(2**31)))
        height, width = example.image.shape[:2]
        box = _clip_box(example.box, width, height)
        inputs = {"image": example.image, "bboxes": [box], "labels": [0]}
        if example.mask is not None:
            inputs["mask"] = example.mask.astype(np.uint8)
        result = pipeline(**inputs)
        if len(result["bboxes"]) != 1:
            return example  # the object left the picture: keep the sample un-augmented rather than lie
        mask = result.get("mask")
        return Example(
            image=result["image"],
            box=np.asarray(result["bboxes"][0], dtype=np.float64),
            mask=None if mask is None else mask.astype(bool),
            sentence=example.sentence,
        )


def _clip_box(box: np.ndarray, width: int, height: int) -> list[float]:
    """albumentations refuses boxes that stick out of the image by a rounding error."""
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[0] + box[2])), min(float(height), float(box[1] + box[3]))
    return [x0, y0, max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)]
