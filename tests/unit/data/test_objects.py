"""anns/<dataset>.objects.json: every object of each image, written by prepare-data, and its fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simrec_cli.data.objects import image_objects, read_objects, referred_objects
from simrec_cli.data.prepare import COCO_CATEGORY_IDS, prepare_dataset
from simrec_cli.data.synthetic import SHAPES
from simrec_cli.errors import SimrecError
from tests.json_fixture import write_flickr
from tests.refer_fixture import write_refer_fixture


def test_refer_objects_list_every_annotation_of_each_image_with_names(tmp_path: Path) -> None:
    fixture = write_refer_fixture(tmp_path / "data", num_images=6, num_objects=10, unreferred_per_image=3)
    summary = prepare_dataset("refcoco", fixture.root)
    objects = read_objects(fixture.root / "anns" / "refcoco.objects.json")
    assert summary.objects_path == fixture.root / "anns" / "refcoco.objects.json"
    assert objects.complete
    for image in fixture.images:
        expected = sorted(
            (*ann["bbox"], COCO_CATEGORY_IDS.index(ann["category_id"]))
            for ann in fixture.annotations
            if ann["image_id"] == image["id"]
        )
        boxes, categories = objects.of(str(image["id"]))
        found = sorted((*box, category) for box, category in zip(boxes.tolist(), categories.tolist(), strict=True))
        assert found == expected
        assert len(expected) > 3  # the unreferred objects are there too
    assert objects.category_names[COCO_CATEGORY_IDS.index(18)] == "category18"


def test_synthetic_objects_include_objects_no_expression_names(synthetic_root: Path) -> None:
    objects = read_objects(synthetic_root / "anns" / "synthetic.objects.json")
    anns = json.loads((synthetic_root / "anns" / "synthetic.json").read_text())
    assert objects.category_names == dict(enumerate(SHAPES))
    referred = referred_objects(anns)
    assert not referred.complete
    for key, boxes in referred.boxes.items():
        known = {tuple(box) for box in objects.of(key)[0].tolist()}
        assert {tuple(box) for box in boxes.tolist()} <= known
        assert 3 <= len(known) <= 5  # a scene holds 3-5 shapes
    assert sum(len(b) for b in objects.boxes.values()) > sum(len(b) for b in referred.boxes.values())


def test_fallback_counts_each_referred_object_once(tmp_path: Path) -> None:
    anns = {
        "val": [
            {"iid": 1, "bbox": [0, 0, 5, 5], "cat_id": 2, "refs": ["a"], "mask_id": 7},
            {"iid": 1, "bbox": [0, 0, 5, 5], "cat_id": 2, "refs": ["b"], "mask_id": 7},
            {"iid": 1, "bbox": [9, 9, 5, 5], "cat_id": 3, "refs": ["c"], "mask_id": 8},
        ],
        "test": [{"iid": 2, "bbox": [1, 1, 2, 2], "cat_id": 0, "refs": ["d"]}],
    }
    objects = image_objects(tmp_path / "missing.objects.json", anns)
    assert not objects.complete
    boxes, categories = objects.of("1")
    assert boxes.tolist() == [[0, 0, 5, 5], [9, 9, 5, 5]] and categories.tolist() == [2, 3]
    assert objects.of("2")[0].tolist() == [[1, 1, 2, 2]]
    assert objects.of("3")[0].shape == (0, 4)


def test_a_foreign_objects_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "refcoco.objects.json"
    path.write_text(json.dumps({"images": {}}))
    with pytest.raises(SimrecError, match=r"refcoco\.objects\.json: lacks the field format"):
        read_objects(path)


def test_preparing_without_objects_removes_a_stale_file(tmp_path: Path) -> None:
    fixture = write_refer_fixture(tmp_path / "data", num_images=5)
    prepare_dataset("refcoco", fixture.root)
    (fixture.root / "anns" / "flickr.objects.json").write_text("{}")
    write_flickr(fixture.root, fixture.root / "anns" / "flickr.json")
    prepare_dataset("flickr", fixture.root)
    assert not (fixture.root / "anns" / "flickr.objects.json").exists()
    assert (fixture.root / "anns" / "refcoco.objects.json").is_file()  # another dataset's file stays
