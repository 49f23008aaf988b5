"""Every object of each image (`anns/<dataset>.objects.json`), not only the referred ones.

The annotation JSON lists the objects that expressions refer to; RefCOCO's images hold about four times as
many. Error analysis needs them all: a prediction that lands on an unreferred person is still "the wrong
object", and "two other cups in the picture" counts cups nobody described. prepare-data writes the file from
REFER's instances.json (the synthetic generator knows its objects). Files prepared elsewhere (SimREC's own)
lack it; `image_objects` then falls back to the objects referred to anywhere in the annotation file and says
so through `ImageObjects.complete`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simrec_cli.data.annotations import Annotations
from simrec_cli.schemas.prepared import OBJECTS, OBJECTS_FORMAT


def object_image_key(entry: dict) -> str:
    """The key of an entry's image in an objects file (merge entries also name their source)."""
    source = entry.get("data_source")
    return f"{source}/{entry['iid']}" if source else str(entry["iid"])


@dataclass(frozen=True)
class ImageObjects:
    """Boxes ([K, 4] x, y, w, h in original pixels) and category indices ([K]) of the objects of each image.

    `complete` is True when every object of the image is known (objects.json), False when only the referred
    objects are (the fallback); `category_names` maps category indices to names where the data has them.
    """

    boxes: dict[str, np.ndarray]
    categories: dict[str, np.ndarray]
    category_names: dict[int, str]
    complete: bool

    def of(self, image_key: str) -> tuple[np.ndarray, np.ndarray]:
        """The boxes and categories of one image (empty arrays for an image without known objects)."""
        if image_key not in self.boxes:
            return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
        return self.boxes[image_key], self.categories[image_key]


def objects_json(objects: dict[str, list[list[float]]], category_names: dict[int, str]) -> dict:
    """The content of an objects file: `{image key: [[x, y, w, h, category], ...]}` and the category names."""
    return {
        "format": OBJECTS_FORMAT,
        "categories": {str(index): name for index, name in sorted(category_names.items())},
        "images": objects,
    }


def read_objects(path: Path) -> ImageObjects:
    """Load an objects file written from `objects_json`; a foreign or damaged file is one clear error."""
    data = OBJECTS.read(path)
    names = {int(index): name for index, name in data.get("categories", {}).items()}
    return _from_rows(data["images"], names, complete=True)


def referred_objects(anns: Annotations) -> ImageObjects:
    """The fallback: each image's distinct referred objects (by mask_id, else by box) over every split."""
    rows: dict[str, dict[object, list[float]]] = {}
    for entries in anns.values():
        for entry in entries:
            identity = entry.get("mask_id", tuple(entry["bbox"]))
            rows.setdefault(object_image_key(entry), {})[identity] = [*entry["bbox"], entry.get("cat_id", -1)]
    return _from_rows({key: list(found.values()) for key, found in rows.items()}, {}, complete=False)


def _from_rows(rows: dict[str, Iterable[list[float]]], names: dict[int, str], complete: bool) -> ImageObjects:
    boxes, categories = {}, {}
    for key, found in rows.items():
        array = np.asarray(list(found), dtype=np.float64).reshape(-1, 5)
        boxes[key] = array[:, :4]
        categories[key] = array[:, 4].astype(np.int64)
    return ImageObjects(boxes, categories, names, complete)


def image_objects(path: Path, anns: Annotations) -> ImageObjects:
    """Every object of each image from `path` when it exists, else the referred objects of `anns`."""
    return read_objects(path) if path.is_file() else referred_objects(anns)
