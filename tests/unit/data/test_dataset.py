"""RefDataset: samples, batches, flips with word swap, reproducible draws, multi-scale, embedding loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from simrec_cli.data.dataset import (
    RefDataset,
    collate_samples,
    load_embedding,
    load_vocabulary,
    resize_batch,
)
from simrec_cli.data.letterbox import boxes_to_original
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.data.text import Vocabulary
from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import DatasetSettings
from tests.refer_fixture import ReferFixture


def _settings(root: Path, **extra) -> DatasetSettings:
    return DatasetSettings(name="synthetic", data_root=root, input_shape=(96, 96), **extra)


def _dataset(root: Path, split: str = "val", training: bool = False, **extra) -> RefDataset:
    settings = _settings(root, **extra)
    return RefDataset(settings, split, load_vocabulary(settings), training=training, load_masks=True)


def _target_box_in_original(sample) -> np.ndarray:
    cx, cy, w, h = (sample.target.numpy() * 96).tolist()
    return boxes_to_original(np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]]), sample.info.numpy())[0]


def test_eval_samples_one_per_sentence_with_consistent_fields(synthetic_root: Path) -> None:
    anns = json.loads((synthetic_root / "anns" / "synthetic.json").read_text())
    dataset = _dataset(synthetic_root)
    assert len(dataset) == sum(len(e["refs"]) for e in anns["val"]) == dataset.num_expressions
    assert dataset.num_images == 2
    sample = dataset[1]
    assert sample.image.shape == (3, 96, 96) and sample.image.dtype == torch.float32
    assert sample.image.min() >= 0 and sample.image.max() <= 1
    assert sample.tokens.shape == (15,) and sample.tokens.dtype == torch.int64
    assert sample.sentence == anns["val"][1]["refs"][0]
    x, y, w, h = anns["val"][1]["bbox"]
    np.testing.assert_allclose(_target_box_in_original(sample), [x, y, x + w, y + h], atol=1e-4)
    np.testing.assert_allclose(sample.gt_box.numpy(), [x, y, w, h])
    assert sample.mask.shape == (1, 96, 96) and set(sample.mask.unique().tolist()) == {0.0, 1.0}
    original = dataset.original_mask(1)
    assert original.dtype == bool and original.shape == (160, 160)


def test_training_draws_are_reproducible_per_epoch(synthetic_root: Path) -> None:
    dataset = _dataset(synthetic_root, "train", training=True)
    assert len(dataset) == dataset.num_objects
    first = [dataset[i].sentence for i in range(len(dataset))]
    assert first == [dataset[i].sentence for i in range(len(dataset))]
    dataset.set_epoch(1)
    assert first != [dataset[i].sentence for i in range(len(dataset))]


def test_flip_mirrors_image_box_mask_and_words(synthetic_root: Path) -> None:
    plain = _dataset(synthetic_root, "train", training=True)
    flipping = _dataset(synthetic_root, "train", training=True, flip_lr=True)
    flipped = 0
    for index in range(len(plain)):
        a, b = plain[index], flipping[index]
        if torch.equal(a.image, b.image):
            continue
        flipped += 1
        assert torch.allclose(b.image, a.image.flip(-1), atol=2 / 255)
        assert b.target[0].item() == pytest.approx(1 - a.target[0].item(), abs=1 / 96)
        assert torch.equal(b.mask, a.mask.flip(-1))
        words = b.sentence.split()
        if "left" in a.sentence.split() or "leftmost" in a.sentence.split():
            assert "right" in words or "rightmost" in words
    assert 0 < flipped < len(plain)


def _grouped(root: Path, **extra) -> RefDataset:
    settings = _settings(root, **extra)
    return RefDataset(settings, "train", load_vocabulary(settings), training=True, load_masks=True, group_by_image=True)


def test_grouped_training_items_hold_every_object_of_one_image(synthetic_root: Path) -> None:
    plain, grouped = _dataset(synthetic_root, "train", training=True), _grouped(synthetic_root)
    assert len(grouped) == grouped.num_images and sum(len(group) for group in grouped.groups) == len(plain)
    for number in range(len(grouped)):
        samples = grouped[number]
        assert [sample.index for sample in samples] == grouped.groups[number]
        assert len({sample.image_id for sample in samples}) == 1
        assert all(sample.image is samples[0].image for sample in samples)  # one letterboxed image, shared
        for sample in samples:
            alone = plain[sample.index]
            assert torch.equal(sample.image, alone.image) and torch.equal(sample.target, alone.target)
            assert torch.equal(sample.mask, alone.mask)
            assert sample.sentence in plain.entries[plain.items[sample.index][0]]["refs"]


def test_grouped_flip_mirrors_all_objects_of_the_image_together(synthetic_root: Path) -> None:
    plain, flipping = _grouped(synthetic_root), _grouped(synthetic_root, flip_lr=True)
    flipped = 0
    for number in range(len(plain)):
        a, b = plain[number], flipping[number]
        if torch.equal(a[0].image, b[0].image):
            continue
        flipped += 1
        assert torch.allclose(b[0].image, a[0].image.flip(-1), atol=2 / 255)
        for before, after in zip(a, b, strict=True):
            assert after.target[0].item() == pytest.approx(1 - before.target[0].item(), abs=1 / 96)
            assert torch.equal(after.mask, before.mask.flip(-1))
    assert 0 < flipped < len(plain)


def test_grouped_batches_stack_each_image_once(synthetic_root: Path) -> None:
    grouped = _grouped(synthetic_root)
    first, second = grouped[0], grouped[1]
    batch = grouped.collate([first, second])
    assert batch.images.shape[0] == 2 and len(batch) == len(first) + len(second)
    assert batch.image_index.tolist() == [0] * len(first) + [1] * len(second)
    assert batch.tokens.shape[0] == batch.targets.shape[0] == len(batch)
    assert torch.equal(batch.images[1], second[0].image)


def test_eval_batches_stack_each_image_once(synthetic_root: Path) -> None:
    dataset = _dataset(synthetic_root)
    samples = [dataset[i] for i in range(len(dataset))]
    batch = dataset.collate(samples)
    assert batch.images.shape[0] == dataset.num_images < len(samples)
    for row, sample in enumerate(samples):
        assert torch.equal(batch.images[batch.image_index[row]], sample.image)
    assert dataset.collate(samples[:1]).image_index is None  # nothing shared: one image per row


def test_eval_reads_each_image_once_for_all_its_expressions(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simrec_cli.data import dataset as dataset_module

    reads: list[Path] = []
    original_read = dataset_module.read_image
    monkeypatch.setattr(dataset_module, "read_image", lambda path: reads.append(path) or original_read(path))
    dataset = _dataset(synthetic_root)
    samples = [dataset[i] for i in range(len(dataset))]
    assert len(reads) == dataset.num_images < len(samples)
    for index in (len(dataset) - 1, 0):  # out of order, and with a fresh dataset: the same sample
        fresh = _dataset(synthetic_root)[index]
        assert torch.equal(samples[index].image, fresh.image) and torch.equal(samples[index].info, fresh.info)
        assert torch.equal(samples[index].target, fresh.target) and samples[index].sentence == fresh.sentence


ALL_CANDIDATES = ["randaugment", "elastic", "grid_distortion", "random_erasing"]


def _assert_box_on_its_mask(sample) -> None:
    """The target box, in letterbox pixels, holds at least 90 % of the sample's (moved) mask."""
    cx, cy, w, h = sample.target.tolist()
    assert 0 <= cx <= 0.99 and w > 0 and h > 0
    x0, y0 = int((cx - w / 2) * 96), int((cy - h / 2) * 96)
    x1, y1 = int((cx + w / 2) * 96) + 1, int((cy + h / 2) * 96) + 1
    inside = sample.mask[0, y0:y1, x0:x1].sum()
    assert inside >= 0.9 * sample.mask.sum()


