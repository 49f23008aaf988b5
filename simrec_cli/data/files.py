"""File plumbing shared by every module that writes: atomic writes, write-failure messages, output checks.

Every output is written to a temporary file in the target folder and renamed into place, so an interrupted
or failed write leaves either the old file or the new one, never a torn one. A write that fails (disk full,
read-only disk, no permission) becomes one `SimrecError` naming the file and the cause, whatever layer
raised it: `torch.save`, for one, reports a full disk as a RuntimeError on top of the OSError.

Temporary files and folders are named `.<target name>.<pid>.<random>.tmp`. Only a process that was killed
leaves one behind, and `remove_stale_temporaries` recognises those by the pid of a process that is gone.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from simrec_cli.errors import SimrecError

TEMPORARY_SUFFIX = ".tmp"
_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
PATH_QUOTE_LIMIT = 160  # characters of a path that a message shows


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError that caused `exc` (itself, or one in its cause/context chain), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(os_error: OSError) -> str:
    if os_error.errno in _DISK_FULL:
        return "the disk is full"
    if os_error.errno == errno.EROFS:
        return "read-only file system"
    if os_error.errno in _NOT_ALLOWED:
        return "permission denied"
    if os_error.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way of a folder on that path"
    return os_error.strerror or str(os_error)


def write_failure(path: Path, exc: BaseException, fix: str = "choose another place") -> SimrecError | None:
    """One line for a failed write of `path`, or None when `exc` did not come from the file system.

    A `SimrecError` already says what went wrong, so it gets None too and travels on unchanged.
    """
    os_error = None if isinstance(exc, SimrecError) else _os_error_in(exc)
    return None if os_error is None else os_error_message(path, os_error, fix)


def os_error_message(path: Path, os_error: OSError, fix: str = "choose another place") -> SimrecError:
    """What a failed write of `path` means to the user (disk full, read-only, permission), and what is left."""
    kept = f"{path.name} was left as it was" if path.exists() else "nothing was written"
    if os_error.errno in _DISK_FULL:
        return SimrecError(
            f"disk full: cannot write {path} (no space left on the device holding {path.parent})",
            f"free some space there, or {fix}; {kept}",
        )
    return SimrecError(f"cannot write {path}: {_reason(os_error)}", f"{fix}; {kept}")


_PATH_FIXES = {
    errno.ENAMETOOLONG: "shorten it: at most 255 bytes per file or folder name",
    errno.ELOOP: "a symbolic link on it points back to itself; fix or remove the link",
    errno.ENOTDIR: "a part of it is a file, not a folder",
}


def _shown_path(path: str) -> str:
    """A path as a message shows it: whole, or its start and its end (where the file's name is) when long."""
    if len(path) <= PATH_QUOTE_LIMIT:
        return path
    return f"{path[: PATH_QUOTE_LIMIT // 4]}...{path[-PATH_QUOTE_LIMIT // 2 :]} ({len(path):,} characters)"


def path_failure(os_error: OSError) -> SimrecError:
    """One line for a file-system error on a path the user chose that no command foresaw (a name too long for
    the file system, a symbolic link loop), naming the path, the cause and the fix."""
    path = _shown_path(str(os_error.filename))
    if os_error.errno in _DISK_FULL:
        return SimrecError(f"disk full: cannot write {path}", "free some space there, or choose another place")
    fix = _PATH_FIXES.get(os_error.errno or 0, "check the path and its permissions")
    return SimrecError(f"cannot use {path}: {_reason(os_error)}", fix)


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def check_writable_dir(folder: Path, what: str, option: str) -> None:
    """Prove that `folder` can be created (if missing) and accept files, without creating anything.

    Commands call this before any work, so a bad output path fails in a second, not after an hour. `option`
    names the flag or setting that chose the folder, for the fix.
    """
    fix = f"choose a writable folder with {option}"
    try:
        existing = _nearest_existing(folder)
    except OSError as exc:  # e.g. a name too long for the file system
        failure = path_failure(exc)
        raise SimrecError(f"cannot write the {what} to {failure.message.removeprefix('cannot use ')}",
                          f"{failure.hint}, or {fix}") from exc  # fmt: skip
    if not existing.is_dir():
        raise SimrecError(f"cannot write the {what} to {folder}: {existing} is a file, not a folder", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".write-test.{os.getpid()}.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as exc:
        raise SimrecError(f"cannot write the {what} to {folder}: {_reason(exc)}", fix) from exc


def check_writable_file(path: Path, what: str, option: str) -> None:
    """Prove, without creating anything, that the file `path` can be written (or replaced)."""
    if path.is_dir():
        raise SimrecError(f"the {what} {path} is a folder", f"give a file name with {option}")
    check_writable_dir(path.parent, what, option)


def check_separate_outputs(outputs: dict[str, Path | None], replaced_folders: tuple[str, ...] = ()) -> None:
    """Refuse two outputs of one command at one path, or an output inside a folder (named by its option in
    `replaced_folders`) that the command replaces as a whole: one would overwrite or delete the other."""
    given = {option: path.resolve() for option, path in outputs.items() if path is not None}
    for first, second in itertools.combinations(given, 2):
        if given[first] == given[second]:
            raise SimrecError(f"{first} and {second} both name {outputs[first]}", "give each output its own path")
        for folder, inside in ((first, second), (second, first)):
            if folder in replaced_folders and given[folder] in given[inside].parents:
                raise SimrecError(
                    f"{inside} {outputs[inside]} lies inside the {folder} folder, which is replaced as a whole",
                    f"write it outside {outputs[folder]}",
                )


def ensure_writable_dir(folder: Path, what: str, option: str) -> None:
    """Check `folder` as `check_writable_dir` does, then create it."""
    check_writable_dir(folder, what, option)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimrecError(
            f"cannot create the {what} folder {folder}: {exc.strerror or exc}", f"choose another with {option}"
        ) from exc


def topmost_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (what creating `folder` would add)."""
    missing = [candidate for candidate in [folder, *folder.parents] if not candidate.exists()]
    return missing[-1] if missing else None


@contextlib.contextmanager
def new_folders_removed_on_failure(*folders: Path) -> Iterator[None]:
    """If the block fails, remove again whichever of `folders` (and the parents made for them) it created."""
    created = {top for top in map(topmost_missing, folders) if top is not None}
    try:
        yield
    except BaseException:
        for top in created:
            shutil.rmtree(top, ignore_errors=True)
        raise


NAME_MAX_BYTES = 255  # the longest file name of Linux (ext4, xfs, tmpfs) and macOS file systems
_TEMPORARY_NAME_ROOM = 40  # bytes a temporary name adds: dots, the pid, mkstemp's random part, .tmp


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


def temporary_dir_beside(path: Path) -> Path:
    """A new, empty, world-readable folder beside `path` with the temporary naming (for staged folders)."""
    staged = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=TEMPORARY_SUFFIX))
    staged.chmod(0o755)  # mkdtemp makes it private; the final folder should read like any other
    return staged


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, fix: str = "choose another place") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that needs a file name; renamed over `path` on success.

    On any failure the temporary file is removed, `path` keeps its old content, and a file-system error
    becomes one `SimrecError` (see `write_failure`).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=TEMPORARY_SUFFIX)
        os.close(descriptor)
    except OSError as exc:
        raise os_error_message(path, exc, fix) from exc
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes 0600; keep the usual file mode
        os.replace(temporary, path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        failure = write_failure(path, exc, fix)
        if failure is None:
            raise
        raise failure from exc
    except BaseException:  # KeyboardInterrupt, SystemExit: nothing to explain, only to clean up
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _open_for_writing(path: Path, binary: bool) -> IO[Any]:
    return open(path, "wb") if binary else open(path, "w", encoding="utf-8")


def atomic_write(path: Path, write: Callable[[IO[Any]], None], binary: bool = False) -> None:
    """Run `write` on a temporary file beside `path`, then rename it over `path`."""
    with atomic_path(path) as temporary, _open_for_writing(temporary, binary) as handle:
        write(handle)


def json_text(data: Any) -> str:
    """Strict, compact JSON: NaN and infinity are refused (they are not JSON, and other readers reject them).

    `json.dumps` encodes in C; `json.dump` would run Python's encoder and write each of millions of small pieces
    through the temporary file's wrapper, about 8x slower.
    """
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


Writer = Callable[[IO[Any]], None]
Output = tuple[Path, Writer, bool]  # where, what writes it, whether binary


def json_output(path: Path, data: Any) -> Output:
    """`data` as strict JSON for `path` (see `json_text`); a NaN or infinity is refused before anything is written."""
    try:
        text = json_text(data)
    except ValueError as exc:
        raise SimrecError(
            f"refused to write {path}: it would hold a NaN or infinite number, which JSON cannot represent",
            "the values come from the input; check it for NaN or infinity",
        ) from exc
    return path, lambda handle: handle.write(text), False


def npy_output(path: Path, array: np.ndarray) -> Output:
    return path, lambda handle: np.save(handle, array), True


def atomic_write_all(outputs: list[Output]) -> None:
    """Write every output to a temporary beside it, then rename them all into place.

    A failed write (a full disk) leaves every old file as it was: never new annotations beside old masks.
    """
    with contextlib.ExitStack() as stack:
        for path, write, binary in outputs:
            temporary = stack.enter_context(atomic_path(path))
            with _open_for_writing(temporary, binary) as handle:
                write(handle)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_all([json_output(path, data)])


def atomic_copy(source: Path, target: Path) -> None:
    """Copy `source` over `target` through a temporary file, so `target` is never half-copied."""
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a fully written folder into place, removing the previous one only after the swap."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    if old.exists():
        shutil.rmtree(old)
