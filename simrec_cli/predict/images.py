"""Read the images people have (any common format, bit depth, alpha, EXIF rotation) into upright RGB.

Pillow is used instead of cv2 because it applies the EXIF orientation of phone photos, reads WebP, palette,
16-bit and alpha images uniformly, and tells a truncated file from a non-image. Every failure becomes a
`SimrecError` naming the file, so a batch can report the one bad image and go on with the rest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from simrec_cli.errors import SimrecError

# Transparent pixels are shown as white by most viewers; compositing onto white makes the model see that.
ALPHA_BACKGROUND = (255, 255, 255)
SIXTEEN_BIT_MAX = 65535


def read_image(path: Path) -> np.ndarray:
    """Decode `path` into an upright H x W x 3 uint8 RGB array.

    Raises SimrecError when the file is missing, unreadable, not an image, corrupt or truncated.
    """
    try:
        with warnings.catch_warnings():
            # Large photos (up to Pillow's hard limit) are legitimate input, not decompression bombs.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                return upright_rgb(opened)
    except FileNotFoundError as exc:
        raise SimrecError(f"image {path} does not exist", "check the path") from exc
    except IsADirectoryError as exc:
        raise SimrecError(f"image {path} is a folder", "give an image file, or the folder as SOURCE") from exc
    except PermissionError as exc:
        raise SimrecError(f"image {path} cannot be read (permission denied)", "check its permissions") from exc
    except UnidentifiedImageError as exc:
        raise SimrecError(
            f"{path} is not an image (or not in a format Pillow reads)", "use JPEG, PNG, BMP, WebP or TIFF"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise SimrecError(f"image {path} is too large to decode safely: {exc}", "downscale it first") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise SimrecError(f"image {path} is corrupt or truncated ({exc})", "re-export or re-download it") from exc


def upright_rgb(image: Image.Image) -> np.ndarray:
    """An opened image as upright H x W x 3 uint8 RGB (EXIF orientation applied, alpha composited on white).

    Decoding errors propagate as Pillow raises them (OSError, SyntaxError, ValueError); callers name the source.
    """
    upright = _upright(image)
    upright.load()
    return _to_rgb_array(upright)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a malformed EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return image


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _gray_to_rgb(_sixteen_bit_to_uint8(np.asarray(image)))
    if image.mode == "F":
        return _gray_to_rgb(np.clip(np.asarray(image), 0, 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _sixteen_bit_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map the full 16-bit range onto 0..255 (so a 16-bit scan keeps its brightness)."""
    scaled = np.clip(values.astype(np.float32), 0, SIXTEEN_BIT_MAX) * (255.0 / SIXTEEN_BIT_MAX)
    return scaled.round().astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)
