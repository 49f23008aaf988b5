"""Bad-input catalogue, schema violations per field: each field of each external format given a value of the wrong
type, range or shape, through the verb that reads it. The one error line names the file, the entry (index and
id), the field, what was expected and what was found (shown short).

Formats: REFER instances.json and refs pickle (prepare-data), flickr/vg/merge JSON (prepare-data), the prepared
vocabulary (train), pairs JSONL/CSV (predict), presets (config show), word2vec headers (prepare-data).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.e2e.bad_inputs import Places, Row, judge, own_data, prepared_copy, write_file
from tests.e2e.conftest import TINY
from tests.fuzzing import json_text
from tests.refer_fixture import ReferFixture, python2_pickle_bytes, write_refer_fixture

Args = Callable[[Places], Sequence[object]]
Prepare = Callable[[Places], object]

# ---------------------------------------------------------------------------------------------------- REFER


def _refer(change: Callable[[ReferFixture], object]) -> Prepare:
    return lambda p: change(write_refer_fixture(own_data(p), num_images=5, crowd=False))


def _prepare(dataset: str = "refcoco", *extra: object) -> Args:
    return lambda p: ["prepare-data", "--dataset", dataset, "--data-root", own_data(p), *extra]


def _instances(edit: Callable[[dict], object]) -> Prepare:
    def change(fixture: ReferFixture) -> None:
        path = fixture.refer_dir / "instances.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json_text(data))

    return _refer(change)


def _refs(edit: Callable[[list[dict]], object]) -> Prepare:
    def change(fixture: ReferFixture) -> None:
        refs = [dict(ref) for ref in fixture.refs]
        result = edit(refs)
        (fixture.refer_dir / "refs(unc).p").write_bytes(python2_pickle_bytes(refs if result is None else result))

    return _refer(change)


def _deep(refer_dir: Path) -> None:
    """instances.json with a field nested 100,000 lists deep (json.load's recursion error, before the schema)."""
    path = refer_dir / "instances.json"
    path.write_text(path.read_text()[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _set(collection: str, field: str, value: object, index: int = 0) -> Callable[[dict], None]:
    return lambda data: data[collection][index].update({field: value})


def _instances_row(id: str, edit: Callable[[dict], object], names: str, says: str) -> Row:
    return Row(f"instances {id}", _prepare(), names, _instances(edit), says=says)


def _ref_row(id: str, edit: Callable[[list[dict]], object], names: str, says: str) -> Row:
    return Row(f"refs {id}", _prepare(), names, _refs(edit), says=says)


INSTANCES = [
    _instances_row("images as numbers", lambda d: d.update(images=[1, 2]), "image #0", "expected a mapping, found 1"),
    _instances_row("image id as text", _set("images", "id", "7"), "field id", "expected a whole number, found '7'"),
    _instances_row("image width as text", _set("images", "width", "640"), "field width", "found '640'"),
    _instances_row("image height zero", _set("images", "height", 0), "field height", "a number of 1 or more"),
    _instances_row("image width of 5,000 digits", _set("images", "width", 10**5000), "instances.json",
                   "holds a number of more than 4,300 digits"),
    _instances_row("annotation image_id null", _set("annotations", "image_id", None, 2), "annotation #2",
                   "field image_id: expected a whole number, found null"),
    _instances_row("annotation category_id float", _set("annotations", "category_id", 1.5), "field category_id",
                   "found 1.5"),
    _instances_row("annotation segmentation text", _set("annotations", "segmentation", "polygon"),
                   "field segmentation", "expected polygons"),
    _instances_row("annotation RLE with a negative run",
                   _set("annotations", "segmentation", {"size": [4, 4], "counts": [-1, 17]}),
                   "field segmentation", "that add up to h * w"),
    _instances_row("annotation RLE shorter than its image",
                   _set("annotations", "segmentation", {"size": [4, 4], "counts": [3, 5]}),
                   "field segmentation", "that add up to h * w"),
    _instances_row("annotation id repeated", lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]),
                   "annotation #1", "no other annotation has (annotation #0 has it)"),
    _instances_row("category without id", lambda d: d["categories"][0].pop("id"), "category #0",
                   "lacks the field id"),
    _instances_row("category name a list", _set("categories", "name", ["person"]), "field name",
                   "expected text, found ['person']"),
    _instances_row("categories a mapping", lambda d: d.update(categories={"1": "person"}), "field categories",
                   "expected a list, found a mapping of 1 entry"),
    Row("instances nested 100,000 deep", _prepare(), "instances.json", _refer(lambda f: _deep(f.refer_dir)),
        says="nests lists and mappings 100,001 levels deep, more than 64"),
]  # fmt: skip

REFS = [
    _ref_row("sentences as text", lambda r: r[1].update(sentences="the dog"), "ref #1",
             "field sentences: expected a list, found 'the dog'"),
    _ref_row("sentence without sent", lambda r: r[0].update(sentences=[{"raw": "x"}]), "ref #0",
             "lacks the field sentences[0].sent"),
    _ref_row("sent a number", lambda r: r[0].update(sentences=[{"sent": 5}]), "field sentences[0].sent",
             "expected text, found 5"),
    _ref_row("no sentences", lambda r: r[0].update(sentences=[]), "field sentences",
             "expected at least one of the sentences, found an empty list"),
    _ref_row("split a number", lambda r: r[2].update(split=3), "field split", "expected text, found 3"),
    _ref_row("image_id as text", lambda r: r[0].update(image_id="12"), "field image_id", "found '12'"),
    _ref_row("ann_id a boolean", lambda r: r[0].update(ann_id=True), "field ann_id", "found true"),
    _ref_row("ref_id repeated", lambda r: r[3].update(ref_id=r[0]["ref_id"]), "ref #3",
             "a ref_id no other ref has (ref #0 has it)"),
    _ref_row("a ref that is a list", lambda r: r.__setitem__(1, [1, 2]), "ref #1", "expected a mapping, found [1, 2]"),
    _ref_row("empty list", lambda r: [], "refs(unc).p", "expected at least one of the refs, found an empty list"),
    _ref_row("split of 5,000 characters", lambda r: r[0].update(split=["x" * 5000]), "field split",
             "found a list of 1 item"),
]  # fmt: skip

# ------------------------------------------------------------------------------------------ flickr, vg, merge

ENTRY = {"iid": 5, "bbox": [1, 2, 3, 4], "cat_id": 0, "refs": ["a dog"], "mask_id": 0}


def _json_dataset(name: str, good: dict, bad: dict) -> Prepare:
    def prepare(p: Places) -> None:
        path = own_data(p) / "anns" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"train": [good, bad]}))

    return prepare


