"""Writers of SimREC's downloaded flickr.json, vg.json and merge.json in their true formats, with the images where
SimREC's layout puts them, for any test suite.

The files are `{split: [entry]}`: training splits one entry per object with all its sentences, evaluation splits one
entry per sentence; an entry is `{iid, bbox [x, y, w, h], cat_id, refs, mask_id}`. Flickr30k's images are
`images/flickr/<iid>.jpg`; Visual Genome's entries add `url`, the image's path under `images/VG/` (`VG_100K/...` or
`VG_100K_2/...`); merge entries add `data_source` and name their image by file in `iid` (COCO's by number:
`"9.jpg"` is `images/coco/COCO_train2014_000000000009.jpg`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SIZE = (48, 64)  # height, width
SENTENCES = ("the red car", "a man on the left", "small dog near the tree", "the big blue car", "woman on the right")


@dataclass
class JsonDataset:
    """What was written: the annotation file, its content and every image it refers to."""

    path: Path
    anns: dict[str, list[dict]]
    images: list[Path]


def write_jpeg(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (*IMAGE_SIZE, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def _entries(iid: int | str, number: int, split: str, extra: dict) -> list[dict]:
    """The entries of one object: one for training (all its sentences), one per sentence elsewhere."""
    refs = [SENTENCES[number % len(SENTENCES)], SENTENCES[(number + 2) % len(SENTENCES)]]
    base = {"iid": iid, "bbox": [2.0 + number, 3.0, 20.5, 30.0], "cat_id": 0, "mask_id": number, **extra}
    if split == "train":
        return [{**base, "refs": refs}]
    return [{**base, "refs": [sentence]} for sentence in refs]


def _write(path: Path, anns: dict[str, list[dict]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(anns))


def _split(number: int, splits: tuple[str, ...]) -> str:
    return splits[-1 - number] if number < len(splits) - 1 else splits[0]  # one image per evaluation split


def write_flickr(data_root: Path, path: Path, num_images: int = 5) -> JsonDataset:
    """flickr.json at `path` (train/val/test), its images under `<data_root>/images/flickr/`."""
    anns: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    images = []
    for number in range(num_images):
        iid = 1_000_092_795 + number  # Flickr30k names its images by number
        anns[_split(number, tuple(anns))].extend(_entries(iid, number, _split(number, tuple(anns)), {}))
        images.append(write_jpeg(data_root / "images" / "flickr" / f"{iid}.jpg", number))
    _write(path, anns)
    return JsonDataset(path, anns, images)


def write_vg(data_root: Path, path: Path, num_images: int = 5) -> JsonDataset:
    """vg.json at `path` (train/val), its images under `<data_root>/images/VG/` at each entry's url."""
    anns: dict[str, list[dict]] = {"train": [], "val": []}
    images = []
    for number in range(num_images):
        iid = 2_300_000 + number
        url = f"{'VG_100K' if number % 2 else 'VG_100K_2'}/{iid}.jpg"
        split = _split(number, tuple(anns))
        anns[split].extend(_entries(iid, number, split, {"url": url}))
        images.append(write_jpeg(data_root / "images" / "VG" / url, number))
    _write(path, anns)
    return JsonDataset(path, anns, images)


def write_merge(data_root: Path, path: Path) -> JsonDataset:
    """SimREC's downloaded merge.json at `path` (train/val from coco, flickr and vg), with its images."""
    anns: dict[str, list[dict]] = {"train": [], "val": []}
    images = []
    sources = [("coco", "9.jpg", "coco/COCO_train2014_000000000009.jpg"), ("flickr", "36979.jpg", "flickr/36979.jpg"),
               ("vg", "61.jpg", "VG/61.jpg"), ("coco", "25.jpg", "coco/COCO_train2014_000000000025.jpg")]  # fmt: skip
    for number, (source, iid, file) in enumerate(sources):
        split = "val" if number == len(sources) - 1 else "train"
        anns[split].extend(_entries(iid, number, split, {"data_source": source}))
        images.append(write_jpeg(data_root / "images" / file, number))
    _write(path, anns)
    return JsonDataset(path, anns, images)
