"""SimREC's annotation JSON (`{split: [entry]}`): checking its schema and counting what a split holds.

An entry is `{iid, bbox [x, y, w, h] in original pixels, cat_id, refs [sentences], mask_id}`; merge entries add
`data_source`, vg entries may carry `url`. Training splits hold one entry per object, evaluation splits one
entry per sentence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from simrec_cli.data.files import read_json
from simrec_cli.errors import SimrecError, quoted

Annotations = dict[str, list[dict]]

# Beyond any real image (JPEG stops at 65,535 px a side), yet far from float overflow in areas and IoUs.
LARGEST_COORDINATE = 10_000_000


@dataclass(frozen=True)
class SplitCounts:
    """What one split holds, and (for the well-known splits) how many expressions it should hold."""

    images: int
    objects: int
    expressions: int
    expected_expressions: int | None = None

    @property
    def as_expected(self) -> bool:
        return self.expected_expressions is None or self.expected_expressions == self.expressions

    def to_dict(self) -> dict:
        return asdict(self)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def box_problem(bbox: object, width: float | None = None, height: float | None = None) -> str | None:
    """What is wrong with an `[x, y, w, h]` box, or None; with the image size, also whether it lies inside.

    A box must be 4 finite numbers with a positive width and height, none beyond LARGEST_COORDINATE pixels,
    and (given the image size) lie in the image within a pixel (COCO boxes are floats that may overhang by
    rounding).
    """
    if not isinstance(bbox, list | tuple) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return f"bbox {quoted(bbox)} is not [x, y, w, h]"
    x, y, w, h = bbox
    if not all(math.isfinite(v) for v in bbox):
        return f"bbox {quoted(bbox)} holds a non-finite number"
    if w <= 0 or h <= 0:
        return f"bbox {quoted(bbox)} has a non-positive width or height"
    if any(abs(v) > LARGEST_COORDINATE for v in bbox):
        return f"bbox {quoted(bbox)} reaches beyond any image ({LARGEST_COORDINATE:,} px)"
    if width is not None and height is not None and (x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1):
        return f"bbox {quoted(bbox)} lies outside its {width:g}x{height:g} image"
    return None


NUMBERED_IMAGES = ("refcoco", "refcoco+", "refcocog", "synthetic")  # image files named by the id as a number


def _image_id_problem(iid: object, dataset: str) -> str | None:
    """What is wrong with an entry's image id: a number (0 or more), or for some datasets a file name."""
    number = isinstance(iid, int) and not isinstance(iid, bool) and iid >= 0
    if number or (isinstance(iid, str) and iid.isdigit()):
        return None
    if isinstance(iid, str) and iid.strip() and dataset not in NUMBERED_IMAGES:
        return None
    return f"iid {quoted(iid)}, not an image id ({'a number' if dataset in NUMBERED_IMAGES else 'a number or a name'})"


def _entry_problem(entry: object, dataset: str) -> str | None:
    """What is wrong with one entry, or None."""
    if not isinstance(entry, dict):
        return "is not an object"
    missing = [key for key in ("iid", "bbox", "refs") if key not in entry]
    if dataset == "merge" and "data_source" not in entry:
        missing.append("data_source")
    if missing:
        return f"lacks {', '.join(missing)}"
    problem = _image_id_problem(entry["iid"], dataset) or box_problem(entry["bbox"])
    if problem:
        return f"has {problem}"
    refs = entry["refs"]
    if not (isinstance(refs, list) and refs and all(isinstance(sentence, str) for sentence in refs)):
        return "has no list of sentences in refs"
    return None


def validate_annotations(data: object, path: Path, dataset: str) -> Annotations:
    """Check every entry; the first bad one is named by split and position."""
    if not isinstance(data, dict) or not all(isinstance(entries, list) for entries in data.values()):
        raise SimrecError(f"{path} is not a {{split: [entry, ...]}} annotation file", "re-run prepare-data")
    for split, entries in data.items():
        for position, entry in enumerate(entries):
            problem = _entry_problem(entry, dataset)
            if problem:
                raise SimrecError(f"{path}: entry {position} of split '{split}' {problem}", "fix or re-create the file")
    return data


def load_annotations(path: Path, dataset: str) -> Annotations:
    """Read and validate an annotation JSON, naming the prepare-data command when it is missing."""
    if not path.is_file():
        raise SimrecError(
            f"annotation file {path} does not exist",
            f"run `simrec prepare-data --dataset {dataset} --data-root {path.parent.parent}` first",
        )
    return validate_annotations(read_json(path, "annotation"), path, dataset)


def image_key(entry: dict) -> tuple:
    """What identifies an image across sources (merge mixes COCO, Flickr, VG ids)."""
    return entry.get("data_source", ""), entry["iid"]


def count_split(entries: list[dict], expected: int | None = None) -> SplitCounts:
    """Images, objects and expressions of a split (objects by mask_id, else by image and box)."""
    objects = {(image_key(e), e["mask_id"]) if "mask_id" in e else (image_key(e), tuple(e["bbox"])) for e in entries}
    return SplitCounts(
        images=len({image_key(entry) for entry in entries}),
        objects=len(objects),
        expressions=sum(len(entry["refs"]) for entry in entries),
        expected_expressions=expected,
    )