def _entry_row(dataset: str, field: str, value: object, says: str, **extra: object) -> Row:
    """prepare-data of `dataset`'s JSON whose second entry has `field` set to `value` (`extra` in both entries)."""
    good = {**ENTRY, **extra}
    return Row(f"{dataset} {field} {value!r:.30}", _prepare(dataset), f"entry #1 (mask_id 0) of split 'train', field "
               f"{field}" if field != "mask_id" else "entry #1 of split 'train', field mask_id",
               _json_dataset(dataset, good, {**good, field: value}), says=says)  # fmt: skip


JSON_DATASETS = [
    _entry_row("flickr", "iid", -1, "expected an image id (a number, 0 or more, or a file name), found -1"),
    _entry_row("flickr", "iid", [5], "expected an image id"),
    _entry_row("flickr", "refs", "a dog", "expected a list, found 'a dog'"),
    _entry_row("flickr", "cat_id", "dog", "expected a whole number, found 'dog'"),
    _entry_row("flickr", "mask_id", 1.5, "expected a number or text, found 1.5"),
    _entry_row("vg", "url", "../../etc/passwd", "expected a file name relative to the image folder"),
    _entry_row("vg", "bbox", [1, 2, 3], "expected [x, y, w, h]: 4 numbers, found [1, 2, 3]"),
    _entry_row("merge", "data_source", "../coco", "expected the name of an image folder", data_source="coco"),
    _entry_row("merge", "data_source", 7, "found 7", data_source="coco"),
    Row("flickr split not a list", _prepare("flickr"), "split 'train'",
        lambda p: (own_data(p) / "anns").mkdir(parents=True) or (own_data(p) / "anns" / "flickr.json").write_text(
            '{"train": {"iid": 5}}'), says="expected a list, found a mapping"),
    Row("flickr no entry in any split", _prepare("flickr"), "no split of flickr holds an entry",
        lambda p: (own_data(p) / "anns").mkdir(parents=True) or (own_data(p) / "anns" / "flickr.json").write_text(
            '{"train": [], "val": []}')),
]  # fmt: skip

