"""The prediction output folder: one annotated picture per image and one mask PNG per answer, each written
atomically under a name derived from the image's, made unique when two images share a name.

A file already in the folder is never replaced (the folder may be the one holding the images themselves): a
name that is taken gets the next free suffix, `photo_2.jpg`, and the answers name the files written."""

from __future__ import annotations

import contextlib
import io
import os
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from PIL import Image

from simrec_cli.storage.atomic import NAME_MAX_BYTES, atomic_write, shortened_name
from simrec_cli.storage.targets import check_writable_dir, claimed_numbered_folder, ensure_writable_dir

PICTURE_QUALITY = 90
# An image's name may be as long as a file name may be; the names made from it add `_2`, `_mask12.png`.
MAX_STEM_BYTES = NAME_MAX_BYTES - 32
OPTION = "--output-dir"
MASK_PNG_COMPRESSION = 1  # binary masks compress well even at the fastest level; a 80 MP mask saves in a blink


def predictions_folder(output_dir: Path | None) -> AbstractContextManager[Path]:
    """The folder for the block's pictures and masks: `output_dir` (checked, made when the first file goes in), or
    a new runs/predict, runs/predict2, ... (as ultralytics) claimed now by creating it, so two predicts started at
    once never share one; a claimed folder the block leaves empty by failing goes again."""
    if output_dir is not None:
        check_writable_dir(output_dir, "predictions", OPTION)
        return contextlib.nullcontext(output_dir)
    return claimed_numbered_folder(Path("runs"), "predict", "predictions", OPTION)


class OutputFolder:
    """Where pictures and masks go; names follow the image names, made unique when two images share one."""

    def __init__(self, root: Path) -> None:
        ensure_writable_dir(root, "predictions", OPTION)
        self.root = root
        self._taken: set[str] = set()

    def claim_stem(self, image: Path, masks: int = 0) -> str:
        """A file stem for `image` (photo, photo_2, photo_3, ...) that no earlier image of this run has, and whose
        picture and `masks` mask files are not in the folder yet."""
        stem = shortened_name(image.stem, MAX_STEM_BYTES) or "image"
        candidate, number = stem, 2
        while candidate in self._taken or self._in_folder(candidate, masks):
            candidate = f"{stem}_{number}"
            number += 1
        self._taken.add(candidate)
        return candidate

    def _in_folder(self, stem: str, masks: int) -> bool:
        names = [f"{stem}.jpg", *(f"{stem}_mask{index}.png" for index in range(1, masks + 1))]
        return any(os.path.lexists(self.root / name) for name in names)

    def save_picture(self, stem: str, picture: Image.Image) -> Path:
        path = self.root / f"{stem}.jpg"
        _write_image(path, picture, "JPEG", quality=PICTURE_QUALITY)
        return path

    def save_mask(self, stem: str, index: int, mask: np.ndarray) -> Path:
        """A black-and-white PNG (255 = the object) at the original image size; `index` counts from 1."""
        path = self.root / f"{stem}_mask{index}.png"
        _write_image(path, Image.fromarray(mask.astype(np.uint8) * 255), "PNG", compress_level=MASK_PNG_COMPRESSION)
        return path


def _write_image(path: Path, image: Image.Image, image_format: str, **options: object) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), binary=True)
