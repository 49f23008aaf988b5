"""Ground-truth masks: COCO segmentations to RLE, and one compact RLE file per dataset.

SimREC wrote one uint8 `.npy` per ref (about 15 GB for RefCOCO); a COCO-RLE JSON holds the same masks in a
few MB. Folders of those legacy `.npy` files are still read when a dataset has no RLE file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from simrec_cli.errors import SimrecError
from simrec_cli.schemas.files import read_array
from simrec_cli.schemas.prepared import MASKS, MASKS_FORMAT

STORE_SUFFIX = ".rle.json"


def segmentation_to_rle(segmentation: list | dict, height: int, width: int) -> dict:
    """One compressed RLE for a COCO segmentation: polygons (merged as a union), or RLE (crowd) in any form."""
    if isinstance(segmentation, list):
        polygons = [polygon for polygon in segmentation if len(polygon) >= 6]
        if not polygons:
            return mask_utils.encode(np.zeros((height, width, 1), dtype=np.uint8, order="F"))[0]
        rles = mask_utils.frPyObjects(polygons, height, width)
        return mask_utils.merge(rles) if len(rles) > 1 else rles[0]
    if isinstance(segmentation, dict) and "counts" in segmentation:
        if isinstance(segmentation["counts"], list):
            return mask_utils.frPyObjects(segmentation, height, width)
        counts = segmentation["counts"]
        return {"size": list(segmentation["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}
    raise ValueError(f"unknown segmentation of type {type(segmentation).__name__}")


def rle_to_json(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]], "counts": counts.decode() if isinstance(counts, bytes) else counts}


def decode_rle(rle: dict) -> np.ndarray:
    """A JSON-form RLE as a bool HxW array."""
    counts = rle["counts"]
    compressed = {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    return mask_utils.decode(compressed).astype(bool)


def mask_store_json(rles: dict[int | str, dict]) -> dict:
    """All masks of a dataset, keyed by mask_id, as the content of one JSON file."""
    return {"format": MASKS_FORMAT, "masks": {str(key): rle_to_json(r) for key, r in rles.items()}}


class MaskStore:
    """Reads masks by mask_id from the RLE file, or from a legacy folder of `<mask_id>.npy` files."""

    def __init__(self, store_path: Path, legacy_dir: Path) -> None:
        self.store_path = store_path
        self.legacy_dir = legacy_dir
        self._rles: dict[str, dict] | None = None
        if store_path.is_file():
            self._rles = dict(MASKS.read(store_path)["masks"])
        elif not legacy_dir.is_dir():
            raise SimrecError(
                f"no masks: neither {store_path} nor the folder {legacy_dir} exists",
                "run `simrec prepare-data --generate-mask` for this dataset",
            )

    def __contains__(self, mask_id: int | str) -> bool:
        if self._rles is not None:
            return str(mask_id) in self._rles
        return (self.legacy_dir / f"{mask_id}.npy").is_file()

    def get(self, mask_id: int | str) -> np.ndarray:
        """The mask as bool HxW in original image pixels."""
        if self._rles is not None:
            rle = self._rles.get(str(mask_id))
            if rle is None:
                raise SimrecError(f"mask {mask_id} is not in {self.store_path}", "re-run prepare-data --generate-mask")
            try:
                return decode_rle(rle)
            except ValueError as exc:  # counts that do not add up to the size (pycocotools checks; it does not say)
                raise SimrecError(
                    f"mask {mask_id} in {self.store_path} is not a valid RLE of its size {rle['size']}",
                    "re-run prepare-data --generate-mask",
                ) from exc
        array = read_array(self.legacy_dir / f"{mask_id}.npy", "mask file", "re-run prepare-data --generate-mask")
        return np.squeeze(array) > 0.5