# ------------------------------------------------------------------------------------ vocabulary, vectors


def _train(*extra: object) -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={own_data(p)}",
                      f"train.output_dir={p.tmp / 'run'}", *TINY, *extra]  # fmt: skip


def _vocabulary(content: object) -> Prepare:
    return prepared_copy(lambda anns: anns.with_name("synthetic.vocab.json").write_text(json.dumps(content)))


def _vectors_row(id: str, text: str, says: str) -> Row:
    """prepare-data of a REFER dataset with `--word-vectors v.txt` holding `text`."""

    def prepare(p: Places) -> None:
        write_refer_fixture(own_data(p), num_images=5, crowd=False)
        write_file("v.txt", text)(p)

    return Row(f"vectors {id}", lambda p: [*_prepare()(p), "--word-vectors", p.tmp / "v.txt"], "v.txt", prepare,
               says=says)  # fmt: skip


PREPARED = [
    Row("vocabulary words not a list", _train(), "synthetic.vocab.json", _vocabulary({"words": 3}),
        says="field words: expected a list, found 3"),
    Row("vocabulary word a number", _train(), "word #3", _vocabulary({"words": ["PAD", "UNK", "CLS", 7]}),
        says="expected text, found 7"),
    Row("vocabulary of another format", _train(), "field format", _vocabulary({"format": "v9", "words": []}),
        says="expected 'simrec-vocabulary-v1', found 'v9'"),
    _vectors_row("header count zero", "0 3\nman 1 2 3\n", "field count: expected a number of 1 or more, found '0'"),
    _vectors_row("header dimension of 5,000 digits", "3 " + "9" * 5000 + "\nman 1 2 3\n",
                 "field dimension: expected a whole number of at most 4,000 digits"),
    _vectors_row("header dimension 0", "3 0\n", "field dimension: expected a number of 1 or more"),
    _vectors_row("header dimension beyond any vector", "3 1000000\n", "expected a number of at most 100,000"),
]  # fmt: skip

# ------------------------------------------------------------------------------------------- pairs, presets


def _pairs_row(name: str, text: str, says: str) -> Row:
    """`predict --pairs NAME` holding `text`: refused before the checkpoint (which does not exist) is opened."""
    args: Args = lambda p: ["predict", "--pairs", p.tmp / name, "-c", p.tmp / "never-read.pth", "--no-save"]  # noqa: E731
    return Row(f"pairs {name} {text[:40]!r}", args, f"{name} line", write_file(name, text), says=says)


PAIRS = [
    _pairs_row("p.jsonl", '{"image": 5, "expression": "the dog"}\n', "line 1: field image: expected text, found 5"),
    _pairs_row("p.jsonl", '{"image": "a.jpg", "expressions": []}\n',
               "field expressions: expected at least one of the expressions"),
    _pairs_row("p.jsonl", '{"image": "a.jpg", "expression": "x", "expressions": ["y"]}\n',
               "expected either 'expression'"),
    _pairs_row("p.jsonl", '{"image": "a.jpg", "expression": "\\ud800"}\n',
               "expected text without lone surrogate escapes"),
    _pairs_row("p.jsonl", '{"image": "a\\u0000.jpg", "expression": "x"}\n', "field image: expected a path without NUL"),
    _pairs_row("p.jsonl", "[" * 100 + "]" * 100 + "\n", "nests lists and mappings 100 levels deep"),
    _pairs_row("p.csv", 'image,expression\na.jpg,"the dog\nb.jpg,the cat\n',
               "line 2: a quote opened on this line is never closed"),
    _pairs_row("p.csv", "image,expression\na.jpg\n", "line 2: lacks the field expression"),
]  # fmt: skip


