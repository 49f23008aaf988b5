"""The reading mechanism: bounded parsing, paths that are not files, and the one-line message of a violation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.annotations import annotations_format
from simrec_cli.schemas.files import path_problem, read_bytes
from simrec_cli.schemas.formats import MAX_NESTING, Unreadable, json_nesting, parse_json, parse_yaml
from simrec_cli.schemas.refer import INSTANCES, REFS
from simrec_cli.schemas.violations import shown


def _message(error: pytest.ExceptionInfo[SimrecError]) -> str:
    return error.value.message


@pytest.mark.parametrize(
    ("text", "depth"),
    [(b"5", 0), (b"[]", 1), (b'{"a": [[1], {"b": 2}]}', 3), (b'["[[[[", "\\"[[["]', 1), (b'"\\\\" [[', 2)],
)
def test_nesting_is_measured_without_parsing(text: bytes, depth: int) -> None:
    """Brackets inside strings, escaped quotes and escaped backslashes do not count."""
    assert json_nesting(text) == depth


def test_deep_json_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(Unreadable, match=f"100,000 levels deep, more than {MAX_NESTING}"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert parse_json(b"[" * MAX_NESTING + b"]" * MAX_NESTING) is not None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(b"{", "not valid JSON: Expecting property name"), (b"\xff\xfe", "not UTF-8"),
     (b"[" + b"1" * 5000 + b"]", "holds a number of more than 4,300 digits")],
)  # fmt: skip
def test_unparsable_json_is_one_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(Unreadable, match=problem):
        parse_json(raw)


def test_yaml_bounds_aliases_nesting_and_self_reference() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
    )
    with pytest.raises(Unreadable, match="expands to more than 100,000 values"):
        parse_yaml(laughs)
    with pytest.raises(Unreadable, match="more than 64 levels deep"):
        parse_yaml("[" * 100 + "]" * 100)
    with pytest.raises(Unreadable, match="nests lists and mappings too deeply"):  # deeper than PyYAML recurses
        parse_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(Unreadable, match="alias at line 1 to a value that contains it"):
        parse_yaml("&a [*a]")
    assert parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n") == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}


def test_a_symbolic_link_loop_is_named_as_such(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert path_problem(loop) == "is a symbolic link loop (a link on it points back to itself)"
    assert "symbolic link loop" in str(path_problem(loop / "instances.json"))
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "gone")
    assert "broken symbolic link" in str(path_problem(broken))
    assert path_problem(tmp_path) == "is a folder, not a file"
    assert path_problem(tmp_path, folder=True) is None


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(SimrecError, match="is not a regular file"):
        read_bytes(fifo, "annotation file", "give a file", 100)  # opening it would block


def test_a_file_beyond_its_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2000)
    with pytest.raises(SimrecError, match=r"big\.json is 2,000 bytes, more than the 1,000 bytes"):
        read_bytes(path, "annotation file", "give a file", 1000)


def test_a_violation_names_file_entry_field_expected_and_found(tmp_path: Path) -> None:
    instances = {"images": [{"id": 1, "width": 10, "height": 10}, {"id": 2, "width": "640", "height": 10}],
                 "annotations": [], "categories": []}  # fmt: skip
    with pytest.raises(SimrecError) as error:
        INSTANCES.check(instances, "instances.json")
    assert _message(error) == "instances.json: image #1 (id 2), field width: expected a whole number, found '640'"
    refs = [{"ref_id": 7, "ann_id": 1, "image_id": 1, "split": "train", "sentences": [{"sent": 5}]}]
    with pytest.raises(SimrecError) as error:
        REFS.check(refs, "refs(unc).p")
    assert _message(error) == "refs(unc).p: ref #0 (ref_id 7), field sentences[0].sent: expected text, found 5"


def test_found_values_are_shown_short() -> None:
    assert shown("x" * 5000) == quoted("x" * 5000) and len(shown("x" * 5000)) < 100
    assert shown(list(range(10**5))) == "a list of 100,000 items"
    assert shown([1, 2, float("nan"), 4]) == "[1, 2, nan, 4]"
    assert shown({"a": 1, "b": 2, "c": 3, "d": 4}) == "a mapping of 4 entries (keys 'a', 'b', 'c', ...)"
    assert shown(10**5000) == "<an integer of about 5,000 digits>"
    nested: list = []
    for _ in range(sys.getrecursionlimit() * 2):
        nested = [nested]
    assert quoted(nested) == "<a list nested too deeply to show>"


def test_every_violation_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "anns.json"
    path.write_text('{"train": [{"iid": 1, "bbox": [0, 0, 1, 1], "refs": ["a\\nb"], "cat_id": "x\\ny"}]}')
    with pytest.raises(SimrecError) as error:
        annotations_format("refcoco").read(path)
    assert "\n" not in str(error.value) and "field cat_id: expected a whole number, found 'x\\ny'" in str(error.value)


def test_long_values_typed_by_a_user_are_quoted_short() -> None:
    """Issue 22 #28's class: an option's value of thousands of characters is cut in the message, not echoed whole."""
    import torch

    from simrec_cli.engine.distributed import resolve_device
    from simrec_cli.engine.protocol import protocol_named
    from simrec_cli.models.precision import resolve_precision

    long = "x" * 5000
    for call in (lambda: resolve_device(long), lambda: protocol_named(long),
                 lambda: resolve_precision(long, torch.device("cpu"))):  # fmt: skip
        with pytest.raises(SimrecError) as error:
            call()
        assert "'xxx" in error.value.message and "(5,000 characters)" in error.value.message
        assert len(error.value.message) < 200
