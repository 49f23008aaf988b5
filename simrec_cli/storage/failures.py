"""What a failed write or an unusable path means to the user, in one line naming the file and the fix.

A write that fails (disk full, read-only disk, no permission) becomes one `SimrecError` naming the file and the
cause, whatever layer raised it: `torch.save`, for one, reports a full disk as a RuntimeError on top of the
OSError, and Pillow raises an OSError without a file name.
"""

from __future__ import annotations

import errno
from pathlib import Path

from simrec_cli.errors import SimrecError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
PATH_QUOTE_LIMIT = 160  # characters of a path that a message shows


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError that caused `exc` (itself, or one in its cause/context chain), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reason(os_error: OSError) -> str:
    """The cause of a file-system error in a few words."""
    if os_error.errno in DISK_FULL:
        return "the disk is full"
    if os_error.errno == errno.EROFS:
        return "read-only file system"
    if os_error.errno in _NOT_ALLOWED:
        return "permission denied"
    if os_error.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way of a folder on that path"
    return os_error.strerror or str(os_error)


def write_failure(
    path: Path, exc: BaseException, fix: str = "choose another place", kept: str | None = None
) -> SimrecError | None:
    """One line for a failed write of `path`, or None when `exc` did not come from the file system.

    A `SimrecError` already says what went wrong, so it gets None too and travels on unchanged.
    """
    os_error = None if isinstance(exc, SimrecError) else os_error_in(exc)
    return None if os_error is None else os_error_message(path, os_error, fix, kept)


def os_error_message(
    path: Path, os_error: OSError, fix: str = "choose another place", kept: str | None = None
) -> SimrecError:
    """What a failed write of `path` means to the user (disk full, read-only, permission), and what is left.

    `kept` says what the failure left as it was; by default, `path` itself (or that nothing was written).
    """
    if kept is None:
        kept = f"{path.name} was left as it was" if path.exists() else "nothing was written"
    if os_error.errno in DISK_FULL:
        return SimrecError(
            f"disk full: cannot write {path} (no space left on the device holding {path.parent})",
            f"free some space there, or {fix}; {kept}",
        )
    return SimrecError(f"cannot write {path}: {reason(os_error)}", f"{fix}; {kept}")


_PATH_FIXES = {
    errno.ENAMETOOLONG: "shorten it: at most 255 bytes per file or folder name",
    errno.ELOOP: "a symbolic link on it points back to itself; fix or remove the link",
    errno.ENOTDIR: "a part of it is a file, not a folder",
}


def shown_path(path: str) -> str:
    """A path as a message shows it: whole, or its start and its end (where the file's name is) when long."""
    if len(path) <= PATH_QUOTE_LIMIT:
        return path
    return f"{path[: PATH_QUOTE_LIMIT // 4]}...{path[-PATH_QUOTE_LIMIT // 2 :]} ({len(path):,} characters)"


def path_failure(os_error: OSError) -> SimrecError:
    """One line for a file-system error on a path the user chose that no command foresaw (a name too long for
    the file system, a symbolic link loop), naming the path, the cause and the fix."""
    path = shown_path(str(os_error.filename))
    if os_error.errno in DISK_FULL:
        return SimrecError(f"disk full: cannot write {path}", "free some space there, or choose another place")
    fix = _PATH_FIXES.get(os_error.errno or 0, "check the path and its permissions")
    return SimrecError(f"cannot use {path}: {reason(os_error)}", fix)
