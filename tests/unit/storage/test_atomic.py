"""The atomic writer: a failed write leaves the old file and no temporary, and says why in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simrec_cli.engine.checkpoint import atomic_save
from simrec_cli.errors import SimrecError
from simrec_cli.storage import atomic
from simrec_cli.storage.atomic import atomic_write, atomic_write_json, remove_stale_temporaries
from simrec_cli.storage.targets import check_writable_dir, check_writable_file
from tests.faults import failing_writes, small_tmpfs


def _no_temporaries(folder: Path) -> None:
    assert [path.name for path in folder.iterdir() if path.name.endswith(".tmp")] == []


def _assert_disk_full_kept_old(error: pytest.ExceptionInfo[SimrecError], target: Path, old: bytes) -> None:
    assert "disk full" in error.value.message and str(target) in error.value.message
    assert "was left as it was" in (error.value.hint or "")
    assert target.read_bytes() == old
    _no_temporaries(target.parent)


def test_torch_save_on_a_full_disk_is_one_error_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.pth"
    atomic_save({"epoch": 1}, target)
    old = target.read_bytes()
    failing_writes(monkeypatch, budget=300)  # torch.save then raises RuntimeError on top of the OSError
    with pytest.raises(SimrecError) as error:
        atomic_save({"weights": torch.zeros(10_000)}, target)
    _assert_disk_full_kept_old(error, target, old)


def test_torch_save_on_a_real_full_tmpfs(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", 512) as folder:
        target = folder / "last.pth"
        atomic_save({"epoch": 1}, target)
        old = target.read_bytes()
        with pytest.raises(SimrecError) as error:
            atomic_save({"weights": torch.zeros(1_000_000)}, target)  # 4 MB on a 512 KiB disk
        _assert_disk_full_kept_old(error, target, old)


def test_json_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "anns.json"
    atomic_write_json(target, {"train": []})
    failing_writes(monkeypatch)
    with pytest.raises(SimrecError) as error:
        atomic_write_json(target, {"train": [1, 2, 3]})
    _assert_disk_full_kept_old(error, target, b'{"train":[]}')


def test_json_never_holds_nan_or_infinity(tmp_path: Path) -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(SimrecError, match="NaN or infinite"):
            atomic_write_json(tmp_path / "x.json", {"bbox": [1, 2, value, 4]})
    assert not (tmp_path / "x.json").exists()
    _no_temporaries(tmp_path)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("name", ["a" * 251 + ".jpg", "é" * 125 + ".p"], ids=["ascii", "two-byte characters"])
def test_a_file_with_the_longest_name_is_written_atomically(tmp_path: Path, name: str) -> None:
    """The temporary name beside a 255-byte file name is cut to fit, not refused as too long."""
    atomic_write(tmp_path / name, lambda handle: handle.write("x"))
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    stale = [tmp_path / f".last.pth.{dead}.k2j4h5g6.tmp", tmp_path / f".results.png.{dead}.ab_cd123.tmp"]
    staged = tmp_path / f".synthetic.{dead}.x1y2z3w4.tmp"
    live = tmp_path / f".best.pth.{alive}.q1w2e3r4.tmp"
    kept = [tmp_path / "last.pth", tmp_path / ".hidden.tmp", tmp_path / "notes.1234.tmp", live]
    for path in [*stale, *kept]:
        path.write_bytes(b"x")
    staged.mkdir()
    (staged / "000001.jpg").write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([*stale, staged])
    assert all(path.exists() for path in kept)


def test_output_checks_create_nothing(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "a" / "b", "run directory", "train.output_dir")
    check_writable_file(tmp_path / "c" / "m.json", "metrics file", "--json")
    assert sorted(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SimrecError, match="is a file, not a folder") as error:
        check_writable_dir(blocker / "run", "run directory", "train.output_dir")
    assert "train.output_dir" in (error.value.hint or "")
    with pytest.raises(SimrecError, match="is a folder"):
        check_writable_file(tmp_path, "metrics file", "--json")
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


def test_read_only_folder_is_refused_before_work(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "ro", 64, read_only=True) as folder:
        with pytest.raises(SimrecError, match="read-only file system") as error:
            check_writable_file(folder / "m.json", "metrics file", "--json")
        assert "--json" in (error.value.hint or "")


@pytest.mark.parametrize("where", ["making the temporary", "taking charge of it", "writing it"])
def test_a_stop_anywhere_in_a_write_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A KeyboardInterrupt (Ctrl-C or SIGTERM) can land between any two instructions; whatever it interrupted,
    the command's way out removes the temporaries it made, and the old file stays."""
    target = tmp_path / "out.json"
    target.write_text("old")
    make = atomic._make_private_file

    def interrupted_make(path: Path) -> None:
        make(path)
        if where == "making the temporary":
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_make_private_file", interrupted_make)
    if where == "taking charge of it":  # the file exists and its maker returned, before the writer's try block
        made = atomic.temporary_file_beside

        def interrupted_beside(path: Path, *args: object, **kwargs: object) -> Path:
            made(path, *args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(atomic, "temporary_file_beside", interrupted_beside)

    def write(handle: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(target, write)
    atomic.remove_unfinished_temporaries()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.json"]
    assert target.read_text() == "old"
