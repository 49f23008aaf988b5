"""The torch Dataset over a prepared annotation JSON, its typed samples and batches, and the word embedding.

Training visits each object once per epoch and draws one of its sentences with a generator seeded by
(seed, epoch, index), so a run is reproducible with any number of workers; with `group_by_image` an item
is an image with all its objects, which share one transform and, in the model, one backbone pass.
Evaluation visits every sentence once, in file order, and a batch holds each distinct image once. Images
are letterboxed exactly as SimREC and the transform is kept with the sample, so predictions can be taken
back to original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simrec_cli.data.annotations import Annotations, count_split, load_annotations, prepare_data_command
from simrec_cli.data.augment import CandidateAugmenter, Scene, flip_horizontal
from simrec_cli.data.image_presence import missing_image_folder
from simrec_cli.data.images import image_file, read_image, where_images_belong
from simrec_cli.data.letterbox import LetterboxInfo, letterbox_image, letterbox_mask, xywh_to_target
from simrec_cli.data.masks import MaskStore
from simrec_cli.data.text import Vocabulary
from simrec_cli.data.vectors import load_word_vectors
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.schemas.files import read_array, require_path
from simrec_cli.settings import DatasetSettings


@dataclass
class Sample:
    """One item: the letterboxed image and everything needed to train on it or score a prediction."""

    image: torch.Tensor  # float32 [3, H, W], RGB/255 normalized by mean/std
    tokens: torch.Tensor  # int64 [L]
    target: torch.Tensor  # float32 [4] normalized (cx, cy, w, h) in the letterbox
    mask: torch.Tensor | None  # float32 [1, H, W] 0/1 in the letterbox
    gt_box: torch.Tensor  # float64 [4] xywh in original pixels
    info: torch.Tensor  # float64 [8] LetterboxInfo.to_array()
    index: int
    image_id: int | str
    mask_id: int | str
    sentence: str


@dataclass
class Batch:
    """Samples stacked along a first batch dimension (see `Sample` for each field's meaning)."""

    images: torch.Tensor
    tokens: torch.Tensor
    targets: torch.Tensor
    masks: torch.Tensor | None
    gt_boxes: torch.Tensor
    infos: torch.Tensor
    indices: torch.Tensor
    image_ids: list
    mask_ids: list
    sentences: list[str]
    # Row k of the per-sample fields belongs to images[image_index[k]]; None when images has one row per sample.
    image_index: torch.Tensor | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with every tensor on `device` (lists stay as they are)."""
        moved = {}
        for item in fields(self):
            value = getattr(self, item.name)
            moved[item.name] = value.to(device, non_blocking=non_blocking) if torch.is_tensor(value) else value
        return Batch(**moved)

    def __len__(self) -> int:
        return len(self.sentences)


def collate_samples(samples: Sequence[Sample], image_keys: Sequence | None = None) -> Batch:
    """Stack samples into a `Batch` (masks only when every sample has one).

    With `image_keys` (one per sample; equal keys mean the same letterboxed image), each distinct image is
    stacked once and `image_index` maps the samples onto them, so the model encodes it once.
    """
    masks = [sample.mask for sample in samples]
    image_index, firsts = None, list(range(len(samples)))
    if image_keys is not None:
        slots: dict = {}
        rows = [slots.setdefault(key, len(slots)) for key in image_keys]
        if len(slots) < len(samples):
            firsts = [rows.index(slot) for slot in range(len(slots))]
            image_index = torch.tensor(rows, dtype=torch.int64)
    return Batch(
        images=torch.stack([samples[first].image for first in firsts]),
        tokens=torch.stack([sample.tokens for sample in samples]),
        targets=torch.stack([sample.target for sample in samples]),
        masks=None if any(mask is None for mask in masks) else torch.stack(masks),
        gt_boxes=torch.stack([sample.gt_box for sample in samples]),
        infos=torch.stack([sample.info for sample in samples]),
        indices=torch.tensor([sample.index for sample in samples], dtype=torch.int64),
        image_ids=[sample.image_id for sample in samples],
        mask_ids=[sample.mask_id for sample in samples],
        sentences=[sample.sentence for sample in samples],
        image_index=image_index,
    )


def resize_batch(batch: Batch, size: tuple[int, int], mode: str = "nearest") -> Batch:
    """The batch at another input size (multi-scale training): images and masks resized, infos rescaled.

    Normalized targets do not change; the infos' offsets and resized sizes scale with the canvas, so
    `boxes_to_original` on the float infos still maps back to the same original pixels.
    """
    height, width = size
    old_height, old_width = batch.images.shape[-2:]
    if (height, width) == (old_height, old_width):
        return batch
    images = F.interpolate(batch.images, size=(height, width), mode=mode)
    masks = None if batch.masks is None else F.interpolate(batch.masks, size=(height, width), mode="nearest")
    scale = torch.tensor(
        [1, 1, height / old_height, width / old_width, width / old_width, height / old_height, 0, 0],
        dtype=batch.infos.dtype,
        device=batch.infos.device,
    )
    infos = batch.infos * scale
    infos[:, 6] = height
    infos[:, 7] = width
    return replace(batch, images=images, masks=masks, infos=infos)


def prepare_command(settings: DatasetSettings) -> str:
    """The prepare-data command that writes the files these settings read."""
    return prepare_data_command(settings.name, settings.data_root)


def split_entries(anns: Annotations, split: str, settings: DatasetSettings) -> list[dict]:
    """The entries of `split` ('train+val' joins several) in file order, refusing a split the file lacks or
    that is empty."""
    entries: list[dict] = []
    for part in split.split("+"):
        if part not in anns:
            raise SimrecError(
                f"split {quoted(part)} is not in {settings.resolved_ann_path()} (it has {', '.join(anns)})",
                f"choose one of those, or re-run `{prepare_command(settings)}`",
            )
        entries.extend(anns[part])
    if not entries:
        raise SimrecError(
            f"split {quoted(split)} of {settings.resolved_ann_path()} is empty: it holds no expressions",
            f"re-run `{prepare_command(settings)}`, or choose another split",
        )
    return entries


def evaluation_items(entries: list[dict]) -> list[tuple[int, int]]:
    """(entry position, sentence index) of each evaluation sample: one per sentence, in file order."""
    return [(position, k) for position, entry in enumerate(entries) for k in range(len(entry["refs"]))]


class RefDataset(torch.utils.data.Dataset):
    """Samples of one or more splits ('train+val') of a prepared dataset."""

    def __init__(
        self,
        settings: DatasetSettings,
        split: str,
        vocab: Vocabulary,
        *,
        training: bool,
        load_masks: bool,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        reporter: Reporter | None = None,
        seed: int = 0,
        group_by_image: bool = False,
    ) -> None:
        self.settings = settings
        self.split = split
        self.vocab = vocab
        self.training = training
        self.load_masks = load_masks
        self.seed = seed
        self.epoch = 0
        self.size = tuple(settings.input_shape)
        self._mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._normalize = tuple(mean) != (0.0, 0.0, 0.0) or tuple(std) != (1.0, 1.0, 1.0)
        self.entries = split_entries(load_annotations(settings.resolved_ann_path(), settings.name), split, settings)
        self.image_root = settings.resolved_image_path()
        missing = missing_image_folder(settings.name, self.entries, self.image_root)
        if missing is not None:  # prepare-data writes no images (but synthetic's): say where they belong
            folder, entry = missing
            raise SimrecError(
                f"image folder {folder} does not exist",
                f"{where_images_belong(settings.name, entry, self.image_root)}, or set dataset.image_path to the "
                + (
                    "folder that holds coco/, refclef/, flickr/ and VG/"
                    if settings.name == "merge"
                    else "folder of them"
                ),
            )
        # Training: one item per entry (object). Evaluation: one per sentence, whatever the split holds.
        self.items = (
            [(position, None) for position in range(len(self.entries))] if training else evaluation_items(self.entries)
        )
        # Grouped training: one item per image, listing its objects' item indices in file order.
        self.groups = self._image_groups() if training and group_by_image else None
        self.masks = MaskStore(settings.resolved_mask_path(), settings.legacy_mask_dir()) if load_masks else None
        self.flip_lr = training and settings.flip_lr
        self.augmenter = CandidateAugmenter(list(settings.augmentations) if training else [])
        # Evaluation lists an image's expressions one after another, so the last image is kept (path, picture,
        # letterboxed tensor, info): it is read and letterboxed once, not once per expression (demo val: 200x,
        # not 1,776x).
        self._last_image: tuple[Path, np.ndarray, torch.Tensor, LetterboxInfo] | None = None
        self._counts = count_split(self.entries)
        (reporter or NullReporter()).info(
            f"{settings.name} {split}: {len(self.items)} samples from {self._counts.images} images"
        )

    def _image_groups(self) -> list[list[int]]:
        groups: dict[Path, list[int]] = {}
        for index in range(len(self.items)):
            groups.setdefault(self.image_path(index), []).append(index)
        return list(groups.values())

    def __len__(self) -> int:
        return len(self.items) if self.groups is None else len(self.groups)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose sentence draws and augmentations `__getitem__` reproduces."""
        self.epoch = epoch

    @property
    def num_images(self) -> int:
        return self._counts.images

    @property
    def num_objects(self) -> int:
        return self._counts.objects

    @property
    def num_expressions(self) -> int:
        return self._counts.expressions

    def image_path(self, index: int) -> Path:
        return image_file(self.settings.name, self.entries[self.items[index][0]], self.image_root)

    def original_mask(self, index: int) -> np.ndarray:
        """The ground-truth mask of item `index` as bool HxW in original image pixels."""
        if self.masks is None:
            self.masks = MaskStore(self.settings.resolved_mask_path(), self.settings.legacy_mask_dir())
        return self.masks.get(self.entries[self.items[index][0]]["mask_id"])

    def _sentence(self, index: int, rng: np.random.Generator | None) -> str:
        """Evaluation reads item `index`'s own sentence; training draws one of its object's sentences."""
        position, sentence_index = self.items[index]
        refs = self.entries[position]["refs"]
        return refs[int(rng.integers(len(refs)))] if rng is not None else refs[sentence_index]

    def __getitem__(self, index: int) -> Sample | list[Sample]:
        """Sample `index`; with `group_by_image`, the samples of every object of image group `index`."""
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.training else None
        if self.groups is not None:
            return self._samples(self.groups[index], rng)
        return self._samples([index], rng)[0]

    def _samples(self, indices: list[int], rng: np.random.Generator | None) -> list[Sample]:
        """Items `indices`, all of one image, under one draw of the flip and the augmentations."""
        path = self.image_path(indices[0])
        last = self._last_image if rng is None and self._last_image and self._last_image[0] == path else None
        scene = Scene(
            image=last[1] if last is not None else read_image(path),
            boxes=np.array([self.entries[self.items[index][0]]["bbox"] for index in indices], dtype=np.float64),
            masks=[self.original_mask(index) for index in indices] if self.load_masks else None,
            sentences=[self._sentence(index, rng) for index in indices],
        )
        if rng is not None:
            scene = self.augmenter(scene, rng)
            if self.flip_lr and rng.random() < 0.5:
                scene = flip_horizontal(scene)
        if last is not None:
            image, info = last[2], last[3]
        else:
            image, info = self._letterboxed(scene.image)
            if rng is None:
                self._last_image = (path, scene.image, image, info)
        return [self._sample(index, scene, k, image, info) for k, index in enumerate(indices)]

    def _letterboxed(self, picture: np.ndarray) -> tuple[torch.Tensor, LetterboxInfo]:
        canvas, info = letterbox_image(picture, self.size)
        image = torch.from_numpy(canvas).permute(2, 0, 1).float().div_(255.0)
        if self._normalize:
            image = (image - self._mean) / self._std
        return image, info

    def _sample(self, index: int, scene: Scene, k: int, image: torch.Tensor, info: LetterboxInfo) -> Sample:
        """Item `index`, object `k` of `scene`, on the letterboxed `image`."""
        mask = None
        if scene.masks is not None:
            mask = torch.from_numpy((letterbox_mask(scene.masks[k], info) > 0.5).astype(np.float32))[None]
        tokens, _ = self.vocab.encode(scene.sentences[k], self.settings.max_token_length)
        entry = self.entries[self.items[index][0]]
        return Sample(
            image=image,
            tokens=torch.from_numpy(tokens),
            target=torch.from_numpy(xywh_to_target(scene.boxes[k], info).astype(np.float32)),
            mask=mask,
            gt_box=torch.from_numpy(scene.boxes[k].copy()),
            info=torch.from_numpy(info.to_array()),
            index=index,
            image_id=entry["iid"],
            mask_id=entry.get("mask_id", -1),
            sentence=scene.sentences[k],
        )

    def collate(self, items: Sequence[Sample] | Sequence[list[Sample]]) -> Batch:
        """A batch in which each image is encoded once: image groups in training, same files in evaluation.

        Training without groups keeps one image per sample: each has its own augmentation draw.
        """
        if self.groups is not None:
            samples = [sample for group in items for sample in group]
            return collate_samples(samples, [number for number, group in enumerate(items) for _ in group])
        if self.training:
            return collate_samples(items)
        return collate_samples(items, [self.image_path(sample.index) for sample in items])


def load_vocabulary(settings: DatasetSettings) -> Vocabulary:
    """The vocabulary prepare-data wrote for this dataset."""
    path = settings.resolved_vocab_path()
    require_path(path, "vocabulary", "check dataset.data_root", missing=f"run `{prepare_command(settings)}` first")
    return Vocabulary.load(path)


def load_embedding(settings: DatasetSettings, vocab: Vocabulary, reporter: Reporter | None = None) -> np.ndarray | None:
    """Initial word vectors [V, D]: `dataset.word_vectors`, else the matrix prepare-data saved, else None.

    None means the model starts from a random, trainable embedding; that is only worth a warning when
    vectors were asked for (`dataset.use_glove`).
    """
    reporter = reporter or NullReporter()
    if not settings.use_glove:
        return None
    if settings.word_vectors:
        return load_word_vectors(settings.word_vectors, vocab.words, reporter)
    path = settings.resolved_vectors_path()
    if path.is_file():
        matrix = read_array(path, "word vectors", f"re-run `{prepare_command(settings)} --word-vectors FILE`")
        if matrix.ndim != 2 or matrix.shape[0] != len(vocab):
            raise SimrecError(
                f"{path} has the shape {matrix.shape}: it needs {len(vocab)} rows, one for each word of the vocabulary",
                f"re-run `{prepare_command(settings)} --word-vectors FILE`",
            )
        return matrix.astype(np.float32)
    reporter.warning(
        f"no word vectors for {settings.name} (dataset.use_glove is on): the embedding will be random and "
        f"trainable; set dataset.word_vectors=FILE or run `{prepare_command(settings)} --word-vectors FILE`"
    )
    return None
