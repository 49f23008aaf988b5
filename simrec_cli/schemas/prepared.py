"""The files prepare-data writes beside the annotations, read back by train, eval and the report: the
vocabulary, the objects of each image, the masks. Another tool (or a hand) may have written them, so they are
read through their schemas like any other input.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, Strict
from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.formats import parse_json
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import Positive, Text, Whole, rule
from simrec_cli.schemas.violations import records

VOCABULARY_FORMAT = "simrec-vocabulary-v1"
OBJECTS_FORMAT = "simrec-objects-v1"
MASKS_FORMAT = "simrec-rle-v1"
_RE_PREPARE = "re-create it with simrec prepare-data"

Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Digits = Annotated[str, Strict(), rule(lambda text: None if text.isdigit() else "a category number")]


class VocabularyFile(TypedDict):
    format: NotRequired[Literal[VOCABULARY_FORMAT]]
    words: list[Text]


def _bare_word_list(value: object) -> object:
    """A vocabulary file may also be a bare list of words (as earlier versions wrote it)."""
    return {"words": value} if isinstance(value, list) else value


VOCABULARY = InputFormat[VocabularyFile](
    name="vocabulary file",
    schema=Annotated[VocabularyFile, BeforeValidator(_bare_word_list)],
    parse=parse_json,
    fix=_RE_PREPARE,
    locate=records({"words": "word"}),
)

STORED_WORDS = InputFormat[list[str]](
    name="stored vocabulary",
    schema=list[Text],
    fix="the file is damaged; use another (a checkpoint or export as simrec wrote it)",
    locate=records({"": "word"}),
)  # the vocabulary a checkpoint or an exported model carries

WORD_LIST = InputFormat[list[str]](
    name="word list",
    schema=list[Text],
    parse=parse_json,
    fix="give a JSON list of words, one per row of the matrix",
    locate=records({"": "word"}),
    max_bytes=1024 * MEBIBYTE,
)

ObjectRow = tuple[Finite, Finite, Finite, Finite, Whole]  # x, y, w, h, category


class ObjectsFile(TypedDict):
    format: Literal[OBJECTS_FORMAT]
    categories: NotRequired[dict[Digits, Text]]
    images: dict[Text, list[ObjectRow]]


OBJECTS = InputFormat[ObjectsFile](
    name="objects file",
    schema=ObjectsFile,
    parse=parse_json,
    fix=f"delete it or {_RE_PREPARE}",
    locate=records({"images": "image"}),
    max_bytes=1024 * MEBIBYTE,
)


MAX_MASK_PIXELS = 1 << 28  # a mask is decoded into this many bytes; beyond any photo (PIL warns at 179 million)


def _size_rule(size: list[int]) -> str | None:
    return None if size[0] * size[1] <= MAX_MASK_PIXELS else f"a mask of at most {MAX_MASK_PIXELS:,} pixels"


class Rle(TypedDict):
    size: Annotated[list[Positive], Field(min_length=2, max_length=2), rule(_size_rule)]
    counts: Text  # compressed COCO RLE, as prepare-data writes it


class MasksFile(TypedDict):
    format: Literal[MASKS_FORMAT]
    masks: dict[Text, Rle]


MASKS = InputFormat[MasksFile](
    name="mask file",
    schema=MasksFile,
    parse=parse_json,
    fix="re-create it with simrec prepare-data --generate-mask",
    locate=records({"masks": "mask"}),
    max_bytes=4096 * MEBIBYTE,
)
