"""The fields of a `POST /predict` request, from a JSON body or a multipart form, as typed schemas.

Both bodies take the same fields:

| field | multipart | JSON |
|---|---|---|
| `image` | the image file | the file's bytes in base64 (a `data:` URL works too) |
| `image_path` | a path on the server (only where the server allows paths) | same |
| `expression` | text, repeat the field for several | a string |
| `expressions` | - | a list of strings |
| `masks` | `none` (default), `rle` or `png` | same |

Exactly one of `image` and `image_path`, at least one expression; any other field is refused by name, so a typo
does not pass silently. Every string must be text UTF-8 can carry (JSON's `\\ud800` escape makes half a surrogate
pair, which it cannot). Base64 may be wrapped over lines, as `base64` and `base64.encodebytes` write it.

Parsing the body (JSON's syntax, the form's parts) happens before: these schemas see plain values, a form as the
list of values each field was given. A violation is one line like every other schema's
(`the JSON body: expression 2: expected text, found 5`), and `RequestRefused` carries it with a stable `kind`
(`wrong_type`, `empty_expression`, ...) and the field at fault, which the server answers with.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, PlainValidator, with_config
from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.reading import InputFormat, Rule, SchemaError
from simrec_cli.schemas.types import expected, is_text
from simrec_cli.schemas.violations import Location, Violation, field_path

MASK_FORMATS = ("none", "rle", "png")
MAX_EXPRESSION_CHARACTERS = 1000
EXPRESSION_EXAMPLE = "'the red circle on the left'"
# The kinds the checks below raise; any other violation pydantic finds itself is a value of the wrong type.
KINDS = frozenset(
    {"invalid_json", "invalid_text", "wrong_type", "unknown_field", "repeated_field", "bad_value", "bad_base64",
     "bad_path", "paths_not_allowed", "missing_image", "missing_expression", "conflicting_fields", "empty_expression",
     "expression_too_long", "too_many_expressions"}
)  # fmt: skip
_CLOSED = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart form: its name as the client gave it, and its bytes."""

    filename: str
    data: bytes
    shown_as = "a file"  # how a message names it where text was expected


