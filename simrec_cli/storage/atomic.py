"""Atomic writes: every file is written to a temporary beside it and renamed into place.

An interrupted or failed write leaves either the old file or the new one, never a torn one, and a failure
becomes one line naming the file (see `failures`). The rename never replaces anything but a regular file: the
target is checked when the temporary is made and again just before the rename.

Temporary files and folders are named `.<target name>.<pid>.<random>.tmp`. Each is noted before it is made and
forgotten once it is renamed or removed, so a stop (Ctrl-C, SIGTERM) that lands anywhere, even between making a
temporary and taking charge of it, can remove what is left (`remove_unfinished_temporaries`). Only a process that
was killed leaves one behind, and `remove_stale_temporaries` recognises those by the pid of a process that is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from simrec_cli.errors import SimrecError
from simrec_cli.storage.failures import os_error_message, write_failure
from simrec_cli.storage.targets import TEMPORARY_SUFFIX, refuse_non_regular

_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
NAME_MAX_BYTES = 255  # the longest file name of Linux (ext4, xfs, tmpfs) and macOS file systems
_TEMPORARY_NAME_ROOM = 40  # bytes a temporary name adds: dots, the pid, mkstemp's random part, .tmp

Writer = Callable[[IO[Any]], None]

_unfinished: set[Path] = set()  # temporaries of this process not yet renamed into place or removed


def shortened_name(name: str, max_bytes: int) -> str:
    """`name` cut to at most `max_bytes` bytes of UTF-8 (never inside a character)."""
    return name.encode("utf-8", "surrogateescape")[:max_bytes].decode("utf-8", "ignore")


def _temporary_prefix(path: Path) -> str:
    """The start of a temporary name for `path`: its name cut so that the whole temporary name fits a file
    system, even when `path`'s own name is as long as one may be."""
    return f".{shortened_name(path.name, NAME_MAX_BYTES - _TEMPORARY_NAME_ROOM)}.{os.getpid()}."


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files and folders of writers that were killed (their process is gone).

    A live process's temporaries are left alone, so two commands writing to one folder do not collide.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if match is None or _process_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _new_temporary(path: Path, make: Callable[[Path], None]) -> Path:
    """A new temporary beside `path`, made by `make`, and noted as unfinished before it exists."""
    while True:
        temporary = path.parent / f"{_temporary_prefix(path)}{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
        _unfinished.add(temporary)
        try:
            make(temporary)
        except FileExistsError:
            _unfinished.discard(temporary)  # someone else's: another name
            continue
        except BaseException:
            discard(temporary)  # made or not: it was a fresh name of ours
            raise
        return temporary


def _make_private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def temporary_dir_beside(path: Path) -> Path:
    """A new, empty, world-readable folder beside `path` with the temporary naming (for staged folders)."""
    return _new_temporary(path, lambda temporary: temporary.mkdir(mode=0o755))


