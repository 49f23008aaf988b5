"""SimREC's annotation JSON (`{split: [entry]}`, its schema in `schemas/annotations.py`): reading it, and
counting what a split holds. Training splits hold one entry per object, evaluation splits one entry per sentence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from simrec_cli.errors import quoted
from simrec_cli.schemas.annotations import annotations_format
from simrec_cli.schemas.files import require_path
from simrec_cli.schemas.types import box_rule

Annotations = dict[str, list[dict]]


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


def box_problem(bbox: object, width: float | None = None, height: float | None = None) -> str | None:
    """What is wrong with an `[x, y, w, h]` box (the box and what it should be), or None for a good one."""
    wanted = box_rule(bbox, width, height)
    return None if wanted is None else f"bbox {quoted(bbox)}: expected {wanted}"


# The downloaded file prepare-data reads for these datasets, as its command line names it.
DOWNLOADED_INPUTS = {"flickr": "--flickr flickr.json", "vg": "--vg vg.json"}


def prepare_data_command(dataset: str, data_root: Path) -> str:
    """The prepare-data command that writes `dataset`'s files under `data_root`."""
    inputs = f" {DOWNLOADED_INPUTS[dataset]}" if dataset in DOWNLOADED_INPUTS else ""
    return f"simrec prepare-data --dataset {dataset} --data-root {data_root}{inputs}"


def load_annotations(path: Path, dataset: str, missing_hint: str | None = None) -> Annotations:
    """Read an annotation JSON through its schema. A missing file names the prepare-data command that writes it,
    or, for an input of prepare-data itself, `missing_hint` (where to get the file)."""
    missing = missing_hint or f"run `{prepare_data_command(dataset, path.parent.parent)}` first"
    require_path(path, "annotation file", "check the path", missing=missing)
    return annotations_format(dataset).read(path)


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
