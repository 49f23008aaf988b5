"""prepare_dataset on REFER fixtures: the anns JSON field by field, masks by area, and every bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from simrec_cli.data.masks import MaskStore
from simrec_cli.data.prepare import COCO_CATEGORY_IDS, prepare_dataset
from simrec_cli.data.text import Vocabulary
from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter
from simrec_cli.schemas.formats import parse_plain_pickle
from tests.refer_fixture import ReferFixture, python2_pickle_bytes, write_refer_fixture


def _expected_entries(fixture: ReferFixture, split: str) -> list[dict]:
    anns = {ann["id"]: ann for ann in fixture.annotations}
    entries = []
    for ref in fixture.refs:
        if ref["split"] != split:
            continue
        ann = anns[ref["ann_id"]]
        base = {"iid": ref["image_id"], "bbox": ann["bbox"], "cat_id": COCO_CATEGORY_IDS.index(ann["category_id"])}
        sentences = [s["sent"] for s in ref["sentences"]]
        if split == "train":
            entries.append({**base, "refs": sentences, "mask_id": ref["ref_id"]})
        else:
            entries.extend({**base, "refs": [s], "mask_id": ref["ref_id"]} for s in sentences)
    return entries


def test_anns_json_matches_simrec_field_by_field(refer: ReferFixture) -> None:
    summary = prepare_dataset("refcoco", refer.root, generate_mask=True, reporter=NullReporter())
    anns = json.loads((refer.root / "anns" / "refcoco.json").read_text())
    assert list(anns) == ["train", "val", "testA", "testB"]
    for split in anns:
        assert anns[split] == _expected_entries(refer, split)
    assert summary.splits["train"].objects == len([r for r in refer.refs if r["split"] == "train"])
    assert summary.splits["val"].expressions == sum(len(r["sentences"]) for r in refer.refs if r["split"] == "val")
    assert any("published refcoco (unc) split has 10834" in w for w in summary.warnings)
    vocab = Vocabulary.load(refer.root / "anns" / "refcoco.vocab.json")
    assert vocab == Vocabulary.from_annotations(anns)
    saved = json.loads((refer.root / "anns" / "refcoco.summary.json").read_text())
    assert saved["splits"]["val"]["expected_expressions"] == 10834


def test_masks_match_polygons_and_rle_including_crowd(refer: ReferFixture) -> None:
    prepare_dataset("refcoco", refer.root, generate_mask=True)
    store = MaskStore(refer.root / "masks" / "refcoco.rle.json", refer.root / "masks" / "refcoco")
    kinds = set()
    for ref in refer.refs:
        ann = next(a for a in refer.annotations if a["id"] == ref["ann_id"])
        kinds.add("crowd" if ann["iscrowd"] else type(ann["segmentation"]).__name__)
        mask = store.get(ref["ref_id"])
        truth = refer.true_masks[ref["ann_id"]]
        assert mask.shape == truth.shape
        assert mask.sum() == truth.sum() == ann["area"]
        assert (mask == truth).all()
    assert kinds == {"list", "crowd", "dict"}


def test_written_files_are_byte_for_byte_the_compact_json_of_their_content(refer: ReferFixture) -> None:
    """The exact bytes: compact separators, SimREC's key order, and each mask as the one canonical COCO RLE of its
    pixels, whatever route the conversion takes to them."""
    prepare_dataset("refcoco", refer.root, generate_mask=True)
    anns = {split: _expected_entries(refer, split) for split in ("train", "val", "testA", "testB")}
    expected_anns = json.dumps(anns, separators=(",", ":"))
    assert (refer.root / "anns" / "refcoco.json").read_text() == expected_anns
    masks = {}
    for ref in refer.refs:
        rle = mask_utils.encode(np.asfortranarray(refer.true_masks[ref["ann_id"]].astype(np.uint8)))
        masks[str(ref["ref_id"])] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}
    expected_masks = json.dumps({"format": "simrec-rle-v1", "masks": masks}, separators=(",", ":"))
    assert (refer.root / "masks" / "refcoco.rle.json").read_text() == expected_masks


def test_legacy_npy_masks_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "masks" / "refcoco"
    folder.mkdir(parents=True)
    np.save(folder / "7.npy", np.array([[0, 2], [1, 0]], dtype=np.uint8))
    store = MaskStore(tmp_path / "masks" / "refcoco.rle.json", folder)
    assert store.get(7).tolist() == [[False, True], [True, False]]
    with pytest.raises(SimrecError, match=r"mask file .*8\.npy does not exist"):
        store.get(8)


def test_other_datasets_and_split_bys(tmp_path: Path) -> None:
    gog = write_refer_fixture(tmp_path / "g", "refcocog", "umd", num_images=4)
    summary = prepare_dataset("refcocog", gog.root)
    assert summary.split_by == "umd" and list(summary.splits) == ["train", "val", "test"]
    clef = write_refer_fixture(tmp_path / "c", "refclef", "unc", num_images=6)
    summary = prepare_dataset("refclef", clef.root, split_by="unc")
    assert list(summary.splits) == ["train", "val", "testA", "testB", "testC"]
    assert (clef.root / "anns" / "refclef.json").is_file()


def test_output_dir_leaves_the_input_untouched(refer: ReferFixture, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset("refcoco", refer.root, output_dir=out)
    assert (out / "anns" / "refcoco.json").is_file()
    assert not (refer.root / "anns").exists()


def test_missing_files_name_the_file(refer: ReferFixture) -> None:
    (refer.refer_dir / "refs(unc).p").unlink()
    with pytest.raises(SimrecError, match=r"REFER refs file .*refs\(unc\)\.p does not exist") as error:
        prepare_dataset("refcoco", refer.root)
    assert "lichengunc/refer" in error.value.hint
    (refer.refer_dir / "instances.json").unlink()
    with pytest.raises(SimrecError, match=r"REFER instances file .*instances\.json does not exist"):
        prepare_dataset("refcoco", refer.root)
    assert not (refer.root / "anns").exists()


def test_unknown_split_by(refer: ReferFixture) -> None:
    with pytest.raises(SimrecError, match="--split-by umd does not exist for refcoco") as error:
        prepare_dataset("refcoco", refer.root, split_by="umd")
    assert "unc, google" in error.value.hint


def test_malicious_pickle_is_refused_and_never_run(refer: ReferFixture, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (refer.refer_dir / "refs(unc).p").write_bytes(pickle.dumps([Exploit()], protocol=2))
    with pytest.raises(SimrecError, match=r"refused to load .*posix\.system|refused to load .*os\.system"):
        prepare_dataset("refcoco", refer.root)
    assert not marker.exists()


def test_corrupt_pickle(refer: ReferFixture) -> None:
    path = refer.refer_dir / "refs(unc).p"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(SimrecError, match="corrupt or truncated"):
        prepare_dataset("refcoco", refer.root)


def test_python2_byte_strings_decode_as_utf8_or_latin1(tmp_path: Path) -> None:
    assert parse_plain_pickle(python2_pickle_bytes([{"sent": "café"}])) == [{"sent": "café"}]
    latin = python2_pickle_bytes([{"sent": "cafX"}]).replace(b"cafX", b"caf\xe9")
    assert parse_plain_pickle(latin) == [{"sent": "café"}]


def test_refs_pointing_to_unknown_annotations(refer: ReferFixture) -> None:
    refs = [dict(ref) for ref in refer.refs]
    refs[0]["ann_id"] = 999_999
    refs[3]["ann_id"] = 999_998
    (refer.refer_dir / "refs(unc).p").write_bytes(python2_pickle_bytes(refs))
    with pytest.raises(SimrecError, match="2 refs point to annotations") as error:
        prepare_dataset("refcoco", refer.root)
    assert "--skip-invalid" in error.value.hint
    summary = prepare_dataset("refcoco", refer.root, skip_invalid=True)
    assert summary.skipped == 2
    assert any("left out 2 refs" in w for w in summary.warnings)


def test_missing_and_unreadable_images(refer: ReferFixture) -> None:
    first = refer.image_dir / refer.images[0]["file_name"]
    first.unlink()
    with pytest.raises(SimrecError, match=rf"1 of 10 images are missing \(first: {first}, for ref ") as error:
        prepare_dataset("refcoco", refer.root)
    assert error.value.hint == (
        f"put the COCO train2014 images (train2014/COCO_train2014_<12-digit id>.jpg from cocodataset.org) into "
        f"{refer.image_dir}/, or pass --skip-missing to leave out the refs whose image is missing"
    )
    for path in refer.image_dir.iterdir():
        path.unlink()
    refer.image_dir.rmdir()
    with pytest.raises(SimrecError, match=r"none of the images exists \(10 looked for; first: .*images/coco/"):
        prepare_dataset("refcoco", refer.root, skip_invalid=True)
    assert not (refer.root / "anns").exists()


def test_non_writable_output(refer: ReferFixture, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SimrecError, match=r"cannot write the prepared dataset .* is a file") as error:
        prepare_dataset("refcoco", refer.root, output_dir=blocker / "out")
    assert "--output-dir" in (error.value.hint or "")


@pytest.mark.parametrize(
    ("segmentation", "problem"),
    [({"what": 1}, r"annotation #0 \(id {}\), field segmentation: expected polygons"),
     ([["a", "b", "c", "d", "e", "f"]], r"annotation #0 \(id {}\), field segmentation: expected polygons"),
     ({"size": [4, 4], "counts": [-1, 17]}, r"annotation #0 \(id {}\), field segmentation: .* add up to h \* w")],
)  # fmt: skip
def test_bad_segmentation_names_the_annotation(refer: ReferFixture, segmentation: object, problem: str) -> None:
    """A segmentation of neither COCO form, polygons of text or run lengths that do not cover the image are refused
    by the schema, naming the annotation."""
    instances = json.loads((refer.refer_dir / "instances.json").read_text())
    instances["annotations"][0]["segmentation"] = segmentation
    (refer.refer_dir / "instances.json").write_text(json.dumps(instances))
    with pytest.raises(SimrecError, match=problem.format(refer.annotations[0]["id"])):
        prepare_dataset("refcoco", refer.root, generate_mask=True)
    assert not (refer.root / "anns" / "refcoco.json").exists()


def test_empty_and_unicode_expressions_are_kept_with_a_warning(refer: ReferFixture) -> None:
    refs = [dict(ref) for ref in refer.refs]
    refs[0]["sentences"] = [{"sent_id": 1, "sent": "...", "raw": "..."}, {"sent_id": 2, "sent": "le café à gauche"}]
    (refer.refer_dir / "refs(unc).p").write_bytes(python2_pickle_bytes(refs))
    summary = prepare_dataset("refcoco", refer.root)
    assert any("1 expressions have no words" in w and "'...'" in w for w in summary.warnings)
    vocab = Vocabulary.load(refer.root / "anns" / "refcoco.vocab.json")
    assert "café" in vocab and "à" in vocab


@pytest.mark.parametrize(
    ("bbox", "problem"),
    [
        ([10, 20, 30], "expected [x, y, w, h]: 4 numbers"),
        ([10, 20, -5, 40], "expected a box with a positive width and height"),
        ([10, 20, float("nan"), 40], "expected 4 finite numbers"),
        ([10, 20, 1e300, 40], "within any image"),
        ([10, 20, "5", 40], "expected [x, y, w, h]: 4 numbers"),
        ([1000, 20, 5, 5], "expected a box inside its"),
    ],
)
def test_invalid_boxes_are_counted_refused_or_left_out(refer: ReferFixture, bbox: list, problem: str) -> None:
    instances = json.loads((refer.refer_dir / "instances.json").read_text())
    bad = [ref["ann_id"] for ref in refer.refs[:2]]
    for ann in instances["annotations"]:
        if ann["id"] in bad:
            ann["bbox"] = bbox
    (refer.refer_dir / "instances.json").write_text(json.dumps(instances))  # NaN as the literal json writes
    with pytest.raises(SimrecError, match=r"^2 refs have an invalid box") as error:
        prepare_dataset("refcoco", refer.root)
    assert problem in error.value.message and f"annotation {bad[0]}" in error.value.message
    assert "--skip-invalid" in (error.value.hint or "")
    assert not (refer.root / "anns").exists()
    summary = prepare_dataset("refcoco", refer.root, skip_invalid=True)
    assert summary.skipped == 2 and any("left out 2 refs have an invalid box" in w for w in summary.warnings)
    text = (refer.root / "anns" / "refcoco.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    kept = {entry["mask_id"] for entries in json.loads(text).values() for entry in entries}
    assert not kept & {ref["ref_id"] for ref in refer.refs[:2]}
