"""The REFER datasets: their split rules, and their two files read through the schemas of `schemas/refer.py`.

The refs pickles were written by Python 2. `pickle.load` on them would run whatever the file asks for, so
they are read with an unpickler that refuses every global: only plain containers, strings and numbers pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simrec_cli.errors import SimrecError
from simrec_cli.schemas.files import require_path
from simrec_cli.schemas.refer import INSTANCES, REFER_SOURCE_HINT, REFS

# dataset -> (default split_by, all split_bys); `referit` is SimREC's name for REFER's `refclef`.
SPLIT_BY: dict[str, tuple[str, tuple[str, ...]]] = {
    "refcoco": ("unc", ("unc", "google")),
    "refcoco+": ("unc", ("unc",)),
    "refcocog": ("umd", ("umd", "google")),
    "refclef": ("berkeley", ("berkeley", "unc")),
}

# SimREC's data_process.py: the splits written for each (dataset, split_by).
_SPLITS = {
    ("refcoco", "unc"): ["train", "val", "testA", "testB"],
    ("refcoco", "google"): ["train", "val", "testA", "testB"],
    ("refcoco+", "unc"): ["train", "val", "testA", "testB"],
    ("refcocog", "umd"): ["train", "val", "test"],
    ("refcocog", "google"): ["train", "val"],
    ("refclef", "unc"): ["train", "val", "testA", "testB", "testC"],
    ("refclef", "berkeley"): ["train", "val", "test"],
}


def refer_name(dataset: str) -> str:
    """The REFER folder name of a dataset (`referit` is stored as `refclef`)."""
    return "refclef" if dataset == "referit" else dataset


def resolve_split_by(dataset: str, split_by: str | None) -> str:
    """The split_by to use, refusing one the dataset does not have."""
    default, known = SPLIT_BY[refer_name(dataset)]
    if split_by is None:
        return default
    if split_by not in known:
        raise SimrecError(
            f"--split-by {split_by} does not exist for {dataset}",
            f"choose one of {', '.join(known)} (default {default})",
        )
    return split_by


def splits_for(dataset: str, split_by: str) -> list[str]:
    return list(_SPLITS[(refer_name(dataset), split_by)])


def in_split(ref_split: str, split: str) -> bool:
    """REFER's getRefIds rule: train/val match exactly, testA/B/C as a substring, test any split with 'test'."""
    if split in ("testA", "testB", "testC"):
        return split[-1] in ref_split and "test" in ref_split
    if split == "test":
        return "test" in ref_split
    return ref_split == split


@dataclass
class ReferData:
    """The parts of one REFER dataset that prepare-data needs, indexed by id."""

    images: dict[int, dict]
    annotations: dict[int, dict]
    categories: list[int]
    refs: list[dict]
    category_names: dict[int, str]


def load_refer(refer_root: Path, dataset: str, split_by: str) -> ReferData:
    """Read `<refer_root>/instances.json` and `refs(<split_by>).p` through their schemas."""
    reads = f"prepare-data --dataset {dataset} reads instances.json and refs({split_by}).p from it"
    require_path(refer_root, "REFER folder", f"{reads}; {REFER_SOURCE_HINT}", folder=True)
    instances = INSTANCES.read(refer_root / "instances.json")
    refs = REFS.read(refer_root / f"refs({split_by}).p")
    categories = instances["categories"]
    return ReferData(
        images={image["id"]: image for image in instances["images"]},
        annotations={ann["id"]: ann for ann in instances["annotations"]},
        categories=sorted(category["id"] for category in categories),
        refs=list(refs),
        category_names={category["id"]: category.get("name", str(category["id"])) for category in categories},
    )
