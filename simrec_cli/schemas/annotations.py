"""SimREC's annotation JSON (`{split: [entry]}`): prepared anns, and the flickr/vg/merge files prepare-data reads.

An entry is `{iid, bbox [x, y, w, h] in original pixels, cat_id, refs [sentences], mask_id}`; merge entries add
`data_source` (the image folder), vg and merge entries may carry `url` (the image file under that folder). Fields
beyond these are kept as they are.
"""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath
from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from simrec_cli.errors import quoted
from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.formats import parse_json
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import OPEN, Box, Text, Whole, named_image_id, non_empty, numbered_image_id, rule
from simrec_cli.schemas.violations import Location, entry_name, field_path

NUMBERED_IMAGES = ("refcoco", "refcoco+", "refcocog", "synthetic")  # image files named by the id as a number
ANNOTATIONS_MAX_BYTES = 4096 * MEBIBYTE  # merged pre-training sets are hundreds of MB


def _object_id(value: object) -> str | None:
    return None if isinstance(value, int | str) and not isinstance(value, bool) else "a number or text"


def _relative_file(value: object) -> str | None:
    """A file name under the dataset's image folder: relative, no `..`, no NUL."""
    if isinstance(value, str) and value.strip() and "\0" not in value:
        parts = PurePosixPath(value).parts
        if not PurePosixPath(value).is_absolute() and ".." not in parts:
            return None
    return "a file name relative to the image folder (no leading / and no ..)"


def _folder_name(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and "/" not in value and value not in (".", "..") and "\0" not in value:
        return None
    return "the name of an image folder (coco, refclef, flickr, vg)"


class NumberedEntry(TypedDict):
    """An entry of a dataset whose images are named by number (RefCOCO/+/g, synthetic)."""

    __pydantic_config__ = OPEN  # type: ignore[misc]
    iid: Annotated[object, rule(numbered_image_id)]
    bbox: Box
    refs: Annotated[list[Text], non_empty("sentences")]
    cat_id: NotRequired[Whole]
    mask_id: NotRequired[Annotated[object, rule(_object_id)]]
    url: NotRequired[Annotated[object, rule(_relative_file)]]


class NamedEntry(NumberedEntry):
    """An entry of a dataset whose images may be named by text (referit, flickr, vg)."""

    iid: Annotated[object, rule(named_image_id)]  # type: ignore[misc]


class MergeEntry(NamedEntry):
    """An entry of the merged pre-training set: it names the image folder it comes from."""

    data_source: Annotated[object, rule(_folder_name)]


def entry_schema(dataset: str) -> Any:
    """The entry schema of `dataset`'s annotation file."""
    if dataset == "merge":
        return MergeEntry
    return NumberedEntry if dataset in NUMBERED_IMAGES else NamedEntry


def locate_entry(data: Any, location: Location) -> tuple[str, str]:
    """('test', 3, 'bbox') -> ("entry #3 of split 'test'", 'bbox')."""
    if len(location) >= 2 and isinstance(location[1], int):
        split, index = location[0], location[1]
        entries = data.get(split) if isinstance(data, dict) else None
        item = entries[index] if isinstance(entries, list) and index < len(entries) else None
        entry = f"{entry_name('entry', index, item, ('mask_id',))} of split {quoted(split, 40)}"
        return entry, field_path(location[2:])
    if len(location) == 1:
        return f"split {quoted(location[0], 40)}", ""
    return "", field_path(location)


@cache
def annotations_format(dataset: str) -> InputFormat[dict[str, list[dict]]]:
    """The format of `dataset`'s annotation file: `{split: [entry, ...]}` with `entry_schema(dataset)` entries."""
    return InputFormat(
        name="annotation file",
        schema=dict[Text, list[entry_schema(dataset)]],  # type: ignore[misc]
        parse=parse_json,
        fix="fix the file, or re-create it with simrec prepare-data",
        locate=locate_entry,
        max_bytes=ANNOTATIONS_MAX_BYTES,
    )
