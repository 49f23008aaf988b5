"""Writers of REFER-format fixtures in the true on-disk formats, for any test suite.

`write_refer_fixture(root, ...)` lays out `<root>/<dataset>/instances.json`, `refs(<split_by>).p` (pickled as
Python 2 did: byte strings as BINSTRING opcodes, protocol 2) and JPEG images under `<root>/images/<folder>/`.
Objects are rectangles with integer corners, so their polygon masks have a known area; with `crowd=True`
some objects carry an uncompressed RLE (COCO crowd style) and some a compressed RLE string instead.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SPLITS_BY = {
    ("refcoco", "unc"): ("train", "train", "val", "testA", "testB"),
    ("refcoco", "google"): ("train", "train", "val", "testA", "testB"),
    ("refcoco+", "unc"): ("train", "train", "val", "testA", "testB"),
    ("refcocog", "umd"): ("train", "train", "val", "test"),
    ("refcocog", "google"): ("train", "train", "val"),
    ("refclef", "berkeley"): ("train", "train", "val", "test"),
    ("refclef", "unc"): ("train", "train", "val", "testA", "testB", "testC"),
}
WORDS = ("man", "woman", "left", "right", "red", "car", "dog", "big", "small", "near", "tree", "blue")


class _Python2Pickler(pickle._Pickler):
    """Writes `str` the way Python 2 wrote its byte strings (SHORT_BINSTRING / BINSTRING)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: str) -> None:
        data = obj.encode("utf-8")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_python2_str


def python2_pickle_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's crowd form: run lengths over the column-major pixels, starting with a run of zeros."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def coco_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.jpg"


@dataclass
class ReferFixture:
    """What was written, for tests to compare against."""

    root: Path
    dataset: str
    split_by: str
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    refs: list[dict] = field(default_factory=list)
    true_masks: dict[int, np.ndarray] = field(default_factory=dict)  # ann_id -> bool mask

    @property
    def image_dir(self) -> Path:
        return self.root / "images" / ("refclef" if self.dataset == "refclef" else "coco")

    @property
    def refer_dir(self) -> Path:
        return self.root / self.dataset


def _share(total: int, parts: int, index: int) -> int:
    """How many of `total` items part `index` of `parts` gets when spread as evenly as possible."""
    return total // parts + int(index < total % parts)


def _rectangle(
    rng: np.random.Generator, height: int, width: int, sides: tuple[float, float] | None = None
) -> tuple[int, int, int, int]:
    """Integer corners x0, y0, x1, y1 of a box at least 4 px wide and high inside the image; with `sides`, each
    side is that share of the image's (drawn uniformly between the two) and the box lies anywhere inside."""
    if sides is None:
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        return x0, y0, int(rng.integers(x0 + 4, width)), int(rng.integers(y0 + 4, height))
    box_w, box_h = (max(4, round(float(rng.uniform(*sides)) * side)) for side in (width, height))
    x0, y0 = int(rng.integers(0, width - box_w + 1)), int(rng.integers(0, height - box_h + 1))
    return x0, y0, x0 + box_w, y0 + box_h


def _annotation(ann_id: int, image_id: int, category: int, corners: tuple[int, int, int, int]) -> dict:
    """An instances.json annotation of a rectangle, with its polygon as the segmentation."""
    x0, y0, x1, y1 = corners
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
        "area": float((x1 - x0) * (y1 - y0)),
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
    }


def _image_name(dataset: str, image_id: int) -> str:
    return f"{image_id}.jpg" if dataset == "refclef" else coco_name(image_id)


