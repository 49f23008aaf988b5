"""Bad-input catalogue, data: prepare-data's inputs (REFER, flickr/vg/merge JSON, word vectors, images) and
the prepared annotation files that train and eval read."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.bad_inputs import (
    Places,
    Row,
    RunsCode,
    edit_json,
    judge,
    own_anns,
    own_data,
    prepared_copy,
    replace_image,
)
from tests.e2e.conftest import TINY
from tests.json_fixture import JsonDataset, write_flickr, write_vg
from tests.refer_fixture import ReferFixture, python2_pickle_bytes, write_refer_fixture

Args = Callable[[Places], Sequence[object]]
Prepare = Callable[[Places], object]

# ---------------------------------------------------------------------------------------------------- REFER


def _refer_root(p: Places) -> Path:
    return own_data(p)


def _refer(change: Callable[[ReferFixture], object] | None = None) -> Prepare:
    """Write a small REFER refcoco (unc) under the row's data folder, then break it with `change`."""

    def prepare(p: Places) -> None:
        fixture = write_refer_fixture(_refer_root(p), num_images=5, crowd=False)
        if change is not None:
            change(fixture)

    return prepare


def _prepare(*extra: object, dataset: str = "refcoco") -> Args:
    return lambda p: ["prepare-data", "--dataset", dataset, "--data-root", _refer_root(p), *extra]


def _instances(fixture: ReferFixture) -> Path:
    return fixture.refer_dir / "instances.json"


def _refs(fixture: ReferFixture) -> Path:
    return fixture.refer_dir / "refs(unc).p"


def _edit_instances(edit: Callable[[dict], object]) -> Callable[[ReferFixture], None]:
    def change(fixture: ReferFixture) -> None:
        data = json.loads(_instances(fixture).read_text())
        edit(data)
        _instances(fixture).write_text(json.dumps(data))  # json writes NaN/Infinity literals, as Python does

    return change


def _first_box(bbox: list) -> Callable[[ReferFixture], None]:
    return _edit_instances(lambda data: data["annotations"][0].update(bbox=bbox))


def _edit_refs(edit: Callable[[list[dict]], object]) -> Callable[[ReferFixture], None]:
    def change(fixture: ReferFixture) -> None:
        refs = [dict(ref) for ref in fixture.refs]
        result = edit(refs)
        _refs(fixture).write_bytes(python2_pickle_bytes(refs if result is None else result))

    return change


def _malicious_refs(fixture: ReferFixture) -> None:
    _refs(fixture).write_bytes(pickle.dumps([RunsCode(fixture.root / "ran")], protocol=2))


def _truncate(path_of: Callable[[ReferFixture], Path], keep: int) -> Callable[[ReferFixture], None]:
    def change(fixture: ReferFixture) -> None:
        path = path_of(fixture)
        path.write_bytes(path.read_bytes()[:keep])

    return change


def _first_annotation(fixture_root: Path) -> str:
    return f"annotation {json.loads((fixture_root / 'refcoco' / 'instances.json').read_text())['annotations'][0]['id']}"


def _first_annotation_entry(fixture_root: Path) -> str:
    """How a schema violation names the first annotation: its place and its id."""
    return _first_annotation(fixture_root).replace("annotation ", "annotation #0 (id ") + ")"


def _remove_first_image(fixture: ReferFixture) -> None:
    (fixture.image_dir / fixture.images[0]["file_name"]).unlink()


