"""The report's pictures: chosen expressions drawn with the target, the answer and the image's other objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simrec_cli.data.images import image_file, read_image
from simrec_cli.data.masks import MaskStore, decode_rle
from simrec_cli.drawing import draw_outcome, picture_base
from simrec_cli.engine.metrics import SampleResult
from simrec_cli.report.analysis import Scenes
from simrec_cli.settings import DatasetSettings
from simrec_cli.storage.outputs import StagedFolder

GALLERY_WIDTH = 640  # pixels; pictures are never wider
JPEG_QUALITY = 85


@dataclass(frozen=True)
class GallerySource:
    """Where a split's pictures come from: its dataset, entries per result, and the masks for mask models."""

    dataset: DatasetSettings
    entries: Sequence[dict]
    results: Sequence[SampleResult]
    scenes: Scenes
    masks: MaskStore | None


def draw_gallery(source: GallerySource, rows: Sequence[int], folder: StagedFolder, prefix: str) -> list[str]:
    """Draw each row's picture into `folder` as `<prefix>-NN.jpg`; returns their paths in the folder, in order."""
    image_root = source.dataset.resolved_image_path()
    decoded: dict[Path, np.ndarray] = {}
    names = []
    for number, row in enumerate(rows, start=1):
        entry, result = source.entries[row], source.results[row]
        path = image_file(source.dataset.name, entry, image_root)
        if path not in decoded:
            decoded[path] = read_image(path)
        others, _ = source.scenes.others(row)
        target_mask = predicted_mask = None
        if source.masks is not None and result.mask_rle is not None:
            target_mask = source.masks.get(entry["mask_id"])
            predicted_mask = decode_rle(result.mask_rle)
        height, width = decoded[path].shape[:2]
        answer = np.clip(result.box, 0, [width, height, width, height])  # the original protocol does not clip
        picture = draw_outcome(
            picture_base(decoded[path], max_width=GALLERY_WIDTH),
            source.scenes.samples.targets[row].tolist(),
            answer.tolist(),
            others.tolist(),
            target_mask,
            predicted_mask,
        )
        name = f"{prefix}-{number:02d}.jpg"
        folder.write(name, lambda handle, picture=picture: picture.save(handle, format="JPEG", quality=JPEG_QUALITY),
                     binary=True)  # fmt: skip
        names.append(name)
    return names
