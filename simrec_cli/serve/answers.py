"""Raw model outputs of one request -> the records of `simrec predict --json`, masks encoded for HTTP.

Boxes are mapped back to the original pixels with the same helpers `simrec predict` uses and serialized by
the same `PredictionResult.to_json`, so a program reading either gets the same keys and rounding. `mask` holds
the mask itself when asked for: COCO run-length encoding (`{"size": [h, w], "counts": ...}`, readable with
pycocotools) or a base64 PNG (255 = the object) at the original image size.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from simrec_cli.data.letterbox import boxes_to_original, mask_to_original
from simrec_cli.data.masks import rle_to_json
from simrec_cli.predict.predictor import EncodedExpression, PredictionResult
from simrec_cli.serve.batcher import RawAnswers
from simrec_cli.serve.uploads import PreparedImage


def answer_records(
    image: PreparedImage,
    expressions: Sequence[str],
    encoded: Sequence[EncodedExpression],
    raw: RawAnswers,
    mask_threshold: float,
    mask_format: str,
) -> list[dict[str, Any]]:
    """One JSON record per expression, in the order asked."""
    info = image.info
    boxes = np.asarray(boxes_to_original(raw.boxes[:, :4].astype(np.float64), info))
    masks = [mask_to_original(mask > mask_threshold, info) for mask in raw.masks] if raw.masks is not None else []
    records = []
    for k, expression in enumerate(expressions):
        result = PredictionResult(
            image=Path(image.name),
            expression=expression,
            box=tuple(float(value) for value in boxes[k]),
            score=float(raw.boxes[k, 4]),
            mask_area=int(masks[k].sum()) if masks else None,
            oov_words=encoded[k].oov_words,
            width=info.width,
            height=info.height,
        )
        record = result.to_json()
        record["image"] = image.name
        if masks and mask_format != "none":
            record["mask"] = encode_mask(masks[k], mask_format)
        records.append(record)
    return records


def encode_mask(mask: np.ndarray, mask_format: str) -> dict[str, Any] | str:
    """A boolean H x W mask as COCO RLE (`rle`) or as a base64 PNG (`png`)."""
    if mask_format == "rle":
        return rle_to_json(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