REFER = [
    Row("refer instances.json missing", _prepare(), "instances.json", _refer(lambda f: _instances(f).unlink()),
        says="does not exist"),
    Row("refer instances.json is a folder", _prepare(), "instances.json",
        _refer(lambda f: (_instances(f).unlink(), _instances(f).mkdir())), says="is a folder"),
    Row("refer refs pickle missing", _prepare(), "refs(unc).p", _refer(lambda f: _refs(f).unlink())),
    Row("refer instances.json not json", _prepare(), "instances.json",
        _refer(lambda f: _instances(f).write_text("{'images': [")), says="not valid JSON"),
    Row("refer instances.json lacks annotations", _prepare(), "instances.json",
        _refer(_edit_instances(lambda data: data.pop("annotations"))), says="lacks"),
    # Had the pickle run, "ran" would be a new file in the row's folder: the no-leftovers check proves it did not.
    Row("refer refs pickle runs code", _prepare(), "refs(unc).p", _refer(_malicious_refs), says="refused"),
    Row("refer refs pickle truncated", _prepare(), "refs(unc).p", _refer(_truncate(_refs, 40)),
        says="corrupt or truncated"),
    Row("refer refs pickle empty", _prepare(), "refs(unc).p", _refer(_truncate(_refs, 0))),
    Row("refer refs pickle is a dict", _prepare(), "refs(unc).p",
        _refer(_edit_refs(lambda refs: {"refs": refs})), says="expected a list, found a mapping"),
    Row("refer ref lacks sentences", _prepare(), "ref #0", _refer(_edit_refs(lambda refs: refs[0].pop("sentences")))),
    Row("refer bbox of 3 numbers", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box([10, 20, 30])), says="invalid box"),
    Row("refer bbox negative width", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box([10, 20, -5, 40])), says="expected a box with a positive width and height"),
    Row("refer bbox nan", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box([10, 20, float("nan"), 40])), says="expected 4 finite numbers"),
    Row("refer bbox infinite", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box([10, 20, float("inf"), 40])), says="expected 4 finite numbers"),
    Row("refer bbox outside the image", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box([5000, 20, 5, 5])), says="expected a box inside its"),
    Row("refer bbox of strings", _prepare(), lambda p: _first_annotation(_refer_root(p)),
        _refer(_first_box(["1", "2", "3", "4"]))),
    Row("refer ref to unknown annotation", _prepare(), "instances.json",
        _refer(_edit_refs(lambda refs: refs[0].update(ann_id=999_999))), says="ref 0"),
    Row("refer image missing", _prepare(), "images are missing", _refer(_remove_first_image)),
    Row("refer image folder missing", _prepare(), "images/coco",
        _refer(lambda f: shutil.rmtree(f.image_dir)), says="none of the images exists"),
    Row("refer segmentation unreadable", _prepare("--generate-mask"), lambda p: _first_annotation_entry(_refer_root(p)),
        _refer(_edit_instances(lambda data: data["annotations"][0].update(segmentation=[["a", "b", "c", 1, 2, 3]]))),
        says="field segmentation: expected polygons"),
    Row("refer unknown split-by", _prepare("--split-by", "umd"), "--split-by umd", _refer()),
    Row("unknown dataset", _prepare(dataset="imagenet"), "imagenet", _refer()),
    Row("split-by for synthetic", _prepare("--split-by", "unc", dataset="synthetic"), "--split-by"),
    Row("synthetic too few images", _prepare("--num-images", "5", dataset="synthetic"), "--num-images 5"),
    Row("synthetic image size 0", _prepare("--image-size", "0", dataset="synthetic"), "--image-size 0"),
    Row("synthetic image size huge", _prepare("--image-size", "100000", dataset="synthetic"), "--image-size 100000",
        says="too large"),
    Row("data root name too long", lambda p: ["prepare-data", "--dataset", "synthetic", "--data-root",
        p.tmp / ("données-" + "é" * 130), "--num-images", "10"], "é" * 60, says="File name too long"),
    Row("output dir is a file", _prepare("--output-dir", "out"), "--output-dir",
        _refer(lambda f: (f.root.parent / "out").write_text("x")), says="is a file"),
    Row("output dir read-only", lambda p: [*_prepare()(p), "--output-dir", p.read_only / "out"], "--output-dir",
        _refer(), says="read-only", needs_read_only=True),
]  # fmt: skip

# ----------------------------------------------------------------------------------------- flickr, vg, merge

ENTRY = {"iid": 5, "bbox": [1, 2, 3, 4], "cat_id": 0, "refs": ["a dog"], "mask_id": 0}


