"""REFER files of the wrong shape, read through their schemas: one line naming file, entry, field, expected and
found, and nothing written (issue 22: #9 refs fields of the wrong type, #10 instances of the wrong shape, #20 an
empty refs list, #21 duplicate ref_ids)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.errors import SimrecError
from tests.refer_fixture import ReferFixture, python2_pickle_bytes


def _refs_path(refer: ReferFixture) -> Path:
    return refer.refer_dir / "refs(unc).p"


def _write_refs(refer: ReferFixture, edit: Callable[[list[dict]], object]) -> None:
    refs = [dict(ref) for ref in refer.refs]
    result = edit(refs)
    _refs_path(refer).write_bytes(python2_pickle_bytes(refs if result is None else result))


def _edit_instances(refer: ReferFixture, edit: Callable[[dict], object]) -> None:
    path = refer.refer_dir / "instances.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _refused(refer: ReferFixture, message: str) -> None:
    with pytest.raises(SimrecError) as error:
        prepare_dataset("refcoco", refer.root)
    assert re.fullmatch(message, error.value.message), error.value.message
    assert not (refer.root / "anns").exists()


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [("sentences", "the dog", r", field sentences: expected a list, found 'the dog'"),
     ("sentences", [{"sent": 5}], r", field sentences\[0\]\.sent: expected text, found 5"),
     ("sentences", [{"raw": "x"}], r" lacks the field sentences\[0\]\.sent"),
     ("sentences", [], r", field sentences: expected at least one of the sentences, found an empty list"),
     ("split", 3, r", field split: expected text, found 3"),
     ("split", None, r", field split: expected text, found null"),
     ("image_id", "12", r", field image_id: expected a whole number, found '12'"),
     ("image_id", 12.0, r", field image_id: expected a whole number, found 12.0"),
     ("ann_id", True, r", field ann_id: expected a whole number, found true")],
)  # fmt: skip
def test_a_ref_field_of_the_wrong_type_is_named(refer: ReferFixture, field: str, value: object, problem: str) -> None:
    """#9: each was a traceback (TypeError, KeyError) or, for a number as the split, an empty dataset."""
    _write_refs(refer, lambda refs: refs[1].update({field: value}))
    ref_id = refer.refs[1]["ref_id"]
    _refused(refer, rf".*refs\(unc\)\.p: ref #1 \(ref_id {ref_id}\){problem}")


def test_a_ref_that_is_not_a_mapping_is_named(refer: ReferFixture) -> None:
    _write_refs(refer, lambda refs: refs.__setitem__(2, ["ref", 5]))
    _refused(refer, r".*refs\(unc\)\.p: ref #2: expected a mapping, found \['ref', 5\]")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [(lambda d: d.update(images=[1, 2]), r"image #0: expected a mapping, found 1"),
     (lambda d: d["categories"][0].pop("id"), r"category #0 lacks the field id"),
     (lambda d: d["images"][0].update(width="640"),
      r"image #0 \(id \d+\), field width: expected a whole number, found '640'"),
     (lambda d: d["images"][0].update(height=0),
      r"image #0 \(id \d+\), field height: expected a number of 1 or more, found 0"),
     (lambda d: d.update(annotations={"1": {}}),
      r"field annotations: expected a list, found a mapping of 1 entry \(keys '1'\)"),
     (lambda d: d["annotations"][3].update(image_id=None),
      r"annotation #3 \(id \d+\), field image_id: expected a whole number, found null"),
     (lambda d: d.pop("images"), r"lacks the field images"),
     (lambda d: d["annotations"][0].update(segmentation=[[10**400, 0, 5, 0, 5, 5]]),
      r"annotation #0 \(id \d+\), field segmentation: expected polygons \(lists of finite .*found a list of 1 item"),
     (lambda d: d["annotations"][0].update(segmentation={"size": [10**6, 10**6], "counts": [10**12]}),
      r"annotation #0 \(id \d+\), field segmentation: expected .* h \* w at most 268,435,456.*found a mapping.*")],
)  # fmt: skip
def test_instances_of_the_wrong_shape_are_named(refer: ReferFixture, edit: Callable, problem: str) -> None:
    """#10: images as numbers, a category without id, a width as text: each was a traceback; so were a polygon
    number beyond any float and an RLE of an image too large for pycocotools (found by fuzzing)."""
    _edit_instances(refer, edit)
    _refused(refer, rf".*instances\.json: {problem}")


def test_deeply_nested_instances_are_refused_before_parsing(refer: ReferFixture) -> None:
    """#10: a segmentation nested 100,000 levels deep was a RecursionError traceback from the json module."""
    path = refer.refer_dir / "instances.json"
    text = path.read_text()
    path.write_text(text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _refused(refer, r"REFER instances file .*instances\.json nests lists and mappings 100,001 levels deep, more .*")


def test_an_empty_refs_list_is_refused(refer: ReferFixture) -> None:
    """#20: it wrote an empty dataset and exited 0."""
    _write_refs(refer, lambda refs: [])
    _refused(refer, r".*refs\(unc\)\.p: expected at least one of the refs, found an empty list")


def test_refs_in_no_known_split_write_nothing(refer: ReferFixture) -> None:
    """#20's class: refs that all fall outside the dataset's splits would also make an empty dataset."""
    _write_refs(refer, lambda refs: [{**ref, "split": "holdout"} for ref in refs])
    with pytest.raises(SimrecError, match="no split of refcoco holds an entry") as error:
        prepare_dataset("refcoco", refer.root)
    assert "train, val, testA, testB" in (error.value.hint or "")
    assert not (refer.root / "anns").exists()


def test_duplicate_ref_ids_are_refused(refer: ReferFixture) -> None:
    """#21: two refs with one ref_id were accepted, and their two objects then shared one mask."""
    first = refer.refs[0]["ref_id"]
    _write_refs(refer, lambda refs: refs[4].update(ref_id=first))
    _refused(refer, rf".*refs\(unc\)\.p: ref #4 \(ref_id {first}\), field ref_id: expected a ref_id no other ref has "
                    rf"\(ref #0 has it\), found {first}")  # fmt: skip


def test_duplicate_annotation_ids_are_refused(refer: ReferFixture) -> None:
    """The same rule for instances.json: a ref's ann_id must name one annotation."""
    _edit_instances(refer, lambda d: d["annotations"][2].update(id=d["annotations"][0]["id"]))
    _refused(refer, r".*instances\.json: annotation #2 \(id \d+\), field id: expected a id no other annotation has .*")
