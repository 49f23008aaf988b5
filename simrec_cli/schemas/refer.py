"""The REFER files: `instances.json` (COCO-style images, annotations, categories) and `refs(<split_by>).p`.

Only the fields prepare-data uses are required; the others (coco_url, area, raw, tokens, ...) pass as they are.
Boxes are not judged here: prepare-data counts the refs with a bad box and can leave them out (--skip-invalid).
Segmentations are judged by their shape (polygons or an RLE); their numbers when masks are made.
"""

from __future__ import annotations

import math
from typing import Annotated

from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.formats import parse_json, parse_plain_pickle
from simrec_cli.schemas.prepared import MAX_MASK_PIXELS
from simrec_cli.schemas.reading import InputFormat, unique
from simrec_cli.schemas.types import OPEN, Positive, Text, Whole, is_number, non_empty, rule
from simrec_cli.schemas.violations import records

REFER_SOURCE_HINT = (
    "the REFER annotations (refcoco.zip, refcoco+.zip, refcocog.zip, refclef.zip) come from "
    "github.com/lichengunc/refer; the original links are dead, use a web.archive.org copy"
)
REFER_MAX_BYTES = 1024 * MEBIBYTE


def segmentation_rule(segmentation: object) -> str | None:
    """COCO's two forms: polygons (lists of x, y numbers) or an RLE ({size: [h, w], counts}).

    An uncompressed RLE's counts are run lengths over the whole image: whole numbers, none negative, adding up to
    h * w (pycocotools takes anything else into an overflow or a mask of the wrong image). The image is at most
    MAX_MASK_PIXELS, and a polygon's numbers must be finite as floats (an integer of 400 digits is not).
    """
    if isinstance(segmentation, list) and all(_is_polygon(polygon) for polygon in segmentation):
        return None
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if (isinstance(size, list) and len(size) == 2 and all(_is_whole(side) and side > 0 for side in size)
                and size[0] * size[1] <= MAX_MASK_PIXELS):  # fmt: skip
            if isinstance(counts, str):
                return None
            if (isinstance(counts, list) and all(_is_whole(run) and run >= 0 for run in counts)
                    and sum(counts) == size[0] * size[1]):  # fmt: skip
                return None
    return (
        f"polygons (lists of finite x, y numbers) or an RLE: size [h, w] (whole, h * w at most {MAX_MASK_PIXELS:,}) "
        "and counts (COCO's string, or whole run lengths of at least 0 that add up to h * w)"
    )


def _is_polygon(polygon: object) -> bool:
    return isinstance(polygon, list) and all(is_number(value) and _is_finite(value) for value in polygon)


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ReferImage(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    id: Whole
    width: Positive
    height: Positive


class ReferAnnotation(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    id: Whole
    image_id: Whole
    category_id: Whole
    bbox: object  # judged per ref by prepare-data (see the module's docstring)
    segmentation: NotRequired[Annotated[object, rule(segmentation_rule)]]


class ReferCategory(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    id: Whole
    name: NotRequired[Text]


class ReferInstances(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    images: list[ReferImage]
    annotations: list[ReferAnnotation]
    categories: list[ReferCategory]


class ReferSentence(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    sent: Text


class ReferRef(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    ref_id: Whole
    ann_id: Whole
    image_id: Whole
    split: Text
    sentences: Annotated[list[ReferSentence], non_empty("sentences")]


INSTANCES = InputFormat[ReferInstances](
    name="REFER instances file",
    schema=ReferInstances,
    parse=parse_json,
    fix=REFER_SOURCE_HINT,
    locate=records({"images": "image", "annotations": "annotation", "categories": "category"}),
    rules=(
        unique("images", "id", "image"),
        unique("annotations", "id", "annotation"),
        unique("categories", "id", "category"),
    ),
    max_bytes=REFER_MAX_BYTES,
)

REFS = InputFormat[list[ReferRef]](
    name="REFER refs file",
    schema=Annotated[list[ReferRef], non_empty("refs")],
    parse=parse_plain_pickle,
    fix=REFER_SOURCE_HINT,
    locate=records({"": "ref"}, ("ref_id",)),
    rules=(unique("", "ref_id", "ref"),),
    max_bytes=REFER_MAX_BYTES,
)