def _json_dataset(name: str, content: object | str) -> Prepare:
    """Write `<data>/anns/<name>.json` (a string is written as it is)."""

    def prepare(p: Places) -> None:
        path = _refer_root(p) / "anns" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))

    return prepare


def _beside(name: str, content: object | str) -> Prepare:
    def prepare(p: Places) -> None:
        p.tmp.joinpath(name).write_text(content if isinstance(content, str) else json.dumps(content))

    return prepare


def _merge(*extra: str) -> Args:
    return lambda p: [*_prepare(dataset="merge")(p), *[p.tmp / arg if arg.endswith(".json") else arg for arg in extra]]


def _downloaded(writer: Callable[[Path, Path], JsonDataset], remove: tuple[int, ...] = ()) -> Prepare:
    """Write a downloaded JSON in its true format beside the row's data root (its images under it), then remove
    the images numbered `remove`."""

    def prepare(p: Places) -> None:
        written = writer(_refer_root(p), p.tmp / "downloaded.json")
        for number in remove:
            written.images[number].unlink()

    return prepare


def _given(dataset: str, option: str, *extra: str) -> Args:
    return lambda p: [*_prepare(option, p.tmp / "downloaded.json", *extra, dataset=dataset)(p)]


JSON_DATASETS = [
    Row("flickr image missing", _given("flickr", "--flickr"), "images/flickr/1000092795.jpg",
        _downloaded(write_flickr, remove=(0,)), says="1 of 5 images are missing"),
    Row("vg image missing", _given("vg", "--vg"), "images/VG/VG_100K_2/2300000.jpg", _downloaded(write_vg, (0,)),
        says="put the Visual Genome images"),
    Row("vg images all missing, skipped", _given("vg", "--vg", "--skip-missing"), "images/VG",
        _downloaded(write_vg, tuple(range(5))), says="none of the images exists"),
    Row("vg given --flickr", _given("vg", "--flickr"), "--flickr", _downloaded(write_vg), says="vg does not read it"),
    Row("flickr given --vg", _given("flickr", "--vg"), "--vg", _downloaded(write_flickr)),
    Row("merge given --generate-mask", _given("merge", "--vg", "--generate-mask"), "--generate-mask",
        _downloaded(write_vg), says="no masks"),
    Row("merge image of vg missing", _given("merge", "--vg"), "images/VG/VG_100K_2/2300000.jpg",
        _downloaded(write_vg, (0,)), says="are missing"),
    Row("synthetic given --skip-missing", _prepare("--skip-missing", dataset="synthetic"), "--skip-missing"),
    Row("flickr given --num-images", _prepare("--num-images", "10", dataset="flickr"), "--num-images"),
    Row("flickr json missing", _prepare(dataset="flickr"), "flickr.json", says="does not exist"),
    Row("flickr json not json", _prepare(dataset="flickr"), "flickr.json", _json_dataset("flickr", "{"),
        says="not valid JSON"),
    Row("flickr json is a list", _prepare(dataset="flickr"), "flickr.json", _json_dataset("flickr", [ENTRY])),
    Row("flickr entry lacks refs", _prepare(dataset="flickr"), "split 'train'",
        _json_dataset("flickr", {"train": [{"iid": 5, "bbox": [1, 2, 3, 4]}]}), says="lacks the field refs"),
    Row("flickr bbox nan", _prepare(dataset="flickr"), "flickr.json",
        _json_dataset("flickr", '{"train": [{"iid": 5, "bbox": [1, 2, NaN, 4], "refs": ["a dog"]}]}'),
        says="expected 4 finite numbers"),
    Row("flickr refs empty", _prepare(dataset="flickr"), "flickr.json",
        _json_dataset("flickr", {"train": [{**ENTRY, "refs": []}]}), says="expected at least one of the sentences"),
    Row("vg bbox negative", _prepare(dataset="vg"), "vg.json",
        _json_dataset("vg", {"train": [{**ENTRY, "bbox": [1, 2, -3, 4]}]}), says="positive width and height"),
    Row("vg entry is not an object", _prepare(dataset="vg"), "vg.json", _json_dataset("vg", {"train": [5]})),
    Row("merge with nothing to merge", _merge(), "nothing to merge"),
    Row("merge --flickr missing", _merge("--flickr", "missing.json"), "missing.json", says="does not exist"),
    Row("merge --vg not json", _merge("--vg", "vg.json"), "vg.json", _beside("vg.json", "[1, 2"),
        says="not valid JSON"),
    Row("merge existing entry lacks data_source", _prepare(dataset="merge"), "merge.json",
        _json_dataset("merge", {"train": [ENTRY]}), says="data_source"),
]  # fmt: skip

