"""Reading images as people have them: formats, bit depths, alpha, EXIF rotation, and broken files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from simrec_cli.errors import SimrecError
from simrec_cli.predict.images import read_image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6


def _quadrants(height: int = 40, width: int = 60) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: orientation is visible."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = (255, 0, 0)
    image[: height // 2, width // 2 :] = (0, 255, 0)
    image[height // 2 :, : width // 2] = (0, 0, 255)
    image[height // 2 :, width // 2 :] = (255, 255, 255)
    return image


@pytest.mark.parametrize(("suffix", "tolerance"), [(".png", 0), (".bmp", 0), (".webp", 0), (".jpg", 40)])
def test_common_formats_decode_to_rgb(tmp_path: Path, suffix: str, tolerance: int) -> None:
    path = tmp_path / f"quadrants{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(_quadrants()).save(path, **options)
    image = read_image(path)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert np.abs(image[5, 5].astype(int) - (255, 0, 0)).max() <= tolerance
    assert np.abs(image[35, 55].astype(int) - (255, 255, 255)).max() <= tolerance


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray(np.full((8, 9), 77, np.uint8), mode="L").save(path)
    image = read_image(path)
    assert image.shape == (8, 9, 3)
    assert (image == 77).all()


def test_sixteen_bit_gray_keeps_its_brightness(tmp_path: Path) -> None:
    path = tmp_path / "gray16.png"
    values = np.array([[0, 32768, 65535]], np.uint16)
    cv2.imwrite(str(path), values)
    image = read_image(path)
    assert image[0, :, 0].tolist() == [0, 128, 255]


def test_sixteen_bit_colour_reads_the_high_byte(tmp_path: Path) -> None:
    path = tmp_path / "rgb16.png"
    rgb = np.zeros((4, 4, 3), np.uint16)
    rgb[..., 0] = 65535
    rgb[..., 2] = 256 * 100
    cv2.imwrite(str(path), rgb[..., ::-1])
    image = read_image(path)
    assert image[0, 0].tolist() == [255, 0, 100]


def test_transparent_pixels_are_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(path)
    image = read_image(path)
    assert image[0, 0].tolist() == [200, 0, 0]
    assert image[3, 3].tolist() == [255, 255, 255]


def test_palette_with_transparency_and_cmyk(tmp_path: Path) -> None:
    palette_path = tmp_path / "palette.png"
    palette = Image.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((1, 1), 1)
    palette.info["transparency"] = 0
    palette.save(palette_path, transparency=0)
    image = read_image(palette_path)
    assert image[1, 1].tolist() == [10, 20, 30]
    assert image[0, 0].tolist() == [255, 255, 255]
    cmyk_path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (5, 5), (0, 0, 0, 0)).save(cmyk_path)
    assert read_image(cmyk_path).shape == (5, 5, 3)


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    stored = Image.fromarray(_quadrants(40, 60))
    exif = stored.getexif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CLOCKWISE
    stored.save(path, exif=exif.tobytes(), quality=95)
    image = read_image(path)
    assert image.shape == (60, 40, 3)
    # Turning the stored picture a quarter clockwise puts its red top-left corner at the top right.
    assert np.abs(image[5, 35].astype(int) - (255, 0, 0)).max() < 40
    assert np.abs(image[5, 5].astype(int) - (0, 0, 255)).max() < 40


def test_one_pixel_image(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(path)
    assert read_image(path).tolist() == [[[1, 2, 3]]]


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"nope\.jpg does not exist"):
        read_image(tmp_path / "nope.jpg")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="is a folder"):
        read_image(tmp_path)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list")
    with pytest.raises(SimrecError, match="is not an image"):
        read_image(path)


def test_truncated_jpeg_is_reported_as_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(whole)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(whole.read_bytes()[:400])
    with pytest.raises(SimrecError, match="corrupt or truncated"):
        read_image(broken)
