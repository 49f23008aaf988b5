"""Real and simulated file-system faults for tests: a small tmpfs that fills up, and writes that fail.

`small_tmpfs` mounts a real tmpfs of a few MB when the tests run as root where mounting is allowed (a
container without CAP_SYS_ADMIN refuses it), and skips the test with the reason otherwise. `failing_writes`
simulates the same fault anywhere: every write through simrec's atomic writer raises ENOSPC once `budget`
bytes have been written. `failing_rename` makes the rename of a finished temporary into place fail (an I/O error):
the one step of a commit that comes after every output was written.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest


@contextlib.contextmanager
def small_tmpfs(folder: Path, size_kib: int, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of `size_kib` KiB on `folder` for the duration of the block (skip when not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the simulated variant covers this machine")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kib}k,mode=0755" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                             text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs was refused here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path | None]:
    """`folder` made unwritable: a read-only tmpfs for root, mode 0555 for anyone else; None if neither works."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(folder)], capture_output=True,
                             check=False)  # fmt: skip
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave_kib: int) -> None:
    """Write a filler file so that only about `leave_kib` KiB stay free on `folder`'s file system."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    size = max(0, free - leave_kib * 1024)
    with open(folder / "filler.bin", "wb") as handle:
        handle.write(b"\0" * size)


class _FullDiskFile:
    """A binary or text file whose writes raise ENOSPC past a byte budget shared by all files."""

    def __init__(self, handle: IO[Any], budget: list[int]) -> None:
        self._handle = handle
        self._budget = budget

    def write(self, data: Any) -> int:
        size = len(data)
        if size > self._budget[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= size
        return self._handle.write(data)

    def fileno(self) -> int:
        """None to give: a writer that would write to the descriptor itself (Pillow does) writes through write()."""
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def failing_writes(monkeypatch: pytest.MonkeyPatch, budget: int = 0, target: str | None = None) -> None:
    """Make simrec's atomic writes fail with ENOSPC once `budget` bytes have been written in all.

    With `target` (a file name such as "last.pth", or a suffix such as ".jpg"), only the writes of files whose
    name ends with it fail; every other file is written normally.
    """
    from simrec_cli.storage import atomic

    original = atomic.open_for_writing
    remaining = [budget]

    def open_full(path: Path, binary: bool) -> Any:
        handle = original(path, binary)
        # .NAME.PID.RANDOM.tmp -> NAME; a file inside a staged folder has its own name already
        final_name = path.name.lstrip(".").rsplit(".", 3)[0] if path.name.endswith(".tmp") else path.name
        if target is not None and not final_name.endswith(target):
            return handle
        return _FullDiskFile(handle, remaining)

    monkeypatch.setattr(atomic, "open_for_writing", open_full)


def failing_rename(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Make the first rename of a temporary (`*.tmp`) over a file whose name ends with `target` raise EIO."""
    original = os.replace
    failed: list[str] = []

    def replace(source: Any, destination: Any) -> None:
        if not failed and str(source).endswith(".tmp") and str(destination).endswith(target):
            failed.append(str(destination))
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(destination))
        original(source, destination)

    monkeypatch.setattr(os, "replace", replace)
