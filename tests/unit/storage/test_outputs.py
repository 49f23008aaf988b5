"""A command's outputs together: checked when declared, staged, renamed at the commit, and what a failure says."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from simrec_cli.errors import SimrecError
from simrec_cli.storage.outputs import OutputFile, OutputFolder, Outputs
from simrec_cli.storage.owned import FolderKind
from tests.faults import failing_writes

KIND = FolderKind(
    "result",
    "result.json",
    lambda data: isinstance(data, dict) and data.get("format") == "test-result-v1",
    lambda data, relative: relative in ("result.json", "parts/", *data["parts"]),
)


def _files(tmp_path: Path) -> tuple[OutputFile, OutputFile]:
    return OutputFile(tmp_path / "a.json", "first file", "--a"), OutputFile(tmp_path / "b.json", "second file", "--b")


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_outputs_appear_only_at_the_commit(tmp_path: Path) -> None:
    first, second = _files(tmp_path)
    with Outputs(first, second) as outputs:
        outputs.write_json(first, {"a": 1})
        outputs.write_json(second, {"b": 2})
        assert not first.path.exists() and not second.path.exists()
    assert json.loads(first.path.read_text()) == {"a": 1} and json.loads(second.path.read_text()) == {"b": 2}
    assert _leftovers(tmp_path) == []


def test_a_failure_while_staging_leaves_every_output_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _files(tmp_path)
    first.path.write_text("old")
    failing_writes(monkeypatch, target="b.json")
    with pytest.raises(SimrecError) as error, Outputs(first, second) as outputs:
        outputs.write_json(first, {"a": 1})
        outputs.write_json(second, {"b": 2})
    assert "disk full" in error.value.message and "b.json" in error.value.message
    assert error.value.hint is not None and "nothing was written; a.json was left as before" in error.value.hint
    assert first.path.read_text() == "old" and not second.path.exists() and _leftovers(tmp_path) == []


def _staged_with_a_fifo_made_after(tmp_path: Path, old: str | None) -> tuple[OutputFile, OutputFile, Outputs]:
    """Two outputs staged (the first replacing a file holding `old`, if given), then a FIFO made at the second
    path after the up-front check: the commit's check just before the renames refuses it."""
    first, second = _files(tmp_path)
    if old is not None:
        first.path.write_text(old)
    outputs = Outputs(first, second)
    outputs.write_json(first, {"a": 1})
    outputs.write_json(second, {"b": 2})
    os.mkfifo(second.path)
    return first, second, outputs


def test_a_rename_refused_at_the_commit_puts_back_what_was_already_in_place(tmp_path: Path) -> None:
    """A FIFO made at the second path after the up-front check: the commit checks again, refuses it, and puts the
    first output back as it was (its old content), so the outputs are committed together or not at all."""
    first, _, outputs = _staged_with_a_fifo_made_after(tmp_path, "old")
    with pytest.raises(SimrecError) as error:
        outputs.commit()
    assert "named pipe" in error.value.message
    assert error.value.hint == "nothing was written; a.json, b.json were left as before"
    assert first.path.read_text() == "old" and _leftovers(tmp_path) == []


def test_a_new_output_already_in_place_goes_again_when_a_later_one_fails(tmp_path: Path) -> None:
    _, _, outputs = _staged_with_a_fifo_made_after(tmp_path, None)
    with pytest.raises(SimrecError, match="named pipe"):
        outputs.commit()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.json"]


def test_a_folder_already_swapped_in_is_swapped_back_when_a_later_output_fails(tmp_path: Path) -> None:
    _our_folder(tmp_path / "out")
    folder, file = OutputFolder(tmp_path / "out", KIND, "--out"), OutputFile(tmp_path / "b.json", "file", "--b")
    outputs = Outputs(folder, file)
    outputs.folder(folder).write_text("result.json", json.dumps({"format": "test-result-v1", "parts": []}))
    outputs.write_json(file, {"b": 2})
    os.mkfifo(file.path)
    with pytest.raises(SimrecError, match="named pipe"):
        outputs.commit()
    assert (tmp_path / "out" / "parts" / "one.txt").read_text() == "ours"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.json", "out"]


def test_an_output_that_cannot_be_put_back_is_named_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system without hard links the replaced file cannot be kept: the message then says exactly what is
    where (the first output written, the second not)."""
    first, second, outputs = _staged_with_a_fifo_made_after(tmp_path, "old")

    def no_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(SimrecError) as error:
        outputs.commit()
    assert error.value.hint == f"written: --a {first.path}; not written: --b {second.path}"
    assert json.loads(first.path.read_text()) == {"a": 1} and _leftovers(tmp_path) == []


def test_two_outputs_at_one_path_are_refused_when_declared(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="--a and --b both name"):
        Outputs(OutputFile(tmp_path / "x", "first", "--a"), OutputFile(tmp_path / "x", "second", "--b"))


def _our_folder(folder: Path, *extra: str) -> None:
    (folder / "parts").mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"format": "test-result-v1", "parts": ["parts/one.txt"]}))
    (folder / "parts" / "one.txt").write_text("ours")
    for name in extra:
        (folder / name).write_text("the user's")


def test_a_folder_of_ours_is_replaced_whole(tmp_path: Path) -> None:
    _our_folder(tmp_path / "out")
    target = OutputFolder(tmp_path / "out", KIND, "--out")
    with Outputs(target) as outputs:
        outputs.folder(target).write_text("result.json", json.dumps({"format": "test-result-v1", "parts": []}))
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["result.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staged or swapped folder left


@pytest.mark.parametrize("foreign", ["notes.txt", "parts/two.txt"])
def test_a_folder_with_one_foreign_entry_is_refused_naming_it(tmp_path: Path, foreign: str) -> None:
    _our_folder(tmp_path / "out", foreign)
    with pytest.raises(SimrecError, match=f"holds {re.escape(foreign)}, which simrec did not write there"):
        Outputs(OutputFolder(tmp_path / "out", KIND, "--out"))


def test_a_folder_whose_marker_is_not_ours_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").write_text(json.dumps({"format": "someone-else", "parts": []}))
    with pytest.raises(SimrecError, match=r"no result\.json of simrec"):
        Outputs(OutputFolder(tmp_path / "out", KIND, "--out"))
