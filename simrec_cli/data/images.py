"""Where each dataset keeps an entry's image, and reading it: the one place that knows the file-name rules."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from simrec_cli.errors import SimrecError
from simrec_cli.settings.dataset import DATASET_LAYOUT

# Folder of each merge `data_source` under `<data_root>/images/` (the folders the single datasets use).
SOURCE_FOLDERS = {"coco": "coco", "refclef": "refclef", "referit": "refclef", "flickr": "flickr", "vg": "VG"}
# What each image folder holds, as the hints that send a user there describe it.
FOLDER_CONTENTS = {
    "coco": "the COCO train2014 images (train2014/COCO_train2014_<12-digit id>.jpg from cocodataset.org)",
    "refclef": "the ImageCLEF saiapr_tc-12 images (<id>.jpg)",
    "flickr": "the Flickr30k images (flickr30k-images/<id>.jpg)",
    "VG": "the Visual Genome images (the folders VG_100K/ and VG_100K_2/, which each entry's url names)",
    "synthetic": "the generated scenes (written by `simrec prepare-data --dataset synthetic`)",
}
REFCLEF_BROKEN_IMAGES = frozenset({19579, 17975, 19575})  # SimREC skips these refclef images


def coco_file_name(image_id: int | str) -> str:
    """COCO train2014 name of an image id (an int, or a string such as '123' or '123.jpg' in merge.json)."""
    number = int(str(image_id).split(".")[0]) if isinstance(image_id, str) else int(image_id)
    return f"COCO_train2014_{number:012d}.jpg"


def _numbered(iid: int | str) -> str:
    return iid if isinstance(iid, str) else f"{int(iid)}.jpg"


def image_folder(dataset: str, entry: dict, image_root: Path) -> Path:
    """The folder an entry's image lies in: the dataset's image folder, or merge's folder of its data_source."""
    if dataset == "merge":
        source = entry["data_source"]
        return image_root / SOURCE_FOLDERS.get(source, source)
    return image_root


def image_file(dataset: str, entry: dict, image_root: Path) -> Path:
    """The image of an annotation entry, following SimREC's naming for each dataset."""
    iid, folder = entry["iid"], image_folder(dataset, entry, image_root)
    if dataset in ("refcoco", "refcoco+", "refcocog"):
        return folder / coco_file_name(iid)
    if dataset in ("referit", "flickr"):
        return folder / _numbered(iid)
    if dataset in ("vg", "merge") and "url" in entry:
        return folder / entry["url"]
    if dataset == "vg":
        return folder / _numbered(iid)
    if dataset == "merge":
        return folder / (coco_file_name(iid) if entry["data_source"] == "coco" else _numbered(iid))
    if dataset == "synthetic":
        return folder / synthetic_file_name(iid)
    raise SimrecError(f"no image naming rule for dataset '{dataset}'", "use one of the known datasets")


def where_images_belong(dataset: str, entry: dict, image_root: Path) -> str:
    """A hint that says which images to put into the folder an entry's image is read from."""
    if dataset == "merge":
        name = SOURCE_FOLDERS.get(entry["data_source"], entry["data_source"])
    else:
        name = DATASET_LAYOUT[dataset]["images"]
    folder = image_folder(dataset, entry, image_root)
    contents = FOLDER_CONTENTS.get(name, f"the {name} images")
    return f"put {contents} into {folder}/"


def synthetic_file_name(image_id: int) -> str:
    return f"{int(image_id):06d}.jpg"


def read_image(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 RGB; a missing or undecodable file is one clear error naming it.

    The bytes are read by Python and decoded from memory: cv2.imread would also print its own warning
    line to stderr for every such file, beside ours.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise SimrecError(f"image {path} does not exist", "check the image folder or re-run prepare-data") from exc
    except OSError as exc:
        raise SimrecError(f"image {path} cannot be read: {exc.strerror or exc}", "check the file") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SimrecError(f"image {path} cannot be decoded", "the file is corrupt or not an image; replace it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
