"""The REFER files: `instances.json` (COCO-style images, annotations, categories) and `refs(<split_by>).p`.

Only the fields prepare-data uses are required; the others (coco_url, area, raw, tokens, ...) pass as they are.
Boxes are not judged here: prepare-data counts the refs with a bad box and can leave them out (--skip-invalid).
Segmentations are judged by their shape (polygons or an RLE); their numbers when masks are made.
"""

from __future__ import annotations

from typing import Annotated

from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.formats import parse_json, parse_plain_pickle
from simrec_cli.schemas.reading import InputFormat, unique
from simrec_cli.schemas.types import OPEN, Positive, Text, Whole, is_number, non_empty, rule
from simrec_cli.schemas.violations import records

REFER_SOURCE_HINT = (
    "the REFER annotations (refcoco.zip, refcoco+.zip, refcocog.zip, refclef.zip) come from "
    "github.com/lichengunc/refer; the original links are dead, use a web.archive.org copy"
)
REFER_MAX_BYTES = 1024 * MEBIBYTE


def segmentation_rule(segmentation: object) -> str | None:
    """COCO's two forms: polygons (a list of lists of x, y numbers) or an RLE ({size: [h, w], counts})."""
    if isinstance(segmentation, list) and all(isinstance(polygon, list) for polygon in segmentation):
        return None
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if (isinstance(size, list) and len(size) == 2 and all(is_number(side) for side in size)
                and isinstance(counts, str | list)):  # fmt: skip
            return None
    return "polygons (a list of lists of numbers) or an RLE mapping with size [h, w] and counts"


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