# ----------------------------------------------------------------------------------------------- word vectors


def _vectors(name: str, content: str | bytes | np.ndarray, words: list[str] | None = None) -> Prepare:
    def prepare(p: Places) -> None:
        _refer()(p)
        path = p.tmp / name
        if isinstance(content, np.ndarray):
            np.save(path, content)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        if words is not None:
            path.with_suffix(".txt").write_text("\n".join(words))

    return prepare


def _with_vectors(name: str) -> Args:
    return lambda p: [*_prepare()(p), "--word-vectors", p.tmp / name]


VECTORS = [
    Row("vectors lines of another dimension", _with_vectors("v.txt"), "line 2 holds 3 numbers",
        _vectors("v.txt", "man 1 2 3 4\nwoman 1 2 3\nleft 1 2 3\n"), says="line 1 gives 4"),
    Row("vectors word2vec header disagrees", _with_vectors("v.txt"), "line 2 holds 3 numbers",
        _vectors("v.txt", "3 300\nman 1 2 3\nwoman 1 2 3\n"), says="word2vec header"),
    Row("vectors value not a number", _with_vectors("v.txt"), "line 1", _vectors("v.txt", "man 1 x 3\n")),
    Row("vectors file empty", _with_vectors("v.txt"), "v.txt", _vectors("v.txt", ""), says="no vectors"),
    Row("vectors binary garbage", _with_vectors("v.txt"), "v.txt", _vectors("v.txt", bytes(range(256)) * 4)),
    Row("vectors npy without word list", _with_vectors("v.npy"), "v.npy", _vectors("v.npy", np.zeros((3, 2))),
        says="no word list"),
    Row("vectors npy rows disagree with words", _with_vectors("v.npy"), "v.npy",
        _vectors("v.npy", np.zeros((3, 2)), ["man", "car"]), says="does not match 2 words"),
    Row("vectors npy corrupt", _with_vectors("v.npy"), "v.npy", _vectors("v.npy", b"\x93NUMPY garbage", ["man"])),
    Row("vectors npy missing", _with_vectors("missing.npy"), "missing.npy", _refer(), says="does not exist"),
    Row("vectors neither file nor pipeline", _with_vectors("missing.txt"), "missing.txt", _refer()),
]  # fmt: skip

# ------------------------------------------------------------------------------------ prepared annotations


def _eval(*extra: object) -> Args:
    return lambda p: ["eval", p.checkpoint, "--device", "cpu", "--data-root", _refer_root(p), *extra]


def _train(*extra: object) -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={_refer_root(p)}",
                      f"train.output_dir={p.tmp / 'run'}", *TINY, *extra]  # fmt: skip


def _first_test_image(p: Places) -> str:
    first = json.loads(own_anns(p).read_text())["test"][0]["iid"]
    return f"{int(first):06d}.jpg"


