"""`simrec predict` run as a user runs it: every source kind, the JSON schema, pictures, masks, odd images,
OOV warnings and each bad input (a trained checkpoint finding the described objects: test_trained_checkpoint.py)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.predict.predictor import JSON_FIELDS
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint

EXIF_ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6


def run(*args: object) -> object:
    """The CLI in-process, with stdout and stderr kept apart (JSON lines go to stdout only)."""
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


def json_lines(result: object) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", tiny_settings())


@pytest.fixture(scope="module")
def mcn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "mcn.pth", tiny_settings("model.name=mcn"))


def photo(path: Path, width: int = 400, height: int = 300, **options: object) -> Path:
    pixels = np.random.default_rng(width * height).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **options)
    return path


def assert_inside(record: dict) -> None:
    x1, y1, x2, y2 = record["box"]
    assert 0 <= x1 <= x2 <= record["width"] and 0 <= y1 <= y2 <= record["height"]
    assert 0.0 <= record["score"] <= 1.0


def test_one_image_several_expressions_table_and_picture(checkpoint: Path, tmp_path: Path) -> None:
    image = photo(tmp_path / "street.jpg")
    result = run(
        "predict", image, "the big red circle", "the small blue square", "-c", checkpoint, "-o", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    assert "the big red circle" in result.stdout and "the small blue square" in result.stdout
    assert "2 answers, 1 of 1 images answered" in result.stdout
    with Image.open(tmp_path / "o" / "street.jpg") as picture:
        assert picture.size == (400, 300)


def test_json_lines_follow_the_documented_schema(checkpoint: Path, tmp_path: Path) -> None:
    image = photo(tmp_path / "a.png")
    result = run(
        "predict", image, "the red circle", "the furry zebra", "-c", checkpoint, "--json", "-o", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    records = json_lines(result)
    assert [record["expression"] for record in records] == ["the red circle", "the furry zebra"]
    for record in records:
        assert tuple(record) == JSON_FIELDS
        assert record["image"] == str(image) and (record["width"], record["height"]) == (400, 300)
        assert record["mask"] is None and record["mask_area"] is None and record["error"] is None
        assert Path(record["picture"]).is_file()
        assert_inside(record)
    assert records[1]["oov_words"] == ["furry", "zebra"]
    assert "furry, zebra" in result.stderr and "the furry zebra" in result.stderr


def test_folder_glob_and_pairs_sources(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ["b.jpg", "a.png", "c.webp"]:
        photo(folder / name, 64 + len(name), 48)
    (folder / "readme.txt").write_text("not an image")
    by_folder = json_lines(run("predict", folder, "the red circle", "-c", checkpoint, "--json", "--no-save"))
    assert [Path(r["image"]).name for r in by_folder] == ["a.png", "b.jpg", "c.webp"]
    by_glob = json_lines(run("predict", folder / "*.jp*g", "the circle", "-c", checkpoint, "--json", "--no-save"))
    assert [Path(r["image"]).name for r in by_glob] == ["b.jpg"]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        json.dumps({"image": "photos/a.png", "expression": "the red circle"})
        + "\n"
        + json.dumps({"image": str(folder / "c.webp"), "expressions": ["the left one", "the blue square"]})
        + "\n"
    )
    by_jsonl = json_lines(run("predict", "--pairs", jsonl, "-c", checkpoint, "--json", "--no-save"))
    assert [(Path(r["image"]).name, r["expression"]) for r in by_jsonl] == [
        ("a.png", "the red circle"), ("c.webp", "the left one"), ("c.webp", "the blue square"),
    ]  # fmt: skip
    table = tmp_path / "pairs.csv"
    with open(table, "w", newline="") as handle:
        csv.writer(handle).writerows([["image", "expression"], ["photos/b.jpg", "the green square"]])
    by_csv = json_lines(run("predict", "--pairs", table, "-c", checkpoint, "--json", "--no-save"))
    assert [(Path(r["image"]).name, r["expression"]) for r in by_csv] == [("b.jpg", "the green square")]


def test_odd_images_are_all_answered(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.new("L", (90, 60), 100).save(folder / "gray.png")
    Image.new("RGBA", (70, 50), (255, 0, 0, 128)).save(folder / "alpha.png")
    Image.fromarray(np.full((40, 30), 40000, np.uint16)).save(folder / "deep.png")
    Image.new("RGB", (1, 1), (5, 5, 5)).save(folder / "dot.bmp")
    rotated = Image.new("RGB", (80, 40), (0, 90, 0))
    exif = rotated.getexif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CLOCKWISE
    rotated.save(folder / "phone.jpg", exif=exif.tobytes())
    Image.new("RGB", (10000, 8000), (30, 60, 90)).save(folder / "huge.jpg", quality=70)
    out = tmp_path / "out"
    result = run("predict", folder, "the red circle", "-c", checkpoint, "--json", "-o", out)
    assert result.exit_code == 0, result.output
    sizes = {Path(r["image"]).name: (r["width"], r["height"]) for r in json_lines(result)}
    assert sizes == {
        "alpha.png": (70, 50), "deep.png": (30, 40), "dot.bmp": (1, 1), "gray.png": (90, 60),
        "huge.jpg": (10000, 8000), "phone.jpg": (40, 80),
    }  # fmt: skip
    for record in json_lines(result):
        assert_inside(record)
    with Image.open(out / "huge.jpg") as picture:
        assert max(picture.size) == 4096
    assert len(list(out.glob("*.jpg"))) == 6


def test_unreadable_images_are_listed_and_the_rest_answered(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("mixed")
    folder.mkdir()
    good = photo(folder / "good.jpg")
    (folder / "fake.png").write_text("this is text")
    (folder / "cut.jpg").write_bytes(good.read_bytes()[:300])
    result = run("predict", folder, "the red circle", "-c", checkpoint, "--json", "--no-save")
    assert result.exit_code == 1
    records = {Path(r["image"]).name: r for r in json_lines(result)}
    assert records["good.jpg"]["error"] is None and records["good.jpg"]["box"] is not None
    assert "not an image" in records["fake.png"]["error"] and records["fake.png"]["box"] is None
    assert "corrupt or truncated" in records["cut.jpg"]["error"]
    assert "2 of 3 images could not be read" in result.stderr
    table = run("predict", folder, "the red circle", "-c", checkpoint, "--no-save")
    assert table.exit_code == 1 and "mixed/cut.jpg" in table.stdout and "mixed/good.jpg" in table.stdout
    assert "1 of 3 images answered" in table.stdout


def test_long_paths_and_expressions_are_cut_in_the_middle_never_the_numbers(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    folder = tmp_path / ("a folder with a rather long name " * 2).strip() / "and another level of folders"
    folder.mkdir(parents=True)
    image = photo(folder / "the_photo_of_the_kitchen.jpg")
    expression = "the big red circle on the left of the small blue square near the top of the picture"
    result = run("predict", image, expression, "-c", checkpoint, "--json")
    box = json_lines(result)[0]["box"]
    table = run("predict", image, expression, "-c", checkpoint, "--no-save")
    assert table.exit_code == 0, table.output
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    (row,) = [line for line in table.stdout.splitlines() if line.startswith("│")]
    image_cell, expression_cell, box_cell, score_cell = (cell.strip() for cell in row.split("│")[1:5])
    assert image_cell.startswith(str(tmp_path)[:4]) and image_cell.endswith(".jpg") and "…" in image_cell
    assert expression_cell.startswith("the big") and expression_cell.endswith("picture") and "…" in expression_cell
    assert box_cell == ", ".join(f"{value:.1f}" for value in box) and re.fullmatch(r"\d\.\d{3}", score_cell)


def test_mask_model_writes_masks_and_their_areas(mcn_checkpoint: Path, tmp_path: Path) -> None:
    """Into the image's own folder: the image is kept, the picture and the masks take the next free name."""
    image = photo(tmp_path / "m.jpg", 120, 80)
    original = image.read_bytes()
    result = run("predict", image, "the red circle", "the blue square", "-c", mcn_checkpoint, "--json", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert image.read_bytes() == original
    for number, record in enumerate(json_lines(result), 1):
        mask = np.asarray(Image.open(record["mask"]))
        assert record["picture"] == str(tmp_path / "m_2.jpg")
        assert record["mask"] == str(tmp_path / f"m_2_mask{number}.png")
        assert mask.shape == (80, 120) and record["mask_area"] == int((mask == 255).sum())
    table = run("predict", image, "the red circle", "-c", mcn_checkpoint, "--no-save")
    assert "mask area" in table.stdout


def test_default_output_dirs_are_numbered_and_no_save_writes_nothing(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    image = photo(tmp_path / "p.jpg")
    assert run("predict", image, "the circle", "-c", checkpoint, "--no-save").exit_code == 0
    assert not (tmp_path / "runs").exists()
    for _ in range(2):
        assert run("predict", image, "the circle", "-c", checkpoint).exit_code == 0
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["predict", "predict2"]
    assert (tmp_path / "runs" / "predict2" / "p.jpg").is_file()


def test_without_checkpoint_the_newest_best_is_used_and_named(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    image = photo(tmp_path / "p.jpg")
    missing = run("predict", image, "the circle")
    assert missing.exit_code == 2 and "no best.pth found under runs/" in missing.stderr
    assert "simrec train" in missing.stderr
    for name, stamp in [("old", 1_000_000_000), ("new", 2_000_000_000)]:
        target = tmp_path / "runs" / name / "best.pth"
        target.parent.mkdir(parents=True)
        shutil.copy(checkpoint, target)
        os.utime(target, (stamp, stamp))
    result = run("predict", image, "the circle", "--no-save")
    assert result.exit_code == 0, result.output
    assert f"using checkpoint {Path('runs/new/best.pth')}" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["IMAGE", "  "], "expression 1: expected a non-empty expression"),
        (["IMAGE", "?!"], "has no words"),
        (["IMAGE"], "no expression given"),
        ([], "no image given"),
        (["MISSING", "the dog"], "does not exist"),
        (["LOOP", "the dog"], "is a symbolic link loop"),
        (["IMAGE", "the dog", "--pairs", "PAIRS"], "not both"),
        (["IMAGE", "the dog", "-o", "IMAGE/sub"], "cannot write the predictions"),
        (["IMAGE", "the dog", "-b", "0"], "--batch-size"),
    ],
)
def test_bad_requests_are_one_line_errors(checkpoint: Path, tmp_path: Path, arguments: list[str], message: str) -> None:
    image = photo(tmp_path / "p.jpg")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"image": "p.jpg", "expression": "the dog"}\n')
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)  # issue 22 #19: it was reported as missing
    names = {"IMAGE": str(image), "MISSING": str(tmp_path / "nope.jpg"), "PAIRS": str(pairs), "LOOP": str(loop)}
    resolved = [names.get(arg, arg.replace("IMAGE", str(image))) for arg in arguments]
    result = run("predict", *resolved, "-c", checkpoint)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_an_expression_that_names_an_image_is_warned_about(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22 #32: `simrec predict a.jpg b.jpg` answered the expression "b.jpg" on a.jpg without a word."""
    photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")
    monkeypatch.chdir(tmp_path)
    result = run("predict", "a.jpg", "b.jpg", "--no-save", "-c", checkpoint)
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "the expression 'b.jpg' is the path of an image" in warning and "glob pattern" in warning
    plain = run("predict", "a.jpg", "the dog", "missing.jpg", "--no-save", "-c", checkpoint)
    assert plain.exit_code == 0 and "path of an image" not in plain.output


def test_wrong_checkpoints_are_refused(tmp_path: Path) -> None:
    image = photo(tmp_path / "p.jpg")
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, bare)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    for path, message in [(bare, "bare model weights"), (text, "not a readable checkpoint")]:
        result = run("predict", image, "the dog", "-c", path)
        assert result.exit_code == 2 and message in result.stderr
