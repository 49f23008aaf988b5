"""Properties of the readers the commands call: pairs files, word vectors, SLURM jobs and launch flags, presets and
settings overrides, REFER folders. Any input ends in a result or one SimrecError line."""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simrec_cli.data.annotations import load_annotations
from simrec_cli.data.masks import MaskStore
from simrec_cli.data.objects import read_objects
from simrec_cli.data.prepare import prepare_dataset
from simrec_cli.data.refer import load_refer
from simrec_cli.data.text import Vocabulary
from simrec_cli.data.vectors import load_word_vectors
from simrec_cli.engine.launcher import LaunchRequest, plan_processes
from simrec_cli.engine.slurm import first_host, slurm_allocation
from simrec_cli.predict.sources import requests_from_pairs
from simrec_cli.schemas.slurm import SlurmVariables
from simrec_cli.settings import load_settings
from simrec_cli.settings.loader import valid_keys
from tests.fuzzing import (
    JSON_VALUES,
    YAML_TEXT,
    examples,
    json_text,
    mutations,
    result_or_one_error,
    with_flipped_bytes,
)
from tests.refer_fixture import ReferFixture, python2_pickle_bytes, write_refer_fixture


def _fresh_folder() -> tempfile.TemporaryDirectory:
    """A folder per example: pytest's tmp_path is made once per test, not once per Hypothesis example."""
    return tempfile.TemporaryDirectory()


# ------------------------------------------------------------------------------------------------------ pairs

CSV_TOKENS = st.sampled_from(
    [
        "image",
        "expression",
        ",",
        '"',
        '""',
        "\n",
        "\r\n",
        "\r",
        "a.jpg",
        "the dog",
        " ",
        "\x00",
        "é",
        "x" * 300,
        "\ufeff",
    ]
)
CSV_TEXT = st.lists(st.one_of(CSV_TOKENS, st.text(max_size=6)), max_size=24).map("".join)
JSONL_LINES = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.builds(json_text, JSON_VALUES),
        st.builds(json_text, mutations({"image": "a.jpg", "expressions": ["the dog", "left"]})),
    ),
    max_size=5,
).map("\n".join)


@given(text=st.one_of(CSV_TEXT, CSV_TEXT.map(lambda body: "image,expression\n" + body)))
def test_any_csv_pairs_file_is_requests_or_one_error(text: str) -> None:
    with _fresh_folder() as name:
        path = Path(name) / "pairs.csv"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        result_or_one_error(lambda: requests_from_pairs(path))


@given(text=JSONL_LINES)
def test_any_jsonl_pairs_file_is_requests_or_one_error(text: str) -> None:
    with _fresh_folder() as name:
        path = Path(name) / "pairs.jsonl"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        result_or_one_error(lambda: requests_from_pairs(path))


# ------------------------------------------------------------------------------------------------ word vectors

WORDS = ["PAD", "UNK", "CLS", "dog", "left"]
VECTOR_LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "3 2",
                "2 300",
                "0 0",
                "dog 1 2",
                "left 0.5 x",
                "dog 1 2 3",
                "dog",
                "1" * 5000 + " 3",
                "",
                "New York 1 2",
                "dog nan inf",
                "left " + "1 " * 200,
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=6,
).map("\n".join)


@given(text=VECTOR_LINES, suffix=st.sampled_from([".txt", ".vec", ".gz"]))
def test_any_vector_text_file_is_vectors_or_one_error(text: str, suffix: str) -> None:
    with _fresh_folder() as name:
        path = Path(name) / f"vectors{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        result_or_one_error(lambda: load_word_vectors(path, WORDS))


@given(matrix=st.one_of(st.binary(max_size=200), with_flipped_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', "
                        b"'fortran_order': False, 'shape': (5, 2), }" + b" " * 40 + b"\n" + bytes(40))),
       words=st.one_of(st.binary(max_size=60), st.builds(lambda v: json_text(v).encode(), JSON_VALUES)),
       suffix=st.sampled_from([".txt", ".json"]))  # fmt: skip