ANNS = [
    Row("anns not json", _eval(), own_anns, prepared_copy(lambda path: path.write_text("{")), says="not valid JSON"),
    Row("anns is a list", _eval(), own_anns, prepared_copy(lambda path: path.write_text("[]"))),
    Row("anns is a folder", _eval(), own_anns, prepared_copy(lambda path: (path.unlink(), path.mkdir()))),
    Row("anns entry lacks bbox", _eval(), "split 'val'", prepared_copy(edit_json(lambda d: d["val"][0].pop("bbox")))),
    Row("anns bbox nan", _eval(), "split 'test'",
        prepared_copy(edit_json(lambda d: d["test"][1].update(bbox=[1, 2, float("nan"), 4]))), says="finite numbers"),
    Row("anns bbox negative", _eval(), "split 'test'",
        prepared_copy(edit_json(lambda d: d["test"][0].update(bbox=[1, 2, -3, 4]))), says="positive width"),
    Row("anns bbox beyond any image", _eval(), "split 'test'",
        prepared_copy(edit_json(lambda d: d["test"][0].update(bbox=[1, 2, 1e300, 4]))), says="within any image"),
    Row("anns image id not a number", _eval(), "split 'test'",
        prepared_copy(edit_json(lambda d: d["test"][0].update(iid="abc"))), says="expected an image id"),
    Row("anns image id negative", _eval(), "split 'test'",
        prepared_copy(edit_json(lambda d: d["test"][0].update(iid=-5))), says="expected an image id"),
    Row("anns refs empty", _eval(), "split 'val'", prepared_copy(edit_json(lambda d: d["val"][0].update(refs=[])))),
    Row("anns split missing", _eval(), "split 'test'", prepared_copy(edit_json(lambda d: d.pop("test"))),
        says="is not in"),
    Row("eval on an empty split", _eval(), "split 'test'", prepared_copy(edit_json(lambda d: d.update(test=[]))),
        says="is empty"),
    Row("eval on an unknown --split", _eval("--split", "testZ"), "testZ", prepared_copy(),
        says="(check --split, --dataset and --data-root)"),  # it said "fix the preset"
    Row("eval image folder missing", _eval(), "images/synthetic",
        lambda p: (prepared_copy()(p), (_refer_root(p) / "images" / "synthetic").unlink()), says="does not exist"),
    Row("eval image missing", _eval(), _first_test_image,
        lambda p: (prepared_copy()(p), replace_image(p, _first_test_image(p), None)), says="does not exist"),
    Row("eval image corrupt", _eval(), _first_test_image,
        lambda p: (prepared_copy()(p), replace_image(p, _first_test_image(p), b"\xff\xd8 not a jpeg")),
        says="cannot be decoded"),
    Row("train on an empty split", _train(), "split 'train'", prepared_copy(edit_json(lambda d: d.update(train=[]))),
        says="is empty"),
    Row("train vocabulary missing", _train(), "synthetic.vocab.json",
        prepared_copy(lambda path: path.with_name("synthetic.vocab.json").unlink()), says="does not exist"),
    Row("train vocabulary not a list", _train(), "synthetic.vocab.json",
        prepared_copy(lambda path: path.with_name("synthetic.vocab.json").write_text('{"words": 3}'))),
    Row("train vectors rows disagree", _train("dataset.use_glove=true"), "synthetic.vectors.npy",
        prepared_copy(lambda path: np.save(path.with_name("synthetic.vectors.npy"), np.zeros((3, 4), np.float32))),
        says="rows"),
    Row("train data root missing", lambda p: [*_train()(p), f"dataset.data_root={p.tmp / 'nowhere'}"], "prepare-data"),
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in REFER + JSON_DATASETS + VECTORS + ANNS])
def test_bad_data(row: Row, places: Places) -> None:
    judge(row, places)


def test_skip_invalid_leaves_bad_boxes_out(places: Places) -> None:
    """With --skip-invalid the same bad boxes are left out, reported once, and the JSON holds no NaN."""
    _refer(_first_box([10, 20, float("nan"), 40]))(places)
    from tests.e2e.bad_inputs import run_cli

    outcome = run_cli([*_prepare("--skip-invalid")(places)], places.tmp)
    assert outcome.exit_code == 0, outcome.output
    assert "left out 1 refs have an invalid box" in " ".join(outcome.stderr.split())
    text = (_refer_root(places) / "anns" / "refcoco.json").read_text()
    assert "NaN" not in text and json.loads(text)
