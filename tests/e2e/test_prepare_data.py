"""`simrec prepare-data` run as a user runs it, on data the tests generate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from simrec_cli.cli import app
from tests.e2e.conftest import train_args
from tests.json_fixture import write_flickr, write_vg
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


def test_flickr_vg_and_merge_from_download_to_first_epoch(tmp_path: Path) -> None:
    """Each given file is read, the merge of both is built, and a model trains and evaluates on it."""
    data = tmp_path / "data"
    flickr = write_flickr(data, tmp_path / "downloads" / "flickr.json")
    vg = write_vg(data, tmp_path / "downloads" / "vg.json")
    for dataset, option, path in (("flickr", "--flickr", flickr.path), ("vg", "--vg", vg.path)):
        result = runner.invoke(app, ["prepare-data", "--dataset", dataset, "--data-root", str(data), option, str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads((data / "anns" / f"{dataset}.json").read_text()) == json.loads(path.read_text())
    result = runner.invoke(app, ["prepare-data", "--dataset", "merge", "--data-root", str(data),
                                 "--flickr", str(flickr.path), "--vg", str(vg.path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = json.loads((data / "anns" / "merge.json").read_text())
    assert {entry["data_source"] for entry in merged["train"]} == {"flickr", "vg"}
    run_dir = tmp_path / "run"
    result = runner.invoke(app, [*train_args(data, run_dir, "dataset.name=merge", "train.batch_size=2",
                                             "train.epochs=1", "train.warmup_epochs=0")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (run_dir / "best.pth").is_file()


def test_training_on_a_root_without_the_images_says_where_they_belong(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vg = write_vg(data, tmp_path / "vg.json")
    result = runner.invoke(app, ["prepare-data", "--dataset", "merge", "--data-root", str(data), "--vg", str(vg.path)])
    assert result.exit_code == 0, result.output
    shutil.rmtree(data / "images" / "VG")
    result = runner.invoke(app, train_args(data, tmp_path / "run", "dataset.name=merge"))
    assert result.exit_code == 2
    error = " ".join(result.output.split())
    assert f"image folder {data / 'images' / 'VG'} does not exist" in error
    assert f"put the Visual Genome images (the folders VG_100K/ and VG_100K_2/, which each entry's url names) into " \
           f"{data / 'images' / 'VG'}/" in error  # fmt: skip
    assert "prepare-data" not in error  # prepare-data writes no images: naming it again would fix nothing
    assert not (tmp_path / "run").exists()


def test_unused_options_are_refused_in_one_line(tmp_path: Path) -> None:
    flickr = write_flickr(tmp_path, tmp_path / "anns" / "flickr.json")
    for args, named in (
        (["--dataset", "flickr", "--vg", str(flickr.path)], "--vg is for vg and merge; flickr does not read it"),
        (["--dataset", "merge", "--generate-mask"], "--generate-mask is for refcoco"),
        (["--dataset", "flickr", "--seed", "1"], "--seed is for synthetic; flickr does not read it"),
    ):
        result = runner.invoke(app, ["prepare-data", "--data-root", str(tmp_path), *args])
        assert result.exit_code == 2 and named in " ".join(result.output.split()), result.output
    assert sorted(path.name for path in (tmp_path / "anns").iterdir()) == ["flickr.json"]
