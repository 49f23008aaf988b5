"""`dataset.*` settings: which dataset, where its files are, and how samples are made.

Paths follow SimREC's layout under `data_root` unless set explicitly:
`<data_root>/anns/<file>.json`, `<data_root>/images/<folder>`, `<data_root>/masks/<file>.rle.json` (or SimREC's
`<data_root>/masks/<file>/<mask_id>.npy`); the vocabulary, vectors and summary sit beside the annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from simrec_cli.errors import quoted
from simrec_cli.settings.base import StrictModel, check_multiple_of_32

DatasetName = Literal["refcoco", "refcoco+", "refcocog", "referit", "flickr", "vg", "merge", "synthetic"]
Augmentation = Literal["randaugment", "elastic", "grid_distortion", "random_erasing"]

# Per dataset: the annotation/mask file stem, the image folder, the splits it may hold, the evaluation splits.
DATASET_LAYOUT: dict[str, dict] = {
    "refcoco": {"stem": "refcoco", "images": "coco", "splits": ["train", "val", "testA", "testB"]},
    "refcoco+": {"stem": "refcoco+", "images": "coco", "splits": ["train", "val", "testA", "testB"]},
    "refcocog": {"stem": "refcocog", "images": "coco", "splits": ["train", "val", "test"]},
    "referit": {
        "stem": "refclef",
        "images": "refclef",
        "splits": ["train", "val", "test", "testA", "testB", "testC"],
        "eval": ["val", "test"],
    },
    "flickr": {"stem": "flickr", "images": "flickr", "splits": ["train", "val", "test"]},
    "vg": {"stem": "vg", "images": "VG", "splits": ["train", "val"], "eval": ["val"]},
    "merge": {"stem": "merge", "images": "", "splits": ["train", "val"], "eval": ["val"]},
    "synthetic": {"stem": "synthetic", "images": "synthetic", "splits": ["train", "val", "test"]},
}


def evaluation_splits(name: str) -> list[str]:
    """The splits `simrec eval` reports by default: every split except train (referit: val and test)."""
    layout = DATASET_LAYOUT[name]
    return list(layout.get("eval", [s for s in layout["splits"] if s != "train"]))


class DatasetSettings(StrictModel):
    """`dataset.*`: data location, input size, tokens, word vectors and augmentation."""

    name: DatasetName = Field(
        "refcoco", description="Which dataset (`refclef` is read as `referit`); `synthetic` is generated locally."
    )
    data_root: Path = Field(Path("./data"), description="The folder that holds `anns/`, `images/` and `masks/`.")
    ann_path: Path | None = Field(None, description="The annotation file; unset: `<data_root>/anns/<dataset>.json`.")
    image_path: Path | None = Field(
        None, description="The image folder; unset: `<data_root>/images/<folder of the dataset>`."
    )
    mask_path: Path | None = Field(
        None,
        description="The masks: an RLE file, or a folder of SimREC's `<mask_id>.npy` files; unset: "
        "`<data_root>/masks/<dataset>.rle.json`, else the folder `<data_root>/masks/<dataset>/`.",
    )
    input_shape: tuple[int, int] = Field(
        (416, 416), description="[height, width] the images are letterboxed to; multiples of 32."
    )
    max_token_length: int = Field(15, ge=1, description="Words kept per expression; longer ones are cut.")
    use_glove: bool = Field(
        True,
        description="Initialise the word embedding from word vectors (`word_vectors`, or those prepare-data saved); "
        "false trains it from scratch.",
    )
    word_vectors: str | None = Field(
        None,
        description="Word vectors to read instead of the prepared ones: a GloVe/word2vec text file, a `.npy` matrix "
        "with its word list, or a spaCy pipeline with vectors.",
    )
    flip_lr: bool = Field(
        False,
        description='Training: flip half the samples horizontally (image, box and mask), swapping "left" and '
        '"right" in the expression.',
    )
    augmentations: list[Augmentation] = Field(
        [], description="Training: one of these is drawn per sample; geometric ones move boxes and masks too."
    )
    train_split: str = Field("train", description="The split trained on (`a+b` joins splits).")
    val_split: str = Field("val", description="The split validated on after each epoch; it chooses `best.pth`.")
    eval_splits: list[str] | None = Field(
        None, description="The splits `simrec eval` reports; unset: every split but train (referit: val and test)."
    )

    @field_validator("name", mode="before")
    @classmethod
    def _refclef_is_referit(cls, value: object) -> object:
        return "referit" if value == "refclef" else value

    @field_validator("input_shape")
    @classmethod
    def _input_multiple_of_32(cls, value: tuple[int, int]) -> tuple[int, int]:
        check_multiple_of_32(value, "input_shape")
        return value

    @model_validator(mode="after")
    def _splits_exist(self) -> DatasetSettings:
        known = DATASET_LAYOUT[self.name]["splits"]
        for split in [self.train_split, self.val_split, *(self.eval_splits or [])]:
            for part in split.split("+"):
                if part not in known:
                    raise ValueError(f"split {quoted(part)} does not exist in {self.name}; choose from {known}")
        twice = sorted({split for split in self.eval_splits or [] if (self.eval_splits or []).count(split) > 1})
        if twice:  # it would be evaluated, printed and written twice
            raise ValueError(f"split {', '.join(map(repr, twice))} is given twice; name each split once")
        return self

    @property
    def stem(self) -> str:
        """File stem of the annotation JSON and mask store (referit keeps SimREC's `refclef`)."""
        return DATASET_LAYOUT[self.name]["stem"]

    def resolved_ann_path(self) -> Path:
        return self.ann_path or self.data_root / "anns" / f"{self.stem}.json"

    def resolved_image_path(self) -> Path:
        return self.image_path or self.data_root / "images" / DATASET_LAYOUT[self.name]["images"]

    def resolved_mask_path(self) -> Path:
        """The compact RLE mask file (`mask_path` may also name it, or a legacy folder of `.npy` files)."""
        if self.mask_path is not None and not self.mask_path.is_dir():
            return self.mask_path
        return self.data_root / "masks" / f"{self.stem}.rle.json"

    def legacy_mask_dir(self) -> Path:
        """SimREC's folder of `<mask_id>.npy` masks, read when there is no RLE file."""
        if self.mask_path is not None and self.mask_path.is_dir():
            return self.mask_path
        return self.data_root / "masks" / self.stem

    def _beside_annotations(self, suffix: str) -> Path:
        ann_path = self.resolved_ann_path()
        return ann_path.with_name(f"{ann_path.stem}{suffix}")

    def resolved_vocab_path(self) -> Path:
        """The vocabulary prepare-data writes next to the annotations (`anns/<stem>.vocab.json`)."""
        return self._beside_annotations(".vocab.json")

    def resolved_vectors_path(self) -> Path:
        """The word-vector matrix prepare-data saves when given `--word-vectors` (`anns/<stem>.vectors.npy`)."""
        return self._beside_annotations(".vectors.npy")

    def resolved_objects_path(self) -> Path:
        """Every object of each image, referred or not (`anns/<stem>.objects.json`), for error analysis."""
        return self._beside_annotations(".objects.json")

    def resolved_summary_path(self) -> Path:
        """Per-split counts written by prepare-data (`anns/<stem>.summary.json`)."""
        return self._beside_annotations(".summary.json")

    def resolved_eval_splits(self) -> list[str]:
        return self.eval_splits if self.eval_splits is not None else evaluation_splits(self.name)
