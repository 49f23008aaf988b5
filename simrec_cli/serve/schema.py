"""The shapes of the API's requests and answers, for the OpenAPI schema that `/docs` shows.

The routes build their JSON directly (the records come from `PredictionResult.to_json`); these models
describe it so clients can be generated from `/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from simrec_cli.schemas.requests import MASK_FORMATS, MAX_EXPRESSION_CHARACTERS
from simrec_cli.serve.auth import OPEN_PATHS

API_DESCRIPTION = (
    "Referring expression comprehension and segmentation: send an image and expressions such as "
    "'the man on the left'; each answer is the box (and mask) of the object described. The records have the "
    "keys of `simrec predict --json`. Requests arriving together share batched forward passes."
)


class PredictRecord(BaseModel):
    """The answer to one expression (the keys of `simrec predict --json`)."""

    image: str = Field(description="the uploaded file's name, 'upload' for a base64 image, or the server path")
    expression: str
    box: list[float] | None = Field(description="[x1, y1, x2, y2] in original image pixels, clipped to the image")
    score: float | None = Field(description="objectness of the chosen box, 0-1")
    mask: dict[str, Any] | str | None = Field(
        description="with masks=rle: COCO RLE {size: [h, w], counts}; with masks=png: a base64 PNG (255 = object)"
    )
    mask_area: int | None = Field(description="pixels in the mask (mask models)")
    oov_words: list[str] = Field(description="words not in the model's vocabulary (read as unknown)")
    width: int
    height: int
    picture: None = Field(description="always null here (simrec predict writes a picture file)")
    error: None = Field(description="always null here: a request that cannot be answered gets a 4xx")


class PredictResponse(BaseModel):
    results: list[PredictRecord]


class ErrorBody(BaseModel):
    """Every refusal: a stable code, a sentence saying what is wrong and how to fix it, the field at fault."""

    error: str = Field(examples=["not_an_image", "empty_expression", "queue_full"])
    detail: str
    field: str | None


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Info(BaseModel):
    model: str | None
    dataset: str | None
    vocabulary_size: int
    input_size: list[int]
    masks: bool
    device: str
    precision: str
    compiled_batch_sizes: list[int] = Field(description="batch sizes of the compiled forward (--compile); [] if eager")
    runtime: str = Field(description="the runtime that runs the model: torch eager or compiled, onnxruntime, openvino")
    runtime_reason: str = Field(description="why it runs there: as asked, or what --runtime auto measured")
    file: str
    version: str
    max_batch: int
    max_wait_ms: float
    queue_size: int
    timeout_s: float
    max_body_mb: float
    max_pixels: int
    max_expressions: int
    max_connections: int
    allow_paths: bool
    mask_formats: list[str]


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, **({"headers": headers} if headers else {})}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


def _openapi_error(response: dict[str, Any]) -> dict[str, Any]:
    """A response of `_error` as OpenAPI writes it (FastAPI converts `model` only for responses it is given)."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {"description": response["description"], "headers": response["headers"], "content": content}


UNAUTHORIZED = _error(
    "no API token, or a wrong one (only when the server was started with --api-key or SIMREC_API_KEY)",
    {"WWW-Authenticate": _header("Bearer (or Basic, the token as password)")},
)
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictResponse, "description": "one record per expression, in the order sent"},
    400: _error(
        "malformed body: invalid JSON (or a number too long to read), text that is not UTF-8, bad base64, "
        "unreadable multipart, or a client that hung up before its body arrived"
    ),
    403: _error("image_path given to a server started without --allow-paths"),
    408: _error("the body did not arrive within --timeout-s: the client's upload stalled"),
    413: _error("the body is larger than --max-body-mb"),
    415: _error("not an image, a 16-bit image, or a body that is neither multipart nor JSON"),
    422: _error(
        "a field is missing, unknown, repeated or of the wrong type; an empty expression; too many expressions; "
        "an image smaller than 8 pixels a side or with more pixels than --max-pixels; an image_path that does not "
        "name a readable regular file of at most --max-body-mb"
    ),
    503: _error(
        "too many requests in progress (--queue-size), or a connection beyond --max-connections; retry after the "
        "Retry-After header's seconds",
        {"Retry-After": _header("seconds until the queue or the connections have likely moved on")},
    ),
    504: _error("no answer within --timeout-s"),
}
# Any route but /health may answer it; given with its content, as a route of plain text (/metrics) would otherwise
# document the JSON body as text.
OVER_CAPACITY: dict[int | str, dict[str, Any]] = {
    503: _openapi_error(
        _error(
            "a connection beyond --max-connections; retry after the Retry-After header's seconds",
            {"Retry-After": _header("seconds until connections have likely closed")},
        )
    )
}
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Health, "description": "the model thread is running"},
    503: {"model": Health, "description": "the model thread has stopped: {status: down}"},
}
DEMO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "a JPEG image", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    **OVER_CAPACITY,
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **OVER_CAPACITY,
}

# An expression as the server takes it: a string with something besides white space, of at most 1,000 characters.
_EXPRESSION = {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION_CHARACTERS, "pattern": "\\S"}
_IMAGE_PATH = {"type": "string", "minLength": 1, "description": "a path on the server (only with --allow-paths)"}
_MASKS = {"type": "string", "enum": list(MASK_FORMATS), "default": "none"}
_ONE_IMAGE = {"oneOf": [{"required": ["image"]}, {"required": ["image_path"]}]}


def predict_request_body(max_expressions: int) -> dict[str, Any]:
    """The request body of POST /predict, with this server's limit on expressions."""
    expressions = {"type": "array", "items": _EXPRESSION, "minItems": 1, "maxItems": max_expressions}
    multipart = {
        "type": "object",
        "required": ["expression"],
        "properties": {
            "image": {"type": "string", "format": "binary", "description": "the image file"},
            "image_path": _IMAGE_PATH,
            "expression": {**expressions, "description": "repeat the field for several"},
            "masks": _MASKS,
        },
        "additionalProperties": False,
        **_ONE_IMAGE,
    }
    json_body = {
        "type": "object",
        "properties": {
            "image": {"type": "string", "format": "byte", "description": "the image file in base64 (or a data: URL)"},
            "image_path": _IMAGE_PATH,
            "expression": _EXPRESSION,
            "expressions": expressions,
            "masks": _MASKS,
        },
        "additionalProperties": False,
        "allOf": [_ONE_IMAGE, {"oneOf": [{"required": ["expression"]}, {"required": ["expressions"]}]}],
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": multipart},
                "application/json": {
                    "schema": json_body,
                    "example": {"image": "<base64 of photo.jpg>", "expressions": ["the man on the left"]},
                },
            },
        }
    }


def with_token(openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` (changed in place, idempotent) saying that every operation but /health needs the API token."""
    openapi.setdefault("components", {}).setdefault("securitySchemes", {}).update(
        {"token": {"type": "http", "scheme": "bearer"}, "password": {"type": "http", "scheme": "basic"}}
    )
    for path, operations in openapi["paths"].items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"token": []}, {"password": []}]
            operation["responses"].setdefault("401", _openapi_error(UNAUTHORIZED))
    return openapi
