"""Read what a `POST /predict` asks for, from a multipart form or a JSON body, through the request schemas.

Here the body is parsed: the content type picks the parser, JSON's syntax is checked (a number too long for Python
to read and nesting too deep for its parser are syntax problems too), the form's parts are read, with each file
part's bytes. What the fields must hold is the schemas' business (simrec_cli/schemas/requests.py): a violation
becomes a 4xx whose `error` is the violation's stable kind, whose `field` is the field at fault and whose `detail`
is its one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from simrec_cli.errors import quoted
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.requests import RequestRefused, UploadedFile, checked_request, form_request, json_request
from simrec_cli.serve.problems import RequestProblem

UPLOAD_NAME = "upload"  # the `image` of the answers for a base64 image, which has no file name
MAX_NUMBER_DIGITS = 100  # no field takes a number; a longer integer costs quadratic time to convert
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# The statuses of the violations that are not 422: a body that is not what its content type says, or text that is
# not text, is malformed (400); a path where paths are not allowed is forbidden (403).
STATUS = {"invalid_json": 400, "invalid_text": 400, "bad_base64": 400, "paths_not_allowed": 403}


@dataclass(frozen=True)
class PredictInput:
    """One checked request: the image (bytes or a server path), its name, the expressions, the mask format."""

    name: str
    expressions: tuple[str, ...]
    mask_format: str = "none"
    data: bytes | None = None
    path: Path | None = None


class RequestReader:
    """Reads the bodies of one server's requests: its schemas know its limit on expressions and whether it reads
    files by path."""

    def __init__(self, max_expressions: int, allow_paths: bool) -> None:
        self.json_format = json_request(max_expressions, allow_paths)
        self.form_format = form_request(max_expressions, allow_paths)

    async def read(self, request: Request) -> PredictInput:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in FORM_TYPES:
            return _checked(self.form_format, await _form_fields(request))
        if content_type == "application/json" or content_type.endswith("+json"):
            return _checked(self.json_format, await _json_document(request))
        raise RequestProblem(
            415,
            "unsupported_media_type",
            f"the body is {quoted(content_type) if content_type else 'untyped'}; send multipart/form-data (an image "
            "file and expression fields) or application/json (a base64 image and expressions)",
        )


def _checked(request_format: InputFormat[dict[str, Any]], body: Any) -> PredictInput:
    try:
        fields = checked_request(request_format, body)
    except RequestRefused as refused:
        raise RequestProblem(STATUS.get(refused.kind, 422), refused.kind, refused.detail, refused.field) from None
    given = fields.get("expressions", fields.get("expression"))
    expressions = (given,) if isinstance(given, str) else tuple(given)  # a JSON `expression` is one string
    mask_format = fields.get("masks", "none")
    image = fields.get("image")
    if isinstance(image, UploadedFile):
        return PredictInput(image.filename or UPLOAD_NAME, expressions, mask_format, data=image.data)
    if isinstance(image, bytes):
        return PredictInput(UPLOAD_NAME, expressions, mask_format, data=image)
    return PredictInput(fields["image_path"], expressions, mask_format, path=Path(fields["image_path"]))


async def _form_fields(request: Request) -> dict[str, list[object]]:
    """Each field of the form and the values it was given: text, or an UploadedFile with the part's bytes."""
    try:
        form = await request.form(max_files=2, max_fields=1000)
    except HTTPException as exc:
        raise RequestProblem(400, "bad_form", f"the form body cannot be read: {exc.detail}") from exc
    except ClientDisconnect as exc:
        raise _disconnected() from exc
    return {name: [await _plain(value) for value in form.getlist(name)] for name in form}


async def _plain(value: str | UploadFile) -> object:
    if isinstance(value, UploadFile):
        return UploadedFile(value.filename or "", await value.read())
    return value


async def _json_document(request: Request) -> Any:
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        raise _disconnected() from exc
    try:
        return json.loads(raw, parse_int=_short_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # Python's parser recurses once per nesting level
        raise RequestProblem(400, "invalid_json", "the body's JSON is nested too deeply to be a request") from exc


def _short_int(digits: str) -> int:
    """A JSON integer, refused past MAX_NUMBER_DIGITS (Python itself refuses to convert more than 4,300 digits)."""
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise RequestProblem(
            400, "invalid_json", f"the body holds a number of {len(digits):,} digits; no field takes a number"
        )
    return int(digits)


def _disconnected() -> RequestProblem:
    """The client hung up before its body arrived: nobody reads the answer, but the log stays quiet."""
    return RequestProblem(400, "client_disconnected", "the client closed the connection before sending its body")
