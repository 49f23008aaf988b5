"""Output paths checked before any work is done: what is there, whether it may be replaced, whether it can be
written.

A write replaces only a regular file (or creates a new one). A device node, a FIFO, a socket, a folder, or a
symbolic link to any of them is refused: renaming a new file over `/dev/full` or over a pipe another program
reads would destroy something the user never meant to give. A symbolic link to a regular file is followed, so
the file it names is replaced and the link stays. Commands run these checks first, so a bad output path fails in
a second, not after an hour of evaluation; the writer runs them again just before it renames.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from simrec_cli.errors import SimrecError
from simrec_cli.storage.failures import path_failure, reason

TEMPORARY_SUFFIX = ".tmp"

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of this mode is, in words ("a character device", "a named pipe (FIFO)", ...)."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def not_a_regular_file(path: Path) -> str | None:
    """What `path` is, in words, when it exists and is neither a regular file nor a link to one; else None.

    A missing path, or one below something that is not a folder, is None: the writability check names that.
    """
    try:
        own = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(own.st_mode):
        return None
    if not stat.S_ISLNK(own.st_mode):
        return kind_of(own.st_mode)
    try:
        target = path.stat()
    except FileNotFoundError:
        return f"a symbolic link to nothing ({os.readlink(path)})"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        raise
    if stat.S_ISREG(target.st_mode):
        return None
    return f"a symbolic link to {kind_of(target.st_mode)} ({path.resolve()})"


def replaced_path(path: Path) -> Path:
    """The file a write of `path` replaces: `path` itself, or the regular file a symbolic link names."""
    return path.resolve() if path.is_symlink() else path


def refuse_non_regular(path: Path, what: str, option: str | None = None) -> Path:
    """Refuse `path` unless it is missing or a regular file (or a link to one); returns the file to replace."""
    found = not_a_regular_file(path)
    if found is not None:
        named = f"the {what} {path}" + (f" ({option})" if option else "")
        fix = f"give a new file or a regular file with {option}" if option else "give a new file or a regular file"
        raise SimrecError(f"{named} is {found}, not a regular file; simrec replaces only regular files", fix)
    return replaced_path(path)


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def check_writable_dir(folder: Path, what: str, option: str) -> None:
    """Prove that `folder` can be created (if missing) and accept files, without creating anything.

    `option` names the flag or setting that chose the folder, for the fix.
    """
    fix = f"choose a writable folder with {option}"
    try:
        existing = _nearest_existing(folder)
    except OSError as exc:  # e.g. a name too long for the file system
        failure = path_failure(exc)
        raise SimrecError(f"cannot write the {what} to {failure.message.removeprefix('cannot use ')}",
                          f"{failure.hint}, or {fix}") from exc  # fmt: skip
    if not existing.is_dir():
        found = not_a_regular_file(existing) or "a file"
        raise SimrecError(f"cannot write the {what} to {folder}: {existing} is {found}, not a folder", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".write-test.{os.getpid()}.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as exc:
        raise SimrecError(f"cannot write the {what} to {folder}: {reason(exc)}", fix) from exc


def check_writable_file(path: Path, what: str, option: str) -> None:
    """Prove, without creating anything, that the file `path` can be written: new, or a regular file to replace."""
    check_writable_dir(refuse_non_regular(path, what, option).parent, what, option)


def resolved(path: Path) -> Path:
    """`path` with its links followed as far as they lead (a link loop, which the output checks name, stays as
    given)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # a symbolic link loop: RuntimeError up to Python 3.12, OSError after
        return path.absolute()


def check_separate_outputs(outputs: dict[str, Path | None], replaced_folders: tuple[str, ...] = ()) -> None:
    """Refuse two outputs of one command at one path, or an output inside a folder (named by its option in
    `replaced_folders`) that the command replaces as a whole: one would overwrite or delete the other."""
    given = {option: resolved(path) for option, path in outputs.items() if path is not None}
    for first, second in itertools.combinations(given, 2):
        if given[first] == given[second]:
            raise SimrecError(f"{first} and {second} both name {outputs[first]}", "give each output its own path")
        for folder, inside in ((first, second), (second, first)):
            if folder in replaced_folders and given[folder] in given[inside].parents:
                raise SimrecError(
                    f"{inside} {outputs[inside]} lies inside the {folder} folder, which is replaced as a whole",
                    f"write it outside {outputs[folder]}",
                )


def check_not_read(outputs: Iterable[tuple[str, Path]], reads: Iterable[Path]) -> None:
    """Refuse an output file that is one of the files the command reads (the checkpoint it evaluates, the dataset's
    annotations): writing it would destroy the input, as `eval best.pth --json best.pth` did."""
    existing = [path for path in reads if path.is_file()]
    for option, path in outputs:
        if not path.is_file():
            continue
        source = next((read for read in existing if os.path.samefile(path, read)), None)
        if source is not None:
            same = "" if resolved(source) == resolved(path) else f", which is {source}"
            raise SimrecError(f"{option} {path}{same} is a file this command reads; writing it would destroy it",
                              f"write {option} elsewhere")  # fmt: skip


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


def new_numbered_folder(root: Path, name: str) -> Path:
    """Create and return `root/name`, or `root/name2`, `root/name3`, ... for the first that does not exist.

    The folder is claimed by creating it, which only one process can do: two commands started at once never
    share one.
    """
    number = 1
    while True:
        candidate = root / (name if number == 1 else f"{name}{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            number += 1
            continue
        return candidate


def claim_numbered_folder(root: Path, name: str, what: str, option: str) -> tuple[Path, Path]:
    """Claim a new numbered folder under `root` (made if missing; see `new_numbered_folder`); returns it and the
    outermost folder the claim made (itself, or `root` or a parent of it), for `remove_empty_folders`."""
    made = topmost_missing(root)
    ensure_writable_dir(root, what, option)
    folder = new_numbered_folder(root, name)
    return folder, made or folder


@contextlib.contextmanager
def claimed_numbered_folder(root: Path, name: str, what: str, option: str) -> Iterator[Path]:
    """A numbered folder claimed for the block (see `claim_numbered_folder`); if the block fails and leaves it
    empty, it goes again, with the parents made for it."""
    folder, made = claim_numbered_folder(root, name, what, option)
    try:
        yield folder
    except BaseException:
        remove_empty_folders(folder, made)
        raise


def remove_empty_folders(innermost: Path, outermost: Path) -> None:
    """Remove `innermost` and its parents up to `outermost` while they are empty: folders made for outputs that
    were never written go again, and one that holds anything (another command's output, say) stays."""
    for folder in [innermost, *innermost.parents]:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == outermost:
            return