def test_any_vector_matrix_and_word_list_are_vectors_or_one_error(matrix: bytes, words: bytes, suffix: str) -> None:
    with _fresh_folder() as name:
        path = Path(name) / "vectors.npy"
        path.write_bytes(matrix)
        path.with_suffix(suffix).write_bytes(words)
        result_or_one_error(lambda: load_word_vectors(path, WORDS))


# ---------------------------------------------------------------------------------------------- SLURM, launch

SLURM_VALUES = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "2",
            "8",
            "-1",
            "2abc",
            "8(x2)",
            "4(x2),1",
            "1" * 40,
            "gpu[01-04]",
            "n[0-999999999]",
            "node1",
            "a,b",
            "[",
            "]",
            "x[1-2]y[3-4]",
            " 3 ",
            "٣",
            "10.0.0.1",
            "n" * 300,
            "n[9-1]",
        ]
    ),
    st.text(max_size=12),
)
SLURM_JOBS = st.dictionaries(st.sampled_from(list(SlurmVariables.__annotations__)), SLURM_VALUES).map(
    lambda job: {"SLURM_JOB_ID": "4242", "PATH": "/nonexistent", **job}
)


@given(job=SLURM_JOBS, use_gpus=st.booleans())
def test_any_slurm_job_is_an_allocation_or_one_error(job: dict[str, str], use_gpus: bool) -> None:
    result_or_one_error(lambda: slurm_allocation(job, use_gpus=use_gpus))


@given(nodelist=SLURM_VALUES)
def test_any_node_list_has_a_first_host_or_one_error(nodelist: str) -> None:
    result_or_one_error(lambda: first_host(nodelist, "SLURM_JOB_NODELIST"))


FLAG_NUMBERS = st.one_of(st.none(), st.integers(-3, 5), st.integers())


@given(job=SLURM_JOBS, flags=st.tuples(FLAG_NUMBERS, FLAG_NUMBERS, FLAG_NUMBERS, FLAG_NUMBERS, FLAG_NUMBERS),
       master=st.one_of(st.none(), SLURM_VALUES), restarts=st.integers(-2, 3))  # fmt: skip
def test_any_launch_flags_make_a_plan_or_one_error(job: dict, flags: tuple, master: str | None, restarts: int) -> None:
    gpus, nproc, nnodes, node_rank, port = flags
    request = LaunchRequest(None if gpus is None else gpus, nproc, nnodes, node_rank, master, port, restarts)
    result_or_one_error(lambda: plan_processes(request, "cpu", job))


# ---------------------------------------------------------------------------------------- presets, overrides

KEYS = st.one_of(st.sampled_from(valid_keys()), st.text(max_size=12), st.sampled_from(["train", "", " ", "a..b"]))
OVERRIDES = st.lists(
    st.one_of(st.builds(lambda key, value: f"{key}={value}", KEYS, YAML_TEXT), st.text(max_size=20)), max_size=4
)


@given(overrides=OVERRIDES)
def test_any_overrides_are_settings_or_one_error(overrides: list[str]) -> None:
    result_or_one_error(lambda: load_settings("synthetic-tiny", overrides))


PRESET_TEXT = st.one_of(
    YAML_TEXT,
    st.builds(
        lambda base, body: f"base: {base}\n{body}",
        st.one_of(
            st.sampled_from(
                ["synthetic-tiny", "[synthetic-tiny]", "5", "{a: 1}", "yes", "~", "other.yaml", "/", "/dev/null", "."]
            ),
            YAML_TEXT,
        ),
        YAML_TEXT,
    ),
)


@given(text=PRESET_TEXT)
def test_any_preset_file_is_settings_or_one_error(text: str) -> None:
    with _fresh_folder() as name:
        path = Path(name) / "preset.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        (Path(name) / "other.yaml").write_text("base: preset.yaml\n")  # a cycle, when preset.yaml names it
        result_or_one_error(lambda: load_settings(path))


# --------------------------------------------------------------------------------------------------- REFER


@pytest.fixture(scope="module")
def refer(tmp_path_factory: pytest.TempPathFactory) -> ReferFixture:
    return write_refer_fixture(tmp_path_factory.mktemp("refer"), num_images=3, num_objects=6, crowd=True)


