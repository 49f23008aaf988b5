"""Pictures: boxes and masks land where the answers are, at a bounded size, for any image size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simrec_cli.drawing import (
    PALETTE,
    PICTURE_MAX_SIDE,
    PICTURE_MIN_SIDE,
    Annotation,
    draw_annotations,
    picture_base,
)
from simrec_cli.predict.output import OutputFolder


def _grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def test_box_outline_is_drawn_in_the_first_colour() -> None:
    image = _grey(400, 600)
    picture = np.asarray(draw_annotations(picture_base(image), [Annotation("the thing", (100, 200, 300, 350), 0.9)]))
    assert picture.shape == (400, 600, 3)
    assert picture[275, 100].tolist() == list(PALETTE[0])  # left edge, below the label
    assert picture[275, 200].tolist() == [128, 128, 128]  # inside stays untouched
    assert image[275, 100].tolist() == [128, 128, 128]  # the input array is not drawn on


def test_mask_is_tinted_with_its_expression_colour() -> None:
    mask = np.zeros((400, 600), bool)
    mask[300:380, 400:580] = True
    annotations = [Annotation("a", (0, 0, 10, 10), 0.5), Annotation("b", (400, 300, 580, 380), 0.7, mask)]
    picture = np.asarray(draw_annotations(picture_base(_grey(400, 600)), annotations))
    tinted = picture[340, 490].astype(int)
    expected = np.round(128 * 0.55 + np.asarray(PALETTE[1]) * 0.45)
    assert np.abs(tinted - expected).max() <= 1
    assert picture[100, 300].tolist() == [128, 128, 128]


def test_huge_image_is_drawn_at_the_maximum_side_with_scaled_boxes() -> None:
    base = picture_base(_grey(8000, 10000))
    assert base.pixels.shape[:2] == (round(8000 * PICTURE_MAX_SIDE / 10000), PICTURE_MAX_SIDE)
    picture = np.asarray(draw_annotations(base, [Annotation("x", (5000, 4000, 9000, 7000), 1.0)]))
    scale = PICTURE_MAX_SIDE / 10000
    assert picture[round(5500 * scale), round(9000 * scale) - 1].tolist() == list(PALETTE[0])


def test_tiny_image_is_enlarged_and_a_degenerate_box_does_not_fail() -> None:
    base = picture_base(_grey(1, 1))
    assert base.pixels.shape == (PICTURE_MIN_SIDE, PICTURE_MIN_SIDE, 3)
    picture = draw_annotations(base, [Annotation("dot", (1, 1, 0, 0), 0.1), Annotation("all", (0, 0, 1, 1), 0.2)])
    assert picture.size == (PICTURE_MIN_SIDE, PICTURE_MIN_SIDE)
    assert np.asarray(picture)[PICTURE_MIN_SIDE - 1, PICTURE_MIN_SIDE // 2].tolist() == list(PALETTE[1])


def test_output_folder_names_are_unique_and_files_complete(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    mask = np.zeros((10, 20), bool)
    mask[2:5, 3:9] = True
    picture_path, (mask_path,) = folder.save(Path("a/photo.jpg"), Image.new("RGB", (20, 10)), [mask])
    assert picture_path is not None and picture_path.name == "photo.jpg" and Image.open(picture_path).size == (20, 10)
    saved = np.asarray(Image.open(mask_path))
    assert mask_path.name == "photo_mask1.png" and saved.dtype == np.uint8
    assert ((saved == 255) == mask).all()
    names = [folder.save(Path(name), Image.new("RGB", (4, 4)), [])[0] for name in ["b/photo.png", "photo_2.jpg", "x"]]
    assert [path.name for path in names if path is not None] == ["photo_2.jpg", "photo_2_2.jpg", "x.jpg"]
    assert len(list((tmp_path / "out").iterdir())) == 5


def test_a_name_taken_after_the_folder_was_looked_at_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writes photo.jpg and photo_2_mask1.png between this one's look at the folder and its write
    (the look is made to miss them): both stay, and the image's files go under the first stem free of both."""
    folder = OutputFolder(tmp_path)
    (tmp_path / "photo.jpg").write_bytes(b"another process's picture")
    (tmp_path / "photo_2_mask1.png").write_bytes(b"another process's mask")
    monkeypatch.setattr(OutputFolder, "_in_folder", lambda self, stem, masks: False)
    picture, masks = folder.save(Path("photo.jpg"), Image.new("RGB", (4, 4)), [np.ones((4, 4), bool)])
    assert picture == tmp_path / "photo_3.jpg" and masks == [tmp_path / "photo_3_mask1.png"]
    assert (tmp_path / "photo.jpg").read_bytes() == b"another process's picture"
    assert (tmp_path / "photo_2_mask1.png").read_bytes() == b"another process's mask"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "photo.jpg", "photo_2_mask1.png", "photo_3.jpg", "photo_3_mask1.png"
    ]  # fmt: skip


def test_labels_of_answers_sharing_a_box_do_not_cover_each_other() -> None:
    box = (100.0, 100.0, 300.0, 300.0)
    annotations = [Annotation("aaa", box, 0.5), Annotation("bbb", box, 0.5)]
    picture = np.asarray(draw_annotations(picture_base(_grey(400, 400)), annotations))
    first_colour = (picture == np.asarray(PALETTE[0])).all(axis=2)
    # The second outline covers the first; only a visible first label strip can show the first colour.
    assert first_colour.sum() > 200
    assert first_colour[:100].sum() > 200