def write_refer_fixture(
    root: Path,
    dataset: str = "refcoco",
    split_by: str = "unc",
    *,
    num_images: int = 5,
    num_objects: int | None = None,
    num_sentences: int | None = None,
    crowd: bool = True,
    write_images: bool = True,
    placeholder_jpeg: bool = False,
    image_scale: int = 1,
    keep_true_masks: bool = True,
    seed: int = 0,
    unreferred_per_image: int = 0,
    split_cycle: tuple[str, ...] | None = None,
    object_sides: tuple[float, float] | None = None,
) -> ReferFixture:
    """Write a small (or, with placeholder JPEGs, a large) REFER dataset; returns what it wrote.

    Objects (default 2 per image) are spread evenly over the images, sentences (default 2 per object) over
    the objects. Images are 40-96 px times `image_scale`; `keep_true_masks=False` saves memory at scale.
    `unreferred_per_image` adds objects no ref mentions (instances.json lists them, as COCO's do);
    `split_cycle` overrides the splits the images cycle through (e.g. ("val",) for a val-only fixture);
    `object_sides` (shares of the image's sides) sizes the referred objects.
    """
    rng = np.random.default_rng(seed)
    num_objects = num_objects or 2 * num_images
    num_sentences = num_sentences or 2 * num_objects
    fixture = ReferFixture(root, dataset, split_by)
    split_cycle = split_cycle or SPLITS_BY[(dataset, split_by)]
    fixture.refer_dir.mkdir(parents=True, exist_ok=True)
    if write_images:
        fixture.image_dir.mkdir(parents=True, exist_ok=True)
    placeholder = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()
    categories = [{"id": cid, "name": f"category{cid}", "supercategory": "thing"} for cid in (1, 3, 18, 90)]
    ann_id, ref_id, sent_id = 1000, 0, 0
    for image_index in range(num_images):
        image_id = 100 + image_index
        height, width = int(rng.integers(40, 72)) * image_scale, int(rng.integers(40, 96)) * image_scale
        fixture.images.append(
            {"id": image_id, "file_name": _image_name(dataset, image_id), "height": height, "width": width}
        )
        split = split_cycle[image_index % len(split_cycle)]
        for object_index in range(_share(num_objects, num_images, image_index)):
            x0, y0, x1, y1 = _rectangle(rng, height, width, object_sides)
            kind = ("polygon", "crowd", "compressed")[object_index % 3] if crowd else "polygon"
            truth = None
            if keep_true_masks or kind != "polygon":
                truth = np.zeros((height, width), dtype=bool)
                truth[y0:y1, x0:x1] = True
            if kind == "polygon":
                segmentation: list | dict = [[x0, y0, x1, y0, x1, y1, x0, y1]]
            elif kind == "crowd":
                segmentation = uncompressed_rle(truth)
            else:
                encoded = mask_utils.encode(np.asfortranarray(truth.astype(np.uint8)))
                segmentation = {"size": encoded["size"], "counts": encoded["counts"].decode()}
            category = categories[object_index % len(categories)]["id"]
            fixture.annotations.append(
                {**_annotation(ann_id, image_id, category, (x0, y0, x1, y1)), "segmentation": segmentation,
                 "iscrowd": int(kind == "crowd")}
            )  # fmt: skip
            if keep_true_masks:
                fixture.true_masks[ann_id] = truth
            sentences = []
            for _ in range(_share(num_sentences, num_objects, ref_id)):
                words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(2, 5)))]
                sentences.append(
                    {"sent_id": sent_id, "sent": " ".join(words), "raw": " ".join(words).upper() + ".", "tokens": words}
                )
                sent_id += 1
            fixture.refs.append(
                {
                    "ref_id": ref_id,
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "category_id": category,
                    "split": split,
                    "file_name": _image_name(dataset, image_id)[:-4] + f"_{ann_id}.jpg",
                    "sent_ids": [s["sent_id"] for s in sentences],
                    "sentences": sentences,
                }
            )
            ann_id += 1
            ref_id += 1
        for _ in range(unreferred_per_image):
            corners = _rectangle(rng, height, width)
            category = categories[ann_id % len(categories)]["id"]
            fixture.annotations.append({**_annotation(ann_id, image_id, category, corners), "iscrowd": 0})
            ann_id += 1
        if write_images:
            path = fixture.image_dir / _image_name(dataset, image_id)
            if placeholder_jpeg:
                path.write_bytes(placeholder)
            else:
                picture = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
                cv2.imwrite(str(path), picture)
    instances = {"images": fixture.images, "annotations": fixture.annotations, "categories": categories}
    (fixture.refer_dir / "instances.json").write_text(json.dumps(instances))
    (fixture.refer_dir / f"refs({split_by}).p").write_bytes(python2_pickle_bytes(fixture.refs))
    return fixture
