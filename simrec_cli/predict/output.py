"""The prediction output folder: one annotated picture per image and one mask PNG per answer, each written
atomically under a name derived from the image's, made unique when two images share a name.

A file already in the folder is never replaced (the folder may be the one holding the images themselves): a
name that is taken gets the next free suffix, `photo_2.jpg`, and the answers name the files written."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from PIL import Image

from simrec_cli.storage.atomic import NAME_MAX_BYTES, create_new, shortened_name
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

    def save(
        self, image: Path, picture: Image.Image | None, masks: Sequence[np.ndarray]
    ) -> tuple[Path | None, list[Path]]:
        """Write `image`'s masks and annotated picture under the first free stem (photo, photo_2, photo_3, ...):
        one no earlier image of this run has, and whose files are not in the folder. Each file is created new, so a
        name that another process takes meanwhile (two predicts into one folder) is never replaced: the image's
        files written so far go again and the next stem is tried. Returns the picture (if any) and the masks."""
        files = [(f"_mask{index}.png", _png(mask)) for index, mask in enumerate(masks, 1)]
        if picture is not None:
            files.append((".jpg", _encoded(picture, "JPEG", quality=PICTURE_QUALITY)))
        stem = shortened_name(image.stem, MAX_STEM_BYTES) or "image"
        candidates = itertools.chain([stem], (f"{stem}_{number}" for number in itertools.count(2)))
        while True:
            candidate = next(candidates)
            if candidate in self._taken or self._in_folder(candidate, len(masks)):
                continue
            written = self._create_all(candidate, files)
            if written is not None:
                self._taken.add(candidate)
                return (written[-1] if picture is not None else None), written[: len(masks)]

    def _in_folder(self, stem: str, masks: int) -> bool:
        names = [f"{stem}.jpg", *(f"{stem}_mask{index}.png" for index in range(1, masks + 1))]
        return any(os.path.lexists(self.root / name) for name in names)

    def _create_all(self, stem: str, files: list[tuple[str, bytes]]) -> list[Path] | None:
        """Create every file under `stem`, or none (None: a name was taken meanwhile; those made go again)."""
        written: list[Path] = []
        for suffix, content in files:
            path = self.root / f"{stem}{suffix}"
            if not create_new(path, content, f"choose another {OPTION}"):
                for made in written:
                    made.unlink(missing_ok=True)
                return None
            written.append(path)
        return written


def _png(mask: np.ndarray) -> bytes:
    """A black-and-white PNG (255 = the object) at the original image size."""
    return _encoded(Image.fromarray(mask.astype(np.uint8) * 255), "PNG", compress_level=MASK_PNG_COMPRESSION)


def _encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()
