"""Output targets: what is refused as a file to replace, and numbered folders claimed one per process."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simrec_cli.errors import SimrecError
from simrec_cli.storage.atomic import atomic_write
from simrec_cli.storage.targets import new_numbered_folder, not_a_regular_file, refuse_non_regular


def _device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device's numbers, in the test's folder


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _device_link(path: Path) -> None:
    _device(path.with_name("device"))
    path.symlink_to(path.with_name("device"))


SPECIAL: dict[str, tuple[Callable[[Path], object], str]] = {
    "device": (_device, "a character device"),
    "fifo": (os.mkfifo, "a named pipe (FIFO)"),
    "socket": (_socket, "a socket"),
    "folder": (Path.mkdir, "a folder"),
    "link to a device": (_device_link, "a symbolic link to a character device"),
    "dangling link": (lambda path: path.symlink_to(path.with_name("nowhere")), "a symbolic link to nothing"),
    "link loop": (lambda path: path.symlink_to(path), "a symbolic link loop"),
}


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_is_named_and_never_replaced(tmp_path: Path, kind: str) -> None:
    make, words = SPECIAL[kind]
    target = tmp_path / "out.json"
    make(target)
    before = target.lstat()
    assert (not_a_regular_file(target) or "").startswith(words)
    with pytest.raises(SimrecError, match="not a regular file"):
        atomic_write(target, lambda handle: handle.write("{}"))
    after = target.lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def test_a_link_to_a_regular_file_replaces_the_file_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    assert refuse_non_regular(tmp_path / "link.json", "file") == tmp_path / "real.json"
    atomic_write(tmp_path / "link.json", lambda handle: handle.write("new"))
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"


CLAIM = "import sys; from pathlib import Path; from simrec_cli.storage.targets import new_numbered_folder; " \
        "print(new_numbered_folder(Path(sys.argv[1]), 'train'))"  # fmt: skip


def test_processes_claiming_numbered_folders_at_once_each_get_their_own(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    assert new_numbered_folder(tmp_path, "train") == tmp_path / "train2"
    claims = [subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
              for _ in range(6)]  # fmt: skip
    names = [Path(claim.communicate(timeout=60)[0].strip()).name for claim in claims]
    assert sorted(names) == sorted(f"train{number}" for number in range(3, 9))
