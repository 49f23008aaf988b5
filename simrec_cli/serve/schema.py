"""The shapes of the API's requests and answers, for the OpenAPI schema that `/docs` shows.

The routes build their JSON directly (the records come from `PredictionResult.to_json`); these models
describe it so clients can be generated from `/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

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
    runtime: str
    file: str
    version: str
    max_batch: int
    max_wait_ms: float
    queue_size: int
    timeout_s: float
    max_body_mb: float
    max_pixels: int
    max_expressions: int
    allow_paths: bool
    mask_formats: list[str]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictResponse, "description": "one record per expression, in the order sent"},
    400: _error("malformed body: invalid JSON, bad base64, unreadable multipart"),
    403: _error("image_path given to a server started without --allow-paths"),
    413: _error("the body is larger than --max-body-mb"),
    415: _error("not an image, a 16-bit image, or a body that is neither multipart nor JSON"),
    422: _error(
        "a field is missing, unknown, repeated or of the wrong type; an empty expression; too many expressions; "
        "an image smaller than 8 pixels a side or with more pixels than --max-pixels"
    ),
    503: _error("too many requests in progress (--queue-size); retry after the Retry-After header's seconds"),
    504: _error("no answer within --timeout-s"),
}

_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["expression"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "the image file"},
        "image_path": {"type": "string", "description": "a path on the server (only with --allow-paths)"},
        "expression": {"type": "array", "items": {"type": "string"}, "description": "repeat for several"},
        "masks": {"type": "string", "enum": ["none", "rle", "png"], "default": "none"},
    },
}
_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "byte", "description": "the image file in base64 (or a data: URL)"},
        "image_path": {"type": "string", "description": "a path on the server (only with --allow-paths)"},
        "expression": {"type": "string"},
        "expressions": {"type": "array", "items": {"type": "string"}},
        "masks": {"type": "string", "enum": ["none", "rle", "png"], "default": "none"},
    },
    "additionalProperties": False,
}
PREDICT_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            "application/json": {
                "schema": _JSON_SCHEMA,
                "example": {"image": "<base64 of photo.jpg>", "expressions": ["the man on the left"]},
            },
        },
    }
}
