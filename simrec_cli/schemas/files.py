"""Opening an input file: one line for every way a path can fail to be a readable file of bounded size.

Path.exists() and friends answer False for a symbolic link loop and for a broken link alike, which made such a
path read as "missing". `path_problem` tells them apart. A FIFO or a device is refused before it is opened: a
FIFO would block the reader until some other process writes to it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np

from simrec_cli.errors import SimrecError

MEBIBYTE = 1 << 20


def _size(size: int) -> str:
    return f"{size / MEBIBYTE:,.1f} MiB" if size >= MEBIBYTE else f"{size:,} bytes"


def missing_reason(path: Path) -> str:
    """Why a path that does not lead to a file or folder is not there: a loop, a broken link, or plain absence."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (a link on it points back to itself)"
        if os.path.islink(path):
            return f"is a broken symbolic link (to {os.readlink(path)}, which does not exist)"
        if exc.errno == errno.ENOTDIR:
            return "does not exist (a part of the path is a file, not a folder)"
        if exc.errno == errno.EACCES:
            return "cannot be reached (permission denied on a folder of the path)"
        if exc.errno == errno.ENAMETOOLONG:
            return "has a name too long for the file system"
        return "does not exist"
    return "exists"


def path_problem(path: Path, *, folder: bool = False) -> str | None:
    """What keeps `path` from being a file (or, with `folder`, a folder) to read, in words, or None."""
    try:
        info = os.stat(path)
    except OSError:
        return missing_reason(path)
    if folder:
        return None if stat.S_ISDIR(info.st_mode) else "is a file, not a folder"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a FIFO, socket or device)"
    return None


def require_path(path: Path, what: str, fix: str, *, folder: bool = False, missing: str | None = None) -> Path:
    """`path` when it is a readable file (or folder); else one line: '{what} {path} {problem}' and `fix` (or
    `missing`, when the path simply does not exist: a step to run first, say)."""
    problem = path_problem(path, folder=folder)
    if problem is not None:
        raise SimrecError(f"{what} {path} {problem}", missing if missing and problem == "does not exist" else fix)
    return path


def read_bytes(path: Path, what: str, fix: str, limit: int) -> bytes:
    """The content of the regular file `path`, refused in one line when it is missing, not a file, unreadable or
    larger than `limit` bytes (checked before reading, so a huge file costs nothing)."""
    require_path(path, what, fix)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            content = handle.read(limit + 1) if size <= limit else b""
    except OSError as exc:
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else exc.strerror or str(exc)
        raise SimrecError(f"cannot read {what} {path}: {reason}", "check the file and its permissions") from exc
    if size > limit or len(content) > limit:
        raise SimrecError(
            f"{what} {path} is {_size(max(size, len(content)))}, more than the {_size(limit)} such a file may hold",
            "check that it is the right file",
        )
    return content


def read_array(path: Path, what: str, fix: str, mmap: bool = False) -> np.ndarray:
    """A numeric `.npy` array (never a pickle; with `mmap`, mapped rather than read), or one line naming `path`."""
    require_path(path, what, fix)
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # numpy parses the header with Python's tokenizer: a damaged one raises any of several
        raise SimrecError(f"{what} {path} is not a readable .npy array ({type(exc).__name__})", fix) from exc
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise SimrecError(f"{what} {path} holds no array of numbers", fix)
    return array