def _preset(text: str) -> Prepare:
    return write_file("p.yaml", text)


def _show(name: str = "p.yaml") -> Args:
    return lambda p: ["config", "show", "--preset", p.tmp / name]


def _loop(p: Places) -> None:
    (p.tmp / "loop.yaml").symlink_to(p.tmp / "loop.yaml")
    _preset("base: loop.yaml\n")(p)


PRESETS = [
    Row("preset base a list", _show(), "p.yaml", _preset("base: [synthetic-tiny]\n"),
        says="field base: expected text, found ['synthetic-tiny']"),
    Row("preset base a number", _show(), "p.yaml", _preset("base: 5\n"), says="field base: expected text, found 5"),
    Row("preset base a mapping", _show(), "p.yaml", _preset("base: {name: x}\n"), says="found a mapping of 1 entry"),
    Row("preset base a boolean", _show(), "p.yaml", _preset("base: yes\n"), says="found true"),
    Row("preset base blank", _show(), "p.yaml", _preset("base: ' '\n"), says="the name of a packaged preset"),
    Row("preset description a list", _show(), "p.yaml", _preset("description: [a]\n"), says="field description"),
    Row("preset key not text", _show(), "p.yaml", _preset("1: 2\n"), says="expected a key that is text"),
    Row("preset base a folder", _show(), "common", lambda p: ((p.tmp / "common").mkdir(), _preset("base: common\n")(p)),
        says="is a folder, not a file"),
    Row("preset base a symbolic link loop", _show(), "loop.yaml", _loop, says="is a symbolic link loop"),
    Row("preset a symbolic link loop", _show("loop.yaml"), "loop.yaml",
        lambda p: (p.tmp / "loop.yaml").symlink_to(p.tmp / "loop.yaml"), says="is a symbolic link loop"),
    Row("preset alias bomb", _show(), "p.yaml", _preset("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))),
        says="expands to more than 100,000 values"),
    Row("preset alias to itself", _show(), "p.yaml", _preset("train: &t {data: *t}\n"), says="contains it"),
]  # fmt: skip


# ---------------------------------------------------------------------- paths that are symbolic link loops


def _looped(name: str) -> Callable[[Path], None]:
    """Make `name` (a folder of the row) a link to itself."""
    return lambda base: (base / name).symlink_to(base / name)


def _anns_loop(p: Places) -> None:
    prepared_copy()(p)
    shutil.rmtree(own_data(p) / "anns")
    _looped("anns")(own_data(p))


LOOPS = [  # issue 22 #19: each was reported as missing
    Row("data root a loop for train", lambda p: [*_train()(p), f"dataset.data_root={p.tmp / 'loop'}"], "loop",
        lambda p: _looped("loop")(p.tmp), says="is a symbolic link loop"),
    Row("data root a loop for prepare-data", lambda p: ["prepare-data", "--dataset", "refcoco", "--data-root",
        p.tmp / "loop"], "loop", lambda p: _looped("loop")(p.tmp), says="is a symbolic link loop"),
    Row("anns folder a loop for eval", lambda p: ["eval", p.checkpoint, "--device", "cpu", "--data-root", own_data(p)],
        "anns/synthetic.json", _anns_loop, says="is a symbolic link loop"),
]  # fmt: skip


@pytest.mark.parametrize(
    "row", [row.param() for row in INSTANCES + REFS + JSON_DATASETS + PREPARED + PAIRS + PRESETS + LOOPS]
)
def test_schema_violation(row: Row, places: Places) -> None:
    judge(row, places)


def test_the_preset_merge_key_works(places: Places) -> None:
    """A YAML merge key is no violation (issue 22 #33: it was called a syntax error)."""
    from tests.e2e.bad_inputs import run_cli

    _preset("base: synthetic-tiny\ntrain:\n  <<: {epochs: 3, batch_size: 6}\n  epochs: 4\n")(places)
    outcome = run_cli(["config", "show", "--preset", places.tmp / "p.yaml"], places.tmp)
    assert outcome.exit_code == 0, outcome.output
    assert "epochs: 4" in outcome.stdout and "batch_size: 6" in outcome.stdout