def test_candidate_augmentations_keep_the_box_on_the_object(synthetic_root: Path) -> None:
    dataset = _dataset(synthetic_root, "train", training=True, augmentations=ALL_CANDIDATES)
    for index in range(12):
        _assert_box_on_its_mask(dataset[index])


def test_grouped_augmentation_moves_every_object_of_the_image_together(synthetic_root: Path) -> None:
    plain, augmented = _grouped(synthetic_root), _grouped(synthetic_root, augmentations=ALL_CANDIDATES)
    moved = 0
    for number in range(len(plain)):
        before, after = plain[number], augmented[number]
        assert [sample.index for sample in after] == [sample.index for sample in before]
        assert all(sample.image is after[0].image for sample in after)  # still one image for the backbone
        for sample in after:
            _assert_box_on_its_mask(sample)
        if any(not torch.equal(a.target, b.target) for a, b in zip(before, after, strict=True)):
            moved += 1
    assert moved > 0  # the geometric candidates did move boxes


def test_collate_and_resize_batch(synthetic_root: Path) -> None:
    dataset = _dataset(synthetic_root)
    batch = collate_samples([dataset[i] for i in range(4)])
    assert batch.images.shape == (4, 3, 96, 96) and batch.indices.tolist() == [0, 1, 2, 3]
    assert batch.infos.shape == (4, 8) and batch.infos.dtype == torch.float64
    small = resize_batch(batch, (64, 64))
    assert small.images.shape == (4, 3, 64, 64) and small.masks.shape == (4, 1, 64, 64)
    assert torch.equal(small.targets, batch.targets)
    cx, cy, w, h = (small.targets[0] * 64).tolist()
    box = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    np.testing.assert_allclose(
        boxes_to_original(box, small.infos[:1])[0].numpy(), _target_box_in_original(dataset[0]), atol=1e-3
    )
    assert batch.to("cpu").images.data_ptr() == batch.images.data_ptr()