class RequestRefused(Exception):
    """A request body that breaks its schema: the stable `kind`, the `field` at fault (None for the body as a
    whole) and the one-line `detail`."""

    def __init__(self, kind: str, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.field = field
        self.detail = detail


# ---------------------------------------------------------------------------------------------- field checks


def _text(value: object, wanted: str) -> str:
    if not isinstance(value, str):
        raise expected(wanted, "wrong_type")
    if not is_text(value):
        raise expected("UTF-8 text (a lone surrogate escape such as \\ud800 is not)", "invalid_text")
    return value


def _expression(value: object) -> str:
    text = _text(value, "text").strip()
    if not text:
        raise expected(f"an expression describing the object, e.g. {EXPRESSION_EXAMPLE}", "empty_expression")
    if len(text) > MAX_EXPRESSION_CHARACTERS:
        raise expected(f"at most {MAX_EXPRESSION_CHARACTERS:,} characters", "expression_too_long")
    return text


def _image_path(allow_paths: bool) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not allow_paths:
            raise expected(
                "an uploaded image: this server reads no files by path (start it with --allow-paths to permit)",
                "paths_not_allowed",
            )
        path = _text(value, "a path on the server (text)")
        if not path.strip():
            raise expected("a path on the server (non-empty text)", "wrong_type")
        if "\x00" in path:
            raise expected("a path without NUL characters, which no file name holds", "bad_path")
        return path

    return check


def _base64_image(value: object) -> bytes:
    text = _text(value, "the image file in base64 (text)")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:  # line breaks (and other white space) are how many encoders wrap base64; the letters are what count
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise expected(f"the image file in base64 ({exc}); encode it with `base64 -w0 FILE`", "bad_base64") from None


def _file(value: object) -> UploadedFile:
    if not isinstance(value, UploadedFile):
        raise expected("the image file (a file part), not text", "wrong_type")
    if not is_text(value.filename):
        raise expected("a file name in UTF-8 text (a lone surrogate escape such as \\ud800 is not)", "invalid_text")
    return value


def _text_part(check: Callable[[object], Any]) -> Callable[[object], Any]:
    """`check` for a form field that takes text: a file part there is the wrong type."""

    def text_only(value: object) -> Any:
        if isinstance(value, UploadedFile):
            raise expected("text, not a file part", "wrong_type")
        return check(value)

    return text_only


def _mask_format(value: object) -> str:
    if not isinstance(value, str) or value not in MASK_FORMATS:
        raise expected(" or ".join(repr(name) for name in MASK_FORMATS), "bad_value")
    return value


def _expression_list(max_expressions: int) -> Callable[[object], object]:
    """A list of 1 to `max_expressions` items (each then checked as an expression)."""

    def check(value: object) -> object:
        if not isinstance(value, list):
            raise expected("a list of expressions (text)", "wrong_type")
        if not value:
            raise expected(f"at least one expression, e.g. {EXPRESSION_EXAMPLE}", "missing_expression")
        if len(value) > max_expressions:
            raise expected(f"at most {max_expressions:,} expressions (this server's limit)", "too_many_expressions")
        return value

    return check


def _once(value: object) -> object:
    """A form field that takes one value: the value, given once."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    count = len(value) if isinstance(value, list) else 0
    raise expected(f"the field once (it is given {count:,} times)", "repeated_field")


def _named_fields(kind_if_not_fields: str) -> Callable[[object], object]:
    """The body as a whole: a mapping whose field names are text."""

    def check(value: object) -> object:
        if not isinstance(value, Mapping):
            raise expected('a JSON object of fields, e.g. {"image": ..., "expression": ...}', kind_if_not_fields)
        if not all(isinstance(name, str) and is_text(name) for name in value):
            raise expected("field names in UTF-8 text (a lone surrogate escape such as \\ud800 is not)",
                           "invalid_text")  # fmt: skip
        return value

    return check


@dataclass(frozen=True)
class _Given:
    """What a request gives of two fields of which it needs one, as a message says it."""

    shown_as: str


NEITHER, NOTHING, BOTH = _Given("neither"), _Given("nothing"), _Given("both")


def _exactly_one(names: tuple[str, ...], kind_if_none: str, wanted: str) -> Rule:
    """A rule: a request gives exactly one of the fields `names`; the violation is located at the field to add (the
    first) or to drop (the last)."""

    def check(request: Mapping[str, Any]) -> Violation | None:
        given = [name for name in names if name in request]
        if len(given) == 1:
            return None
        if not given:
            return Violation(names[:1], wanted, NEITHER if len(names) > 1 else NOTHING, kind_if_none)
        return Violation(names[-1:], wanted, BOTH, "conflicting_fields")

    return check


ONE_IMAGE = _exactly_one(("image", "image_path"), "missing_image", "either 'image' or 'image_path', one of them")
ONE_EXPRESSION_FIELD = _exactly_one(
    ("expression", "expressions"), "missing_expression", "either 'expression' or 'expressions', one of them"
)
AN_EXPRESSION = _exactly_one(("expression",), "missing_expression", f"an expression, e.g. {EXPRESSION_EXAMPLE}")
Expression = Annotated[str, PlainValidator(_expression)]
MaskName = Annotated[str, PlainValidator(_mask_format)]


# --------------------------------------------------------------------------------------------------- formats


def json_request(max_expressions: int, allow_paths: bool) -> InputFormat[dict[str, Any]]:
    """The schema of a JSON body, for a server answering at most `max_expressions` per request and reading files
    by path only if `allow_paths`."""
    fields = {
        "image": NotRequired[Annotated[bytes, PlainValidator(_base64_image)]],
        "image_path": NotRequired[Annotated[str, PlainValidator(_image_path(allow_paths))]],
        "expression": NotRequired[Expression],
        "expressions": NotRequired[Annotated[list[Expression], BeforeValidator(_expression_list(max_expressions))]],
        "masks": NotRequired[MaskName],
    }
    return _request_format("the JSON body", fields, "invalid_json", ONE_EXPRESSION_FIELD)


def form_request(max_expressions: int, allow_paths: bool) -> InputFormat[dict[str, Any]]:
    """The schema of a multipart (or URL-encoded) form, each field given as the list of its values; a field taking
    one value comes out as that value, so the result has the shape of a JSON body's."""
    fields = {
        "image": NotRequired[Annotated[UploadedFile, PlainValidator(_file), BeforeValidator(_once)]],
        "image_path": NotRequired[
            Annotated[str, PlainValidator(_text_part(_image_path(allow_paths))), BeforeValidator(_once)]
        ],
        "expression": NotRequired[
            Annotated[
                list[Annotated[str, PlainValidator(_text_part(_expression))]],
                BeforeValidator(_expression_list(max_expressions)),
            ]
        ],
        "masks": NotRequired[Annotated[str, PlainValidator(_text_part(_mask_format)), BeforeValidator(_once)]],
    }
    return _request_format("the form", fields, "wrong_type", AN_EXPRESSION)


def _request_format(
    name: str, fields: dict[str, Any], kind_if_not_fields: str, expressions: Rule
) -> InputFormat[dict[str, Any]]:
    """A body of `fields` and no others, giving one image and its expressions as `expressions` says."""
    closed = with_config(_CLOSED)(TypedDict(name.title().replace(" ", ""), fields))  # type: ignore[operator]
    return InputFormat(
        name=name,
        schema=Annotated[closed, BeforeValidator(_named_fields(kind_if_not_fields))],
        fix=f"the fields are {', '.join(fields)}",
        locate=locate_request_field,
        rules=(ONE_IMAGE, expressions),
    )


def locate_request_field(data: Any, location: Location) -> tuple[str, str]:
    """('expressions', 1) -> ('expression 2', ''); ('masks',) -> ('', 'masks')."""
    if len(location) >= 2 and location[0] in ("expression", "expressions") and isinstance(location[1], int):
        return f"expression {location[1] + 1}", field_path(location[2:])
    return "", field_path(location)


# ------------------------------------------------------------------------------------------------- checking


def checked_request(request_format: InputFormat[dict[str, Any]], fields: Any) -> dict[str, Any]:
    """`fields` validated by `request_format`, or RequestRefused naming the kind, the field and what is wrong."""
    try:
        return request_format.check(fields, request_format.name)
    except SchemaError as error:
        violation = error.violation
        kind = violation.kind if violation.kind in KINDS else _pydantic_kind(violation.kind)
        # The message names the field; an unknown one also gets the names of the known ones.
        detail = str(error) if kind == "unknown_field" else error.message
        raise RequestRefused(kind, request_field(violation.location), detail) from None


def _pydantic_kind(pydantic_type: str) -> str:
    return "unknown_field" if pydantic_type == "extra_forbidden" else "wrong_type"


def request_field(location: Location) -> str | None:
    """The field a violation is in: an item of `expressions` is an `expression`; None for the body as a whole."""
    if not location:
        return None
    if location[0] == "expressions" and len(location) > 1:
        return "expression"
    return str(location[0])