def _refer_copy(fixture: ReferFixture, root: Path, instances: object, refs: bytes) -> Path:
    """The fixture's REFER folder under `root` with the given files (its images linked, not copied)."""
    (root / "refcoco").mkdir()
    (root / "refcoco" / "instances.json").write_text(json_text(instances))
    (root / "refcoco" / "refs(unc).p").write_bytes(refs)
    (root / "images").mkdir()
    (root / "images" / "coco").symlink_to(fixture.image_dir)
    return root


REFS_PICKLES = st.one_of(
    st.builds(python2_pickle_bytes, JSON_VALUES), st.builds(lambda v: pickle.dumps(v, 2), JSON_VALUES)
)


@given(data=st.data())
@examples(0.25)
def test_any_refer_folder_is_prepared_or_one_error(refer: ReferFixture, data: st.DataObject) -> None:
    """The whole of prepare-data, masks included, on REFER files damaged in one place each."""
    instances = json.loads((refer.refer_dir / "instances.json").read_text())
    refs = [dict(ref) for ref in refer.refs]
    choice = data.draw(st.sampled_from(["instances", "refs", "pickle"]))
    if choice == "instances":
        instances = data.draw(mutations(instances))
        refs_bytes = python2_pickle_bytes(refs)
    elif choice == "refs":
        refs_bytes = python2_pickle_bytes(data.draw(mutations(refs)))
    else:
        refs_bytes = data.draw(st.one_of(REFS_PICKLES, with_flipped_bytes(python2_pickle_bytes(refs))))
    with _fresh_folder() as name:
        root = _refer_copy(refer, Path(name), instances, refs_bytes)
        result_or_one_error(lambda: load_refer(root / "refcoco", "refcoco", "unc"))
        result_or_one_error(lambda: prepare_dataset("refcoco", root, generate_mask=True))


def test_the_fuzzed_refer_copy_prepares_when_undamaged(refer: ReferFixture, tmp_path: Path) -> None:
    """The property's starting point is a dataset that prepares: the damage, not the copy, makes the errors."""
    instances = json.loads((refer.refer_dir / "instances.json").read_text())
    root = _refer_copy(refer, tmp_path, instances, python2_pickle_bytes(refer.refs))
    summary = prepare_dataset("refcoco", root, generate_mask=True)
    assert summary.splits["train"].expressions > 0 and summary.vocab_size > 3


# ------------------------------------------------------------------------------------------ prepared files

PREPARED = {
    "vocabulary": {"format": "simrec-vocabulary-v1", "words": ["PAD", "UNK", "CLS", "dog"]},
    "objects": {"format": "simrec-objects-v1", "categories": {"0": "dog"}, "images": {"1": [[0, 0, 5, 5, 0]]}},
    "masks": {"format": "simrec-rle-v1", "masks": {"3": {"size": [8, 10], "counts": "PPYo0"}, "4": {"size": [2, 2],
              "counts": "04"}}},
    "anns": {"train": [{"iid": 1, "bbox": [0, 0, 5, 5], "refs": ["the dog"], "cat_id": 0, "mask_id": 3}]},
}  # fmt: skip


def _read_prepared(kind: str, path: Path) -> object:
    """What train, eval and the report do with each prepared file."""
    if kind == "vocabulary":
        return Vocabulary.load(path)
    if kind == "objects":
        return read_objects(path).boxes
    if kind == "masks":
        store = MaskStore(path, path.parent / "legacy")
        return [store.get(key).sum() for key in ("3", "4", "5") if key in store]
    return load_annotations(path, "synthetic")


@pytest.mark.parametrize("kind", PREPARED)
@given(data=st.data())
def test_any_prepared_file_is_read_or_one_error(kind: str, data: st.DataObject) -> None:
    content = data.draw(st.one_of(st.builds(json_text, mutations(PREPARED[kind])), st.text(max_size=40)))
    with _fresh_folder() as name:
        path = Path(name) / f"prepared.{kind}.json"
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
        result_or_one_error(lambda: _read_prepared(kind, path))