def test_mean_std_normalization(synthetic_root: Path) -> None:
    settings = _settings(synthetic_root)
    vocab = load_vocabulary(settings)
    plain = RefDataset(settings, "val", vocab, training=False, load_masks=False)[0]
    norm = RefDataset(settings, "val", vocab, training=False, load_masks=False, mean=(0.5,) * 3, std=(0.25,) * 3)[0]
    assert torch.allclose(norm.image, (plain.image - 0.5) / 0.25)
    assert plain.mask is None


def test_missing_inputs_name_the_prepare_command(tmp_path: Path, synthetic_root: Path) -> None:
    settings = DatasetSettings(name="refcoco", data_root=tmp_path)
    vocab = Vocabulary.from_list(["PAD", "UNK", "CLS"])
    with pytest.raises(SimrecError, match=r"refcoco\.json does not exist") as error:
        RefDataset(settings, "val", vocab, training=False, load_masks=False)
    assert "simrec prepare-data --dataset refcoco" in error.value.hint
    with pytest.raises(SimrecError, match=r"vocabulary .* does not exist"):
        load_vocabulary(settings)
    with pytest.raises(SimrecError, match="split 'testA' is not in"):
        RefDataset(_settings(synthetic_root), "val+testA", vocab, training=False, load_masks=False)


def test_unreadable_image_is_one_clear_error(tmp_path: Path, synthetic_root: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    dataset = _dataset(root)
    dataset.image_path(0).write_bytes(b"not a jpeg")
    with pytest.raises(SimrecError, match="cannot be decoded"):
        dataset[0]
    dataset.image_path(0).unlink()
    with pytest.raises(SimrecError, match="does not exist"):
        dataset[0]


def test_load_embedding_sources(tmp_path: Path, refer: ReferFixture) -> None:
    glove = tmp_path / "glove.txt"
    glove.write_text("man 1 2\nred 3 4\n")
    prepare_dataset("refcoco", refer.root, word_vectors=str(glove))
    settings = DatasetSettings(name="refcoco", data_root=refer.root)
    vocab = load_vocabulary(settings)
    matrix = load_embedding(settings, vocab)
    assert matrix.shape == (len(vocab), 2)
    np.testing.assert_array_equal(matrix[vocab.words.index("red")], [3, 4])
    assert load_embedding(settings.model_copy(update={"use_glove": False}), vocab) is None
    prepare_dataset("refcoco", refer.root)  # same vocabulary: the saved vectors stay valid
    assert settings.resolved_vectors_path().is_file()
    settings.resolved_vectors_path().unlink()
    reporter = NullReporter()
    assert load_embedding(settings, vocab, reporter) is None
    assert "random and trainable" in reporter.warnings[0]
    direct = load_embedding(settings.model_copy(update={"word_vectors": str(glove)}), vocab)
    np.testing.assert_array_equal(direct, matrix)
