"""flickr/vg: the given JSON is read, validated and registered; merge is built with the evaluation images removed;
for all three every image is looked for before anything is written, and options they do not read are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simrec_cli.data.images import image_file
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.errors import SimrecError
from tests.json_fixture import write_flickr, write_merge, write_vg
from tests.refer_fixture import ReferFixture


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")}


def test_flickr_reads_the_given_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    flickr = write_flickr(data, tmp_path / "downloads" / "flickr.json")
    summary = prepare_dataset("flickr", data, flickr=flickr.path)
    assert summary.ann_path == data / "anns" / "flickr.json"
    assert json.loads(summary.ann_path.read_text()) == flickr.anns
    expressions = {split: sum(len(entry["refs"]) for entry in entries) for split, entries in flickr.anns.items()}
    assert {split: counts.expressions for split, counts in summary.splits.items()} == expressions


def test_flickr_reads_anns_by_default_and_validates_it(tmp_path: Path) -> None:
    flickr = write_flickr(tmp_path, tmp_path / "anns" / "flickr.json")
    summary = prepare_dataset("flickr", tmp_path)
    assert summary.splits["val"].images == 1 and summary.vocab_size > 3
    broken = {"train": [flickr.anns["train"][0], {"iid": 1, "bbox": [0, 0, -1, 2], "refs": ["x"]}]}
    _write(flickr.path, broken)
    problem = r"entry #1 of split 'train', field bbox: expected a box with a positive width and height, found \[0, 0,"
    with pytest.raises(SimrecError, match=problem):
        prepare_dataset("flickr", tmp_path)


def test_a_missing_default_file_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"anns/flickr\.json does not exist") as error:
        prepare_dataset("flickr", tmp_path)
    assert "--flickr FILE" in error.value.hint and "prepare-data" not in error.value.hint
    with pytest.raises(SimrecError, match=r"elsewhere\.json does not exist") as error:
        prepare_dataset("vg", tmp_path, vg=tmp_path / "elsewhere.json")
    assert "--vg" in error.value.hint and "prepare-data" not in error.value.hint
    assert not (tmp_path / "anns").exists()


def test_missing_flickr_images_are_found_before_anything_is_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    flickr = write_flickr(data, tmp_path / "flickr.json")
    flickr.images[1].unlink()
    flickr.images[3].unlink()
    before = _files(tmp_path)
    with pytest.raises(SimrecError, match="2 of 5 images are missing") as error:
        prepare_dataset("flickr", data, flickr=flickr.path)
    removed = {int(flickr.images[1].stem): flickr.images[1], int(flickr.images[3].stem): flickr.images[3]}
    first = next(removed[e["iid"]] for entries in flickr.anns.values() for e in entries if e["iid"] in removed)
    assert f"(first: {first}, for entry" in error.value.message  # in file order, the path training would read
    assert f"Flickr30k images (flickr30k-images/<id>.jpg) into {data / 'images' / 'flickr'}/" in error.value.hint
    assert "--skip-missing" in error.value.hint
    assert _files(tmp_path) == before
    summary = prepare_dataset("flickr", data, flickr=flickr.path, skip_invalid=True)
    written = json.loads(summary.ann_path.read_text())
    kept = {entry["iid"] for entries in written.values() for entry in entries}
    assert kept == {int(path.stem) for path in flickr.images if path.exists()}
    assert any("left out the entries of 2 of 5 images" in warning for warning in summary.warnings)


def test_vg_images_are_read_at_their_url(tmp_path: Path) -> None:
    vg = write_vg(tmp_path, tmp_path / "downloads" / "vg.json")
    summary = prepare_dataset("vg", tmp_path, vg=vg.path)
    assert summary.splits["train"].images == 4 and summary.splits["val"].images == 1
    entry = vg.anns["train"][0]
    assert image_file("vg", entry, tmp_path / "images" / "VG") == tmp_path / "images" / "VG" / entry["url"]
    vg.images[0].unlink()
    with pytest.raises(SimrecError, match=r"1 of 5 images are missing \(first: .*VG_100K_2/2300000\.jpg") as error:
        prepare_dataset("vg", tmp_path, vg=vg.path)
    assert "Visual Genome images (the folders VG_100K/ and VG_100K_2/" in error.value.hint


def test_no_image_at_all_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    flickr = write_flickr(tmp_path / "data", tmp_path / "flickr.json")
    for image in flickr.images:
        image.unlink()
    with pytest.raises(SimrecError, match=r"none of the images exists \(5 looked for") as error:
        prepare_dataset("flickr", tmp_path / "data", flickr=flickr.path, skip_invalid=True)
    assert error.value.hint.startswith("put the Flickr30k images")


def test_merge_removes_refcoco_evaluation_images(refer: ReferFixture, tmp_path: Path) -> None:
    prepare_dataset("refcoco", refer.root)
    refcoco = json.loads((refer.root / "anns" / "refcoco.json").read_text())
    anns = json.loads((refer.root / "anns" / "refcoco.json").read_text())
    held_out = anns["val"][0]["iid"]
    anns["train"].append({**anns["train"][0], "iid": held_out, "mask_id": 999})  # leak an evaluation image
    _write(refer.root / "anns" / "refcoco.json", anns)
    flickr = write_flickr(refer.root, tmp_path / "flickr.json")
    summary = prepare_dataset("merge", refer.root, flickr=flickr.path)
    assert summary.removed_images == 1
    merged = json.loads((refer.root / "anns" / "merge.json").read_text())
    assert held_out not in {e["iid"] for e in merged["train"] if e["data_source"] == "coco"}
    assert len(merged["train"]) == len(refcoco["train"]) + len(flickr.anns["train"])
    assert {e["data_source"] for e in merged["train"]} == {"coco", "flickr"}
    coco_entry = next(e for e in merged["train"] if e["data_source"] == "coco")
    path = image_file("merge", coco_entry, refer.root / "images")
    assert path == refer.image_dir / f"COCO_train2014_{coco_entry['iid']:012d}.jpg"
    again = prepare_dataset("merge", refer.root)  # an existing merge.json is validated, not rebuilt
    assert again.splits["train"].expressions == summary.splits["train"].expressions


def test_merge_finds_missing_images_of_every_source(refer: ReferFixture, tmp_path: Path) -> None:
    prepare_dataset("refcoco", refer.root)
    vg = write_vg(tmp_path / "elsewhere", tmp_path / "vg.json")  # the VG images are not under the data root
    with pytest.raises(SimrecError, match=r"5 of \d+ images are missing \(first: .*images/VG/VG_100K") as error:
        prepare_dataset("merge", refer.root, vg=vg.path)
    assert f"into {refer.root / 'images' / 'VG'}/" in error.value.hint
    assert not (refer.root / "anns" / "merge.json").exists()
    summary = prepare_dataset("merge", refer.root, vg=vg.path, skip_invalid=True)
    merged = json.loads(summary.ann_path.read_text())
    assert {entry["data_source"] for entries in merged.values() for entry in entries} == {"coco"}


def test_downloaded_merge_json_images_are_checked(tmp_path: Path) -> None:
    merge = write_merge(tmp_path, tmp_path / "anns" / "merge.json")
    summary = prepare_dataset("merge", tmp_path)
    assert summary.splits["train"].images == 3 and summary.splits["val"].images == 1
    merge.images[2].unlink()  # images/VG/61.jpg
    with pytest.raises(SimrecError, match=r"1 of 4 images are missing \(first: .*images/VG/61\.jpg"):
        prepare_dataset("merge", tmp_path)


def test_merge_with_nothing_to_merge(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="nothing to merge"):
        prepare_dataset("merge", tmp_path)


def test_merge_names_the_missing_input_not_another_prepare(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"missing\.json does not exist") as error:
        prepare_dataset("merge", tmp_path, flickr=tmp_path / "missing.json")
    assert "--flickr" in error.value.hint and "prepare-data" not in error.value.hint


@pytest.mark.parametrize(
    ("dataset", "options", "named"),
    [
        ("vg", {"flickr": Path("flickr.json")}, "--flickr is for flickr and merge; vg does not read it"),
        ("flickr", {"vg": Path("vg.json")}, "--vg is for vg and merge; flickr does not read it"),
        (
            "merge",
            {"generate_mask": True},
            "--generate-mask is for refcoco, refcoco+, refcocog, refclef and synthetic; "
            "merge does not read it (flickr, vg and merge have boxes only, no masks)",
        ),
        ("flickr", {"split_by": "unc"}, "--split-by is for refcoco, refcoco+, refcocog and refclef; flickr"),
        ("refcoco", {"vg": Path("vg.json")}, "--vg is for vg and merge; refcoco does not read it"),
        ("vg", {"seed": 3}, "--seed is for synthetic; vg does not read it"),
        ("synthetic", {"skip_invalid": True}, "--skip-missing is for refcoco, .* and merge; synthetic"),
    ],
)
def test_options_a_dataset_does_not_read_are_refused(tmp_path: Path, dataset: str, options: dict, named: str) -> None:
    with pytest.raises(SimrecError) as error:
        prepare_dataset(dataset, tmp_path, **options)
    assert re.match(re.escape(named).replace(r"\.\*", ".*"), error.value.message), error.value.message
    assert error.value.hint.startswith("leave --")
    assert not any(tmp_path.iterdir())


def test_simrec_merge_json_image_names(tmp_path: Path) -> None:
    root = tmp_path / "images"
    assert image_file("merge", {"iid": "123.jpg", "data_source": "coco"}, root) == (
        root / "coco" / "COCO_train2014_000000000123.jpg"
    )
    assert image_file("merge", {"iid": "x.jpg", "data_source": "vg", "url": "VG_100K/1.jpg"}, root) == (
        root / "VG" / "VG_100K" / "1.jpg"
    )
    assert image_file("referit", {"iid": 7}, root) == root / "7.jpg"
