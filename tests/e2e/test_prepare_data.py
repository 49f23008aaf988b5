"""`simrec prepare-data` run as a user runs it, on data the tests generate."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from simrec_cli.cli import app
from tests.refer_fixture import write_refer_fixture

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
runner = CliRunner()


def test_synthetic_prepare_prints_the_split_table(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "--dataset",
            "synthetic",
            "--data-root",
            str(tmp_path),
            "--num-images",
            "20",
            "--image-size",
            "96",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for word in ("train", "val", "test", "images", "objects", "expressions", "vocabulary"):
        assert word in result.output
    anns = json.loads((tmp_path / "anns" / "synthetic.json").read_text())
    assert len({e["iid"] for e in anns["train"]}) == 16
    assert (tmp_path / "images" / "synthetic" / "000019.jpg").is_file()
    assert (tmp_path / "masks" / "synthetic.rle.json").is_file()


def test_refcoco_with_masks_and_vectors(tmp_path: Path) -> None:
    fixture = write_refer_fixture(tmp_path / "data", num_images=8)
    glove = tmp_path / "glove.txt"
    glove.write_text("man 0.1 0.2\ncar 0.3 0.4\n")
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "--dataset",
            "refcoco",
            "--data-root",
            str(fixture.root),
            "--generate-mask",
            "--word-vectors",
            str(glove),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "10,834" in result.output  # the published val count is shown beside ours
    assert "warning" in result.output and "published refcoco (unc) split has 10834" in result.output
    assert (fixture.root / "anns" / "refcoco.vectors.npy").is_file()
    assert (fixture.root / "masks" / "refcoco.rle.json").is_file()


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prepare-data", "--dataset", "refcoco", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert f"REFER folder {tmp_path / 'refcoco'} does not exist" in " ".join(result.output.split())
    assert "reads instances.json and refs(unc).p from it" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    fixture = write_refer_fixture(tmp_path / "d", num_images=4)
    result = runner.invoke(
        app, ["prepare-data", "--dataset", "refcoco", "--data-root", str(fixture.root), "--split-by", "berkeley"]
    )
    assert result.exit_code == 2 and "--split-by berkeley does not exist for refcoco" in result.output
    result = runner.invoke(app, ["prepare-data", "--dataset", "imagenet", "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown dataset 'imagenet'" in result.output
