"""Properties of the bounded parsers and of the schema checks: any input ends in data or one SimrecError."""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.annotations import annotations_format
from simrec_cli.schemas.formats import Unreadable, json_nesting, parse_json, parse_plain_pickle, parse_yaml
from simrec_cli.schemas.pairs import PAIR
from simrec_cli.schemas.prepared import MASKS, OBJECTS, STORED_WORDS, VOCABULARY, WORD_LIST
from simrec_cli.schemas.preset import PRESET
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.refer import INSTANCES, REFS
from simrec_cli.schemas.reports import EXPORT_METADATA, REPORT, SPEED_RECORD
from simrec_cli.schemas.slurm import HOST
from simrec_cli.schemas.violations import shown
from tests.fuzzing import JSON_VALUES, YAML_TEXT, mutations, result_or_one_error, with_flipped_bytes

INSTANCES_DOCUMENT = {
    "images": [{"id": 1, "width": 10, "height": 8, "file_name": "a.jpg"}],
    "annotations": [
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 5, 0, 5, 5]]}
    ],
    "categories": [{"id": 1, "name": "dog"}],
}  # fmt: skip
REFS_DOCUMENT = [{"ref_id": 3, "ann_id": 7, "image_id": 1, "split": "train", "sentences": [{"sent": "the dog"}]}]
ENTRY = {"iid": 1, "bbox": [0, 0, 5, 5], "refs": ["the dog"], "cat_id": 0, "mask_id": 3}
FORMATS: dict[str, tuple[InputFormat[Any], Any]] = {
    "instances": (INSTANCES, INSTANCES_DOCUMENT),
    "refs": (REFS, REFS_DOCUMENT),
    "anns refcoco": (annotations_format("refcoco"), {"train": [ENTRY], "val": [ENTRY]}),
    "anns flickr": (annotations_format("flickr"), {"train": [{**ENTRY, "iid": "a.jpg"}]}),
    "anns vg": (annotations_format("vg"), {"train": [{**ENTRY, "url": "VG_100K/1.jpg"}]}),
    "anns merge": (annotations_format("merge"), {"train": [{**ENTRY, "data_source": "coco"}]}),
    "vocabulary": (VOCABULARY, {"format": "simrec-vocabulary-v1", "words": ["PAD", "UNK", "CLS", "dog"]}),
    "word list": (WORD_LIST, ["dog", "cat"]),
    "objects": (OBJECTS, {"format": "simrec-objects-v1", "categories": {"0": "d"}, "images": {"1": [[0, 0, 5, 5, 0]]}}),
    "masks": (MASKS, {"format": "simrec-rle-v1", "masks": {"3": {"size": [8, 10], "counts": "PPYo0"}}}),
    "pair": (PAIR, {"image": "a.jpg", "expression": "the dog"}),
    "preset": (PRESET, {"base": "synthetic-tiny", "description": "x", "train": {"epochs": 3}}),
    "stored words": (STORED_WORDS, ["PAD", "UNK", "CLS", "dog"]),
    "report": (REPORT, {"checkpoint_resolved": "/r/b.pth", "splits": [{"split": "val", "metrics": {"acc50": 90.0}}]}),
    "export metadata": (EXPORT_METADATA, {"settings": {}, "vocabulary": ["PAD", "UNK", "CLS"]}),
    "speed record": (SPEED_RECORD, {"version": 1, "row_seconds": {"torch": 0.1}, "setup_seconds": {"torch": 2.0}}),
}  # fmt: skip


@pytest.mark.parametrize("name", FORMATS)
def test_the_valid_documents_pass(name: str) -> None:
    schema, document = FORMATS[name]
    assert schema.check(document, name) is not None


@pytest.mark.parametrize("name", FORMATS)
@given(data=st.data())
def test_any_data_is_validated_or_one_error(name: str, data: st.DataObject) -> None:
    schema, document = FORMATS[name]
    hostile = data.draw(st.one_of(JSON_VALUES, mutations(document)))
    result_or_one_error(lambda: schema.check(hostile, f"{name}.json"))


@pytest.mark.parametrize("name", [name for name in FORMATS if FORMATS[name][0].parse is parse_json])
@given(data=st.data())
def test_any_json_file_is_read_or_one_error(name: str, data: st.DataObject) -> None:
    schema, document = FORMATS[name]
    raw = data.draw(st.one_of(st.binary(max_size=64), with_flipped_bytes(json.dumps(document).encode())))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.json"
        path.write_bytes(raw)
        result_or_one_error(lambda: schema.read(path))


@given(raw=st.one_of(st.binary(max_size=200), with_flipped_bytes(pickle.dumps(REFS_DOCUMENT, protocol=2))))
def test_any_refs_pickle_is_read_or_one_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "refs(unc).p"
        path.write_bytes(raw)
        result_or_one_error(lambda: REFS.read(path))


@given(raw=st.binary(max_size=300))
def test_the_parsers_return_data_or_say_why_not(raw: bytes) -> None:
    for parse in (parse_json, parse_plain_pickle):
        try:
            parse(raw)
        except Unreadable as problem:
            assert "\n" not in str(problem)


@given(text=YAML_TEXT)
def test_any_yaml_text_is_data_or_unreadable(text: str) -> None:
    with contextlib.suppress(Unreadable):
        parse_yaml(text)


@given(depth=st.integers(0, 3000), noise=st.text(alphabet='[]{}"\\ ,:a', max_size=40))
def test_nesting_is_bounded_whatever_the_brackets(depth: int, noise: str) -> None:
    raw = ("[" * depth + noise + "]" * depth).encode()
    assert json_nesting(raw) >= 0
    with contextlib.suppress(Unreadable):
        parse_json(raw)


@given(value=JSON_VALUES)
def test_values_are_shown_short(value: object) -> None:
    assert len(shown(value)) <= 200 and len(quoted(value)) <= 200


def test_shown_copes_with_nesting_deeper_than_repr() -> None:
    nested: list = []
    for _ in range(sys.getrecursionlimit() * 3):
        nested = [nested]
    assert shown(nested) == "a list of 1 item"
    with pytest.raises(SimrecError, match=r"found a list of 1 item"):
        REFS.check(nested, "refs.p")


@given(text=st.one_of(st.text(max_size=300), st.from_regex(r"[a-z0-9.\-_:\[\]]{1,80}", fullmatch=True)))
def test_any_host_is_accepted_or_one_error(text: str) -> None:
    result_or_one_error(lambda: HOST.check(text, "--master-addr"))
