"""flickr/vg JSONs are validated and registered; merge is built with the evaluation images removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simrec_cli.data.images import image_file
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.errors import SimrecError
from tests.refer_fixture import ReferFixture


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


FLICKR = {
    "train": [{"iid": 5, "bbox": [1, 2, 3, 4], "cat_id": 0, "refs": ["a dog", "the dog"], "mask_id": 0}],
    "val": [{"iid": 6, "bbox": [1, 2, 3, 4], "cat_id": 0, "refs": ["a cat"], "mask_id": 1}],
}


def test_flickr_json_is_validated_and_registered(tmp_path: Path) -> None:
    _write(tmp_path / "anns" / "flickr.json", FLICKR)
    summary = prepare_dataset("flickr", tmp_path)
    assert summary.splits["train"].expressions == 2 and summary.vocab_size == 3 + 4  # a, dog, the, cat
    bad = {"train": [FLICKR["train"][0], {"iid": 1, "bbox": [0, 0, -1, 2], "refs": ["x"]}]}
    _write(tmp_path / "anns" / "flickr.json", bad)
    problem = r"entry #1 of split 'train', field bbox: expected a box with a positive width and height, found \[0, 0,"
    with pytest.raises(SimrecError, match=problem):
        prepare_dataset("flickr", tmp_path)
    with pytest.raises(SimrecError, match=r"flickr\.json does not exist"):
        prepare_dataset("flickr", tmp_path / "nowhere")


def test_merge_removes_refcoco_evaluation_images(refer: ReferFixture, tmp_path: Path) -> None:
    prepare_dataset("refcoco", refer.root)
    refcoco = json.loads((refer.root / "anns" / "refcoco.json").read_text())
    anns = json.loads((refer.root / "anns" / "refcoco.json").read_text())
    held_out = anns["val"][0]["iid"]
    anns["train"].append({**anns["train"][0], "iid": held_out, "mask_id": 999})  # leak an evaluation image
    _write(refer.root / "anns" / "refcoco.json", anns)
    flickr = _write(tmp_path / "flickr.json", FLICKR)
    summary = prepare_dataset("merge", refer.root, flickr=flickr)
    assert summary.removed_images == 1
    merged = json.loads((refer.root / "anns" / "merge.json").read_text())
    assert held_out not in {e["iid"] for e in merged["train"] if e["data_source"] == "coco"}
    assert len(merged["train"]) == len(refcoco["train"]) + 1
    sources = {e["data_source"] for e in merged["train"]}
    assert sources == {"coco", "flickr"}
    coco_entry = next(e for e in merged["train"] if e["data_source"] == "coco")
    path = image_file("merge", coco_entry, refer.root / "images")
    assert path == refer.image_dir / f"COCO_train2014_{coco_entry['iid']:012d}.jpg"
    again = prepare_dataset("merge", refer.root)  # an existing merge.json is validated, not rebuilt
    assert again.splits["train"].expressions == summary.splits["train"].expressions


def test_merge_with_nothing_to_merge(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="nothing to merge"):
        prepare_dataset("merge", tmp_path)


def test_simrec_merge_json_image_names(tmp_path: Path) -> None:
    root = tmp_path / "images"
    assert image_file("merge", {"iid": "123.jpg", "data_source": "coco"}, root) == (
        root / "coco" / "COCO_train2014_000000000123.jpg"
    )
    assert image_file("merge", {"iid": "x.jpg", "data_source": "vg", "url": "VG_100K/1.jpg"}, root) == (
        root / "VG" / "VG_100K" / "1.jpg"
    )
    assert image_file("referit", {"iid": 7}, root) == root / "7.jpg"
