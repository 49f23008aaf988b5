"""Reading the REFER files (`instances.json`, `refs(<split_by>).p`) without trusting the pickle.

The refs pickles were written by Python 2. `pickle.load` on them would run whatever the file asks for, so
they are read with an unpickler that refuses every global: only plain containers, strings and numbers pass.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simrec_cli.data.files import read_json
from simrec_cli.errors import SimrecError

REFER_SOURCE_HINT = (
    "the REFER annotations (refcoco.zip, refcoco+.zip, refcocog.zip, refclef.zip) come from "
    "github.com/lichengunc/refer; the original links are dead, use a web.archive.org copy"
)

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


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a class or function."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that admits no class or function at all: a pickle needing one is refused, never executed."""

    def find_class(self, module: str, name: str) -> Any:
        raise _ForbiddenGlobal(f"it asks for {module}.{name}, and only plain data is accepted")


def _unpickle(raw: bytes, encoding: str) -> Any:
    return _PlainDataUnpickler(io.BytesIO(raw), fix_imports=True, encoding=encoding).load()


def read_plain_pickle(path: Path) -> Any:
    """Load a (Python 2 or 3) pickle of plain containers, strings and numbers; refuse anything else."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SimrecError(f"cannot read {path}: {exc.strerror}", "check the file and its permissions") from exc
    try:
        try:
            return _unpickle(raw, "utf-8")
        except UnicodeDecodeError:
            # Python 2 byte strings that are not UTF-8: latin-1 maps every byte, so nothing is lost.
            return _unpickle(raw, "latin-1")
    except _ForbiddenGlobal as exc:
        raise SimrecError(
            f"refused to load {path}: {exc}",
            "this is not a REFER refs file; re-download it from a trusted copy",
        ) from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
    ) as exc:
        raise SimrecError(f"{path} is corrupt or truncated ({type(exc).__name__})", "re-download it") from exc


@dataclass
class ReferData:
    """The parts of one REFER dataset that prepare-data needs, indexed by id."""

    images: dict[int, dict]
    annotations: dict[int, dict]
    categories: list[int]
    refs: list[dict]
    category_names: dict[int, str]


def _require(path: Path, dataset: str) -> None:
    if path.is_dir():
        raise SimrecError(f"{path} is a folder, not the file prepare-data --dataset {dataset} reads", REFER_SOURCE_HINT)
    if not path.is_file():
        raise SimrecError(
            f"{path} is missing: prepare-data --dataset {dataset} reads {path.name} from {path.parent}",
            REFER_SOURCE_HINT,
        )


def load_refer(refer_root: Path, dataset: str, split_by: str) -> ReferData:
    """Read `<refer_root>/instances.json` and `refs(<split_by>).p`, checking their shape."""
    instances_path = refer_root / "instances.json"
    refs_path = refer_root / f"refs({split_by}).p"
    _require(instances_path, dataset)
    _require(refs_path, dataset)
    instances = read_json(instances_path, "REFER instances")
    if not isinstance(instances, dict) or not {"images", "annotations", "categories"} <= instances.keys():
        raise SimrecError(f"{instances_path} lacks images/annotations/categories", "it is not a REFER instances.json")
    refs = read_plain_pickle(refs_path)
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        raise SimrecError(f"{refs_path} does not hold a list of refs", "it is not a REFER refs pickle")
    required = ("ref_id", "ann_id", "image_id", "split", "sentences")
    for position, ref in enumerate(refs):
        missing = [key for key in required if key not in ref]
        if missing:
            raise SimrecError(f"{refs_path}: ref #{position} lacks {', '.join(missing)}", "re-download the file")
    return ReferData(
        images={image["id"]: image for image in instances["images"]},
        annotations={ann["id"]: ann for ann in instances["annotations"]},
        categories=sorted(category["id"] for category in instances["categories"]),
        refs=refs,
        category_names={
            category["id"]: str(category.get("name", category["id"])) for category in instances["categories"]
        },
    )