def temporary_link_beside(path: Path) -> Path:
    """A temporary hard link to the file `path`, beside it: the file kept under a temporary name while a commit
    replaces it, so the commit can put it back (raises OSError where the file system has no hard links)."""
    return _new_temporary(path, lambda temporary: os.link(path, temporary))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_file_beside(path: Path, fix: str = "choose another place", kept: str | None = None) -> Path:
    """A new, empty temporary file beside `path` (making `path`'s folder if needed), for a write of `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _new_temporary(path, _make_private_file)
    except OSError as exc:
        raise os_error_message(path, exc, fix, kept) from exc


def rename_into_place(temporary: Path, path: Path) -> None:
    """Rename a finished temporary over `path`, refusing (again, just before) anything but a regular file."""
    target = refuse_non_regular(path, "file")
    os.chmod(temporary, 0o666 & ~_current_umask())  # made 0600; keep the usual file mode
    os.replace(temporary, target)
    _unfinished.discard(temporary)


def discard(temporary: Path) -> None:
    """Remove a temporary file or folder that will not be renamed into place."""
    with contextlib.suppress(OSError):
        shutil.rmtree(temporary) if temporary.is_dir() and not temporary.is_symlink() else temporary.unlink()
    _unfinished.discard(temporary)


def settled(temporary: Path) -> None:
    """Note that `temporary` was renamed into place by its caller (it no longer needs removing on a stop)."""
    _unfinished.discard(temporary)


def remove_unfinished_temporaries() -> None:
    """Remove every temporary this process made and neither renamed nor removed (after a stop)."""
    for temporary in list(_unfinished):
        discard(temporary)


@contextlib.contextmanager
def atomic_path(path: Path, fix: str = "choose another place") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that needs a file name; renamed over `path` on success.

    A `path` that is not a regular file (a device, a FIFO, a folder) is refused before anything is written. On
    any failure the temporary file is removed, `path` keeps its old content, and a file-system error becomes
    one `SimrecError` (see `failures.write_failure`).
    """
    target = refuse_non_regular(path, "file")
    temporary = temporary_file_beside(target, fix)
    try:
        yield temporary
        rename_into_place(temporary, target)
    except Exception as exc:
        discard(temporary)
        failure = write_failure(path, exc, fix)
        if failure is None:
            raise
        raise failure from exc
    except BaseException:  # KeyboardInterrupt, SystemExit: nothing to explain, only to clean up
        discard(temporary)
        raise


def open_for_writing(path: Path, binary: bool) -> IO[Any]:
    """The one place a temporary file is opened for writing (tests put a full disk here)."""
    return open(path, "wb") if binary else open(path, "w", encoding="utf-8")


def write_temporary(temporary: Path, write: Writer, binary: bool) -> None:
    with open_for_writing(temporary, binary) as handle:
        write(handle)


def atomic_write(path: Path, write: Writer, binary: bool = False, fix: str = "choose another place") -> None:
    """Run `write` on a temporary file beside `path`, then rename it over `path`."""
    with atomic_path(path, fix) as temporary:
        write_temporary(temporary, write, binary)


def create_new(path: Path, content: bytes, fix: str = "choose another place") -> bool:
    """Write `content` as the new file `path`, never replacing what is there; False when the name is taken.

    The content goes to a temporary beside `path`, which is then hard-linked to its name: the link fails when the
    name exists, even when another process made it after the caller looked, so two writers never replace each
    other's file. Where the file system has no hard links, the name is claimed by creating it exclusively and the
    temporary renamed over that claim.
    """
    try:
        temporary = temporary_file_beside(path, fix)
        try:
            write_temporary(temporary, lambda handle: handle.write(content), binary=True)
            os.chmod(temporary, 0o666 & ~_current_umask())
            return _link_new(temporary, path)
        finally:
            discard(temporary)
    except Exception as exc:
        failure = write_failure(path, exc, fix)
        if failure is None:
            raise
        raise failure from exc


def _link_new(temporary: Path, path: Path) -> bool:
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        os.replace(temporary, path)
    return True


def json_text(data: Any) -> str:
    """Strict, compact JSON: NaN and infinity are refused (they are not JSON, and other readers reject them).

    `json.dumps` encodes in C; `json.dump` would run Python's encoder and write each of millions of small pieces
    through the temporary file's wrapper, about 8x slower.
    """
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def json_writer(path: Path, data: Any) -> Writer:
    """A writer of `data` as strict JSON for `path` (see `json_text`); a NaN or infinity is refused here, before
    anything is written."""
    try:
        text = json_text(data)
    except ValueError as exc:
        raise SimrecError(
            f"refused to write {path}: it would hold a NaN or infinite number, which JSON cannot represent",
            "the values come from the input; check it for NaN or infinity",
        ) from exc
    return lambda handle: handle.write(text)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write(path, json_writer(path, data))


def atomic_copy(source: Path, target: Path) -> None:
    """Copy `source` over `target` through a temporary file, so `target` is never half-copied."""
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
