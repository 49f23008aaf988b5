"""Read what a `POST /predict` asks for, from a multipart form or a JSON body, refusing anything malformed.

Both forms take the same fields:

| field | multipart | JSON |
|---|---|---|
| `image` | the image file | the file's bytes in base64 (a `data:` URL works too) |
| `image_path` | a path on the server (only with `--allow-paths`) | same |
| `expression` | text, repeat the field for several | a string |
| `expressions` | - | a list of strings |
| `masks` | `none` (default), `rle` or `png` | same |

Exactly one of `image` and `image_path`, at least one expression. Any other field is refused by name, so a
typo does not pass silently. Every string must be text: a lone surrogate escape (`\\ud800`) is refused before
anything quotes it, and so is a JSON integer too long for Python to read (no field takes a number). Base64 may be
wrapped over lines, as `base64` and `base64.encodebytes` write it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from simrec_cli.errors import LIST_LIMIT, quoted
from simrec_cli.serve.options import MASK_FORMATS
from simrec_cli.serve.problems import RequestProblem

MULTIPART_FIELDS = ("image", "image_path", "expression", "masks")
JSON_FIELDS = ("image", "image_path", "expression", "expressions", "masks")
UPLOAD_NAME = "upload"  # the `image` of the answers for a base64 image, which has no file name
MAX_EXPRESSION_CHARACTERS = 1000
MAX_NUMBER_DIGITS = 100  # no field takes a number; a longer integer costs quadratic time to convert


@dataclass(frozen=True)
class PredictInput:
    """One checked request: the image (bytes or a server path), its name, the expressions, the mask format."""

    name: str
    expressions: tuple[str, ...]
    mask_format: str = "none"
    data: bytes | None = None
    path: Path | None = None


async def read_predict_input(request: Request, max_expressions: int, allow_paths: bool) -> PredictInput:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields = await _multipart_fields(request)
    elif content_type == "application/json" or content_type.endswith("+json"):
        fields = await _json_fields(request)
    else:
        raise RequestProblem(
            415,
            "unsupported_media_type",
            f"the body is {quoted(content_type) if content_type else 'untyped'}; send multipart/form-data (an image "
            "file and expression fields) or application/json (a base64 image and expressions)",
        )
    return _checked(fields, max_expressions, allow_paths)


async def _multipart_fields(request: Request) -> dict[str, Any]:
    try:
        form = await request.form(max_files=2, max_fields=1000)
    except HTTPException as exc:
        raise RequestProblem(400, "bad_form", f"the form body cannot be read: {exc.detail}") from exc
    except ClientDisconnect as exc:
        raise _disconnected() from exc
    texts = {name: [value.filename if isinstance(value, UploadFile) else value for value in form.getlist(name)]
             for name in form}  # fmt: skip
    _refuse_lone_surrogates(texts)
    unknown = sorted(set(form.keys()) - set(MULTIPART_FIELDS))
    if unknown:
        raise _unknown_fields(unknown, MULTIPART_FIELDS)
    fields: dict[str, Any] = {"expressions": list(form.getlist("expression"))}
    for name in ("image", "image_path", "masks"):
        values = form.getlist(name)
        if len(values) > 1:
            raise RequestProblem(422, "repeated_field", f"the field {name!r} is given {len(values)} times", name)
        if values:
            fields[name] = values[0]
    image = fields.get("image")
    if image is not None:
        if not isinstance(image, UploadFile):
            raise RequestProblem(422, "wrong_type", "the field 'image' must be a file, not text", "image")
        fields["image"] = await image.read()
        fields["name"] = image.filename or UPLOAD_NAME
    if any(isinstance(value, UploadFile) for value in fields["expressions"]):
        raise RequestProblem(422, "wrong_type", "the field 'expression' must be text, not a file", "expression")
    return fields


async def _json_fields(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        raise _disconnected() from exc
    try:
        body = json.loads(raw, parse_int=_short_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # Python's parser recurses once per nesting level
        raise RequestProblem(400, "invalid_json", "the body's JSON is nested too deeply to be a request") from exc
    if not isinstance(body, dict):
        raise RequestProblem(400, "invalid_json", f"the body must be a JSON object, not {type(body).__name__}")
    _refuse_lone_surrogates(body)
    unknown = sorted(set(body) - set(JSON_FIELDS))
    if unknown:
        raise _unknown_fields(unknown, JSON_FIELDS)
    if "expression" in body and "expressions" in body:
        raise RequestProblem(422, "conflicting_fields", "give 'expression' or 'expressions', not both", "expressions")
    fields: dict[str, Any] = {key: body[key] for key in ("image_path", "masks") if key in body}
    if "expressions" in body:
        if not isinstance(body["expressions"], list):
            raise RequestProblem(422, "wrong_type", "'expressions' must be a list of strings", "expressions")
        fields["expressions"] = body["expressions"]
    else:
        fields["expressions"] = [body["expression"]] if "expression" in body else []
    if "image" in body:
        fields["image"] = _base64_image(body["image"])
        fields["name"] = UPLOAD_NAME
    return fields


def _short_int(digits: str) -> int:
    """A JSON integer, refused past MAX_NUMBER_DIGITS (Python itself refuses to convert more than 4,300 digits)."""
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise RequestProblem(
            400, "invalid_json", f"the body holds a number of {len(digits):,} digits; no field takes a number"
        )
    return int(digits)


def _refuse_lone_surrogates(fields: dict[str, Any]) -> None:
    """Refuse a field name or a string anywhere in a field's value that is not text (JSON's `\\ud800` escape
    decodes to half a surrogate pair, which UTF-8 cannot encode, so it could never be answered or quoted)."""
    for name, value in fields.items():
        if not _is_text(name):
            raise RequestProblem(400, "invalid_text", f"the field name {quoted(name)} is not text; send UTF-8 text")
        if _holds_non_text(value):
            raise RequestProblem(
                400, "invalid_text", f"the field {name!r} holds a lone surrogate (like \\ud800); send UTF-8 text", name
            )


def _holds_non_text(value: object) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and not _is_text(item):
            return True
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
    return False


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _disconnected() -> RequestProblem:
    """The client hung up before its body arrived: nobody reads the answer, but the log stays quiet."""
    return RequestProblem(400, "client_disconnected", "the client closed the connection before sending its body")


def _base64_image(value: object) -> bytes:
    if not isinstance(value, str):
        raise RequestProblem(422, "wrong_type", "'image' must be the image file in base64 (a string)", "image")
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:  # line breaks (and other white space) are how many encoders wrap base64; the letters are what count
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestProblem(
            400, "bad_base64", f"'image' is not valid base64 ({exc}); encode the file with `base64 -w0 FILE`", "image"
        ) from exc


def _unknown_fields(unknown: list[str], known: tuple[str, ...]) -> RequestProblem:
    names = ", ".join(quoted(name) for name in unknown[:LIST_LIMIT])
    names += f" (+{len(unknown) - LIST_LIMIT:,} more)" if len(unknown) > LIST_LIMIT else ""
    return RequestProblem(422, "unknown_field", f"unknown field {names}; the fields are {', '.join(known)}", unknown[0])


def _checked(fields: dict[str, Any], max_expressions: int, allow_paths: bool) -> PredictInput:
    has_image, has_path = "image" in fields, "image_path" in fields
    if has_image == has_path:
        detail = "give either 'image' or 'image_path', not both" if has_image else "the field 'image' is missing"
        raise RequestProblem(422, "missing_image" if not has_image else "conflicting_fields", detail, "image")
    expressions = _checked_expressions(fields["expressions"], max_expressions)
    mask_format = fields.get("masks", "none")
    if mask_format not in MASK_FORMATS:
        raise RequestProblem(
            422, "bad_value", f"masks={quoted(mask_format)} is not one of {', '.join(MASK_FORMATS)}", "masks"
        )
    if has_image:
        return PredictInput(fields["name"], expressions, mask_format, data=fields["image"])
    if not allow_paths:
        raise RequestProblem(
            403,
            "paths_not_allowed",
            "this server does not read files by path; upload the image (start it with --allow-paths to permit)",
            "image_path",
        )
    path = fields["image_path"]
    if not isinstance(path, str) or not path.strip():
        raise RequestProblem(422, "wrong_type", "'image_path' must be a non-empty string", "image_path")
    if "\x00" in path:
        raise RequestProblem(
            422, "bad_path", f"'image_path' {quoted(path)} holds a NUL character, which no file name can", "image_path"
        )
    return PredictInput(path, expressions, mask_format, path=Path(path))


def _checked_expressions(values: list[object], max_expressions: int) -> tuple[str, ...]:
    if not values:
        raise RequestProblem(
            422, "missing_expression", "no expression given; add one, e.g. 'the red circle on the left'", "expression"
        )
    if len(values) > max_expressions:
        raise RequestProblem(
            422,
            "too_many_expressions",
            f"{len(values)} expressions in one request; this server answers at most {max_expressions}",
            "expression",
        )
    cleaned = []
    for number, value in enumerate(values, 1):
        if not isinstance(value, str):
            raise RequestProblem(422, "wrong_type", f"expression {number} must be a string", "expression")
        text = value.strip()
        if not text:
            raise RequestProblem(
                422,
                "empty_expression",
                f"expression {number} is empty; describe the object, e.g. 'the red circle on the left'",
                "expression",
            )
        if len(text) > MAX_EXPRESSION_CHARACTERS:
            raise RequestProblem(
                422,
                "expression_too_long",
                f"expression {number} has {len(text)} characters; at most {MAX_EXPRESSION_CHARACTERS}",
                "expression",
            )
        cleaned.append(text)
    return tuple(cleaned)
