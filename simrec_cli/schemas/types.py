"""Field types the schemas share: strict numbers and text, non-empty lists, boxes, image ids.

Every type is strict: `"5"` is not a number, `true` is not 1, `5.0` is not an id. A rule that pydantic cannot
say in words of its own raises `expected(...)`, whose text becomes the "expected ..." of the one-line message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

OPEN = ConfigDict(extra="allow")  # a record's other fields pass as they are (the formats are other tools' too)

Whole = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an int or a float (bool refused)
Text = Annotated[str, Strict()]
NonEmptyText = Annotated[str, Strict(), Field(min_length=1)]
Positive = Annotated[int, Strict(), Field(ge=1)]

# Beyond any real image (JPEG stops at 65,535 px a side), yet far from float overflow in areas and IoUs.
LARGEST_COORDINATE = 10_000_000


def expected(description: str, kind: str = "expected") -> PydanticCustomError:
    """The error a check raises: `description` is what the value should have been; `kind` is a stable code for the
    rule, for a reader that reports violations by kind (the server's JSON errors)."""
    return PydanticCustomError(kind, "expected {expected}", {"expected": description})


def is_text(value: str) -> bool:
    """Whether `value` is text UTF-8 can carry (JSON's `\\ud800` escape makes half a surrogate pair, which no output
    can print)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def rule(check: Callable[[Any], str | None]) -> AfterValidator:
    """A validator from a function that returns what the value should be when it is not (else None)."""

    def validate(value: Any) -> Any:
        wanted = check(value)
        if wanted is not None:
            raise expected(wanted)
        return value

    return AfterValidator(validate)


def non_empty(items: str) -> AfterValidator:
    """A list that must hold at least one of `items` ("sentences", "refs")."""
    return rule(lambda value: None if len(value) else f"at least one of the {items}")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def box_rule(bbox: object, width: float | None = None, height: float | None = None) -> str | None:
    """What an `[x, y, w, h]` box must be, when `bbox` is not that; None for a good box.

    A box is 4 finite numbers with a positive width and height, none beyond LARGEST_COORDINATE pixels, and
    (given the image size) it lies in the image within a pixel (COCO boxes are floats that may overhang by
    rounding).
    """
    if not isinstance(bbox, list | tuple) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return "[x, y, w, h]: 4 numbers"
    x, y, w, h = bbox
    if not all(isinstance(v, int) or math.isfinite(v) for v in bbox):  # an int is finite (and may not fit a float)
        return "4 finite numbers (no NaN or infinity)"
    if w <= 0 or h <= 0:
        return "a box with a positive width and height"
    if any(abs(v) > LARGEST_COORDINATE for v in bbox):
        return f"coordinates within any image ({LARGEST_COORDINATE:,} px)"
    if width is not None and height is not None and (x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1):
        return f"a box inside its {width:g}x{height:g} image"
    return None


Box = Annotated[object, rule(box_rule)]


def numbered_image_id(iid: object) -> str | None:
    """An image id of the datasets whose image files are named by a number: 0 or more, or such digits as text."""
    if (isinstance(iid, int) and not isinstance(iid, bool) and iid >= 0) or (isinstance(iid, str) and iid.isdigit()):
        return None
    return "an image id (a number, 0 or more)"


def named_image_id(iid: object) -> str | None:
    """An image id of the datasets whose images may also be named by text (flickr, vg, referit, merge)."""
    if numbered_image_id(iid) is None or (isinstance(iid, str) and iid.strip()):
        return None
    return "an image id (a number, 0 or more, or a file name)"


_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 4000  # Python turns at most 4,300 digits into a number; no count needs a fraction of that


def _whole_from_text(value: object) -> object:
    """Text of ASCII digits as its number: `2abc`, `-1`, `+3`, ` 4` or `²` are not numbers."""
    if isinstance(value, str):
        if _DIGITS.fullmatch(value) is None:
            raise expected("a whole number (digits only)")
        if len(value) > MAX_DIGITS:
            raise expected(f"a whole number of at most {MAX_DIGITS:,} digits")
        return int(value)
    return value


WholeText = Annotated[int, BeforeValidator(_whole_from_text), Strict()]  # digits in text, read as a number
