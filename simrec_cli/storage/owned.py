"""Folders simrec writes, and the proof that an existing one is ours to write.

A folder a command replaces as a whole may be replaced only when it is new, empty, or provably written by simrec:
its marker file (such as `report.json`) says so with a kind and version of ours, and it holds no entry beyond
those that kind writes. One foreign file in it (notes, a paper draft, another tool's output) and the folder is
refused in one line that names the file, before any work is done and again just before the swap.

A folder a command adds files to and replaces files in (a run directory) needs only the marker: simrec writes
there only when the folder is new, empty, or marked as its own, and marks it before the first file goes in.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simrec_cli.errors import SimrecError
from simrec_cli.storage.atomic import atomic_write_json, settled, temporary_dir_beside
from simrec_cli.storage.targets import check_writable_dir, not_a_regular_file

MAX_MARKER_BYTES = 256 * 1024 * 1024  # a report.json of a million expressions is far below this


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder simrec writes whole. `is_ours(data)` tells from the marker file's JSON whether it is
    ours; `owns(data, relative)` whether an entry (a POSIX path relative to the folder, folders ending in
    `/`) is one this kind writes."""

    what: str
    marker: str
    is_ours: Callable[[Any], bool]
    owns: Callable[[Any, str], bool] = lambda _data, _relative: False  # a kind never replaced whole owns nothing


def _entries(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Every entry below `folder` (links not followed) as (relative POSIX path, folders with a trailing /, lstat)."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root, name)
            info = path.lstat()
            relative = path.relative_to(folder).as_posix()
            found.append((relative + "/" if stat.S_ISDIR(info.st_mode) else relative, info))
    return sorted(found)


def marker_data(folder: Path, kind: FolderKind) -> Any:
    """The marker file's JSON when it is a regular file of ours; None otherwise."""
    marker = folder / kind.marker
    try:
        info = marker.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MARKER_BYTES:
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        return data if kind.is_ours(data) else None
    except (AttributeError, KeyError, TypeError):
        return None


def _owned(kind: FolderKind, data: Any, relative: str) -> bool:
    """Whether the marker `data` says `relative` is one of the kind's entries (a damaged marker owns nothing)."""
    try:
        return bool(kind.owns(data, relative))
    except (AttributeError, KeyError, TypeError):
        return False


def check_replaceable(folder: Path, kind: FolderKind, option: str) -> None:
    """Refuse `folder` unless it is new, empty, or a folder of `kind` that holds nothing but its own entries."""
    fix = f"give a new or empty folder with {option}, or one an earlier {kind.what} wrote"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        found = not_a_regular_file(folder) or "a file"
        raise SimrecError(f"the {kind.what} folder {folder} is {found}; simrec replaces a folder only when it is "
                          "its own, and never through a link", fix)  # fmt: skip
    if folder.is_dir() and any(folder.iterdir()):
        data = marker_data(folder, kind)
        if data is None:
            raise SimrecError(
                f"the {kind.what} folder {folder} holds files, and no {kind.marker} of simrec says that simrec "
                "wrote them; the folder would be replaced as a whole",
                fix,
            )
        for relative, info in _entries(folder):
            if stat.S_ISLNK(info.st_mode) or not _owned(kind, data, relative):
                raise SimrecError(
                    f"the {kind.what} folder {folder} holds {relative}, which simrec did not write there; the folder "
                    "would be replaced as a whole",
                    f"move {relative} elsewhere, or give a new or empty folder with {option}",
                )
    check_writable_dir(folder.absolute().parent, kind.what, option)


def check_own_folder(folder: Path, kind: FolderKind, fix: str) -> None:
    """Refuse an existing folder that holds entries but not `kind`'s marker: a command that adds files to a
    folder (and replaces its own there) writes only into one that is new, empty, or marked as simrec's."""
    try:
        foreign = folder.is_dir() and any(folder.iterdir()) and marker_data(folder, kind) is None
    except OSError:  # unreadable: the writability check that follows says why
        return
    if foreign:
        raise SimrecError(
            f"the folder {folder} holds files and no {kind.marker} of a simrec {kind.what}: simrec writes into a "
            "folder only when it is new, empty, or its own",
            fix,
        )


def mark_folder(folder: Path, kind: FolderKind, data: Any) -> bool:
    """Write `kind`'s marker holding `data` into `folder` unless it is marked already; whether it was written."""
    if marker_data(folder, kind) is not None:
        return False
    atomic_write_json(folder / kind.marker, data)
    return True


def replace_owned_dir(staged: Path, target: Path, kind: FolderKind, option: str) -> Path | None:
    """Swap a fully written folder into place, checking again that the previous one is ours; returns the previous
    one, moved to a temporary name, for the caller to remove once all its outputs are in place (or to put back)."""
    check_replaceable(target, kind, option)
    old = temporary_dir_beside(target) if target.exists() else None
    if old is not None:
        os.replace(target, old)  # over the empty placeholder: the old folder keeps a temporary's name until removed
    try:
        os.replace(staged, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
            settled(old)
        raise
    settled(staged)
    return old
