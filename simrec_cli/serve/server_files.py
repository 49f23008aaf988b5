"""Read an image a request names by path (`image_path`, only with `--allow-paths`): regular files only, bounded.

A path can name anything: a FIFO (whose read waits for a writer forever, holding a thread and, on shutdown, the
server), a device (`/dev/zero` never ends), a socket or a folder. The path's type is checked, the file opened
without blocking and its type checked again on the open descriptor (so a link swapped in between cannot slip
past), and at most `max_bytes` are read, the limit an uploaded body has.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from simrec_cli.errors import quoted
from simrec_cli.serve.problems import RequestProblem

FIELD = "image_path"
READ_CHUNK = 1024 * 1024
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # a FIFO opens at once, a tty stays ours


def read_server_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`; a RequestProblem (422) naming what it is instead, or why not."""
    shown = quoted(str(path))
    try:
        _refuse_unless_regular(os.stat(path).st_mode, shown)  # names a socket, which cannot even be opened
        descriptor = os.open(path, OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise RequestProblem(422, "image_not_found", f"{shown} does not exist on the server", FIELD) from exc
    except OSError as exc:
        raise RequestProblem(422, "image_unreadable", f"{shown} cannot be read: {exc.strerror}", FIELD) from exc
    try:
        _refuse_unless_regular(os.fstat(descriptor).st_mode, shown)  # what was opened, if it changed since
        return _read_at_most(descriptor, max_bytes, shown)
    except OSError as exc:
        raise RequestProblem(422, "image_unreadable", f"{shown} cannot be read: {exc.strerror}", FIELD) from exc
    finally:
        os.close(descriptor)


def _refuse_unless_regular(mode: int, shown: str) -> None:
    if not stat.S_ISREG(mode):
        detail = f"{shown} is {_kind(mode)}, not an image file; name a regular file"
        raise RequestProblem(422, "not_a_file", detail, FIELD)


def _read_at_most(descriptor: int, max_bytes: int, shown: str) -> bytes:
    """Read to the end, refusing a file past `max_bytes` (its size is checked as read: a file may grow)."""
    parts: list[bytes] = []
    size = 0
    while True:
        part = os.read(descriptor, READ_CHUNK)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > max_bytes:
            raise RequestProblem(
                422,
                "file_too_large",
                f"{shown} has more than {max_bytes / (1024 * 1024):g} MB; this server reads files up to its "
                "--max-body-mb",
                FIELD,
            )
        parts.append(part)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
