"""Turn the bytes of an uploaded image into a checked, letterboxed canvas, or a 4xx naming what is wrong.

The size is read from the header before any pixel is decoded, so an oversized picture costs nothing. The
server is stricter than `simrec predict` in two ways: images smaller than MIN_IMAGE_SIDE pixels are refused
(there is nothing to find in them), and so are images of 16- or 32-bit samples, which usually hold raw sensor, depth
or medical data whose brightness mapping the server would have to guess (`simrec predict` maps their full range).
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from simrec_cli.data.letterbox import LetterboxInfo, letterbox_image
from simrec_cli.predict.images import upright_rgb
from simrec_cli.serve.options import MIN_IMAGE_SIDE
from simrec_cli.serve.problems import RequestProblem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BIT_DEPTH_OFFSET = 24  # signature (8) + IHDR length and type (8) + width (4) + height (4)
# Pillow's modes of more than 8 bits a sample, as a message names their samples.
DEEP_MODES = {**dict.fromkeys(("I;16", "I;16B", "I;16L", "I;16N"), "16-bit integer samples"),
              "I": "32-bit integer samples", "F": "32-bit floating-point samples"}  # fmt: skip


@dataclass(frozen=True)
class PreparedImage:
    """An upload ready for the model; `key` is the content hash, so identical uploads share one encoding."""

    key: str
    name: str
    canvas: np.ndarray
    info: LetterboxInfo


def prepare_image(
    data: bytes, name: str, input_shape: tuple[int, int], max_pixels: int, field: str = "image"
) -> PreparedImage:
    """Check and decode `data` (the file `name`) and letterbox it to `input_shape`."""
    if not data:
        raise RequestProblem(422, "empty_image", f"{name} is empty (0 bytes); send the image file's content", field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                _check_header(opened, data, name, max_pixels, field)
                pixels = upright_rgb(opened)
    except RequestProblem:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise RequestProblem(422, "too_many_pixels", f"{name} is too large to decode safely", field) from exc
        raise RequestProblem(
            415, "not_an_image", f"{name} is not an image; send a JPEG, PNG, BMP, WebP or TIFF file", field
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise RequestProblem(
            422, "corrupt_image", f"{name} is corrupt or truncated ({exc}); re-export or re-download it", field
        ) from exc
    canvas, info = letterbox_image(pixels, input_shape)
    return PreparedImage(hashlib.sha256(data).hexdigest(), name, canvas, info)


def header_pixels(data: bytes) -> float:
    """Width x height from the image header without decoding; infinite when the header cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
    except Exception:  # anything unreadable is left to prepare_image, which names the problem
        return math.inf
    return width * height


def _check_header(image: Image.Image, data: bytes, name: str, max_pixels: int, field: str) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise RequestProblem(
            422,
            "too_many_pixels",
            f"{name} is {width}x{height} = {width * height:,} pixels; this server accepts at most {max_pixels:,}; "
            "downscale it",
            field,
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise RequestProblem(
            422,
            "image_too_small",
            f"{name} is {width}x{height} pixels; both sides must be at least {MIN_IMAGE_SIDE} pixels",
            field,
        )
    depth = DEEP_MODES.get(image.mode) or ("16 bits per channel" if _png_bit_depth(data) == 16 else None)
    if depth is not None:
        raise RequestProblem(
            415,
            "unsupported_bit_depth",
            f"{name} has {depth}; save it with 8 bits per channel (e.g. as JPEG or 8-bit PNG)",
            field,
        )


def _png_bit_depth(data: bytes) -> int | None:
    """The bit depth stored in a PNG's header (Pillow reads 16-bit RGB PNGs as 8-bit RGB without saying so)."""
    if data.startswith(PNG_SIGNATURE) and len(data) > PNG_BIT_DEPTH_OFFSET:
        return data[PNG_BIT_DEPTH_OFFSET]
    return None
