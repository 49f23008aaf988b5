"""All outputs of one command, checked before the work and committed together after it.

A command declares its outputs first (`Outputs(OutputFile(...), OutputFolder(...))`): each is checked at once
(not a device, FIFO, socket or foreign folder; writable; no two at one path), so a bad path fails before an
hour of evaluation. When the work is done, every output is written to a temporary beside its target (a file) or
filled in a temporary folder (a folder); only when all of them are complete are they renamed into place, each
checked again just before. A failure while writing (a full disk) therefore leaves every target as it was and
says so; a failure among the renames, which is rare, says exactly which outputs were written and which not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from simrec_cli.errors import SimrecError
from simrec_cli.storage.atomic import (
    Writer,
    discard,
    json_writer,
    rename_into_place,
    settled,
    temporary_dir_beside,
    temporary_file_beside,
    temporary_link_beside,
    write_temporary,
)
from simrec_cli.storage.failures import os_error_message, reason, write_failure
from simrec_cli.storage.owned import FolderKind, check_replaceable, replace_owned_dir
from simrec_cli.storage.targets import (
    check_not_read,
    check_separate_outputs,
    check_writable_file,
    refuse_non_regular,
    remove_empty_folders,
    topmost_missing,
)


@dataclass(frozen=True)
class OutputFile:
    """A file a command writes, the words for it ("metrics file") and the option that named it."""

    path: Path
    what: str
    option: str

    def check(self) -> None:
        check_writable_file(self.path, self.what, self.option)


@dataclass(frozen=True)
class OutputFolder:
    """A folder a command writes whole (replacing an earlier one of its `kind`), and the option that named it."""

    path: Path
    kind: FolderKind
    option: str

    def check(self) -> None:
        check_replaceable(self.path, self.kind, self.option)


Target = OutputFile | OutputFolder


def _what(target: Target) -> str:
    return target.what if isinstance(target, OutputFile) else target.kind.what


@dataclass(frozen=True)
class _Placed:
    """One output put in place at a commit, and what it replaced: kept under a temporary name until every output
    of the commit is in place, so that a failure among them can put everything back."""

    target: Target
    path: Path  # where it went (the file a symbolic link names, for a link to a file)
    previous: Path | None  # what was there before, under its temporary name; None: nothing was there
    restorable: bool = True  # False: a file was replaced that could not be kept (a file system without hard links)


def _kept_aside(path: Path) -> tuple[Path | None, bool]:
    """A temporary hard link to the file about to be replaced (None when there is none) and whether it could be
    kept."""
    if not path.exists():
        return None, True
    try:
        return temporary_link_beside(path), True
    except OSError:
        return None, False


def _put_in_place(target: Target, temporary: Path | None) -> _Placed:
    """Swap one staged output into place (or, for None, remove the target), checking the target again first."""
    if isinstance(target, OutputFolder):  # folders are always staged; only files are removed
        return _Placed(target, target.path, replace_owned_dir(temporary, target.path, target.kind, target.option))
    path = refuse_non_regular(target.path, target.what, target.option)
    previous, restorable = _kept_aside(path)
    try:
        if temporary is None:
            path.unlink(missing_ok=True)
        else:
            rename_into_place(temporary, path)
    except BaseException:
        if previous is not None:
            discard(previous)
        raise
    return _Placed(target, path, previous, restorable)


def _put_back(placed: _Placed) -> bool:
    """Undo one output put in place: what it replaced returns (or the new file or folder goes); whether it could."""
    if not placed.restorable:
        return False
    try:
        if isinstance(placed.target, OutputFolder):
            aside = temporary_dir_beside(placed.path)
            os.replace(placed.path, aside)
            discard(aside)
        if placed.previous is not None:
            os.replace(placed.previous, placed.path)
            settled(placed.previous)
        elif isinstance(placed.target, OutputFile):
            placed.path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


class StagedFolder:
    """A temporary folder beside an output folder, filled through the writer before it is swapped in."""

    def __init__(self, path: Path, final: Path, kept: str, fix: str) -> None:
        self.path = path
        self._final = final
        self._kept = kept
        self._fix = fix

    def write(self, relative: str, write: Writer, binary: bool = False) -> Path:
        """Write the file `relative` inside the folder; a failure names the file as it would be in its place."""
        path = self.path / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_temporary(path, write, binary)
        except Exception as exc:
            failure = write_failure(self._final / relative, exc, self._fix, self._kept)
            if failure is None:
                raise
            raise failure from exc
        return path

    def write_text(self, relative: str, text: str) -> Path:
        return self.write(relative, lambda handle: handle.write(text))


class Outputs:
    """The outputs of one command: checked when made, staged by `write`/`write_json`/`folder`, committed on
    leaving the `with` block (or by `commit()`), discarded when the block fails."""

    def __init__(self, *targets: Target | None, reads: Iterable[Path] = ()) -> None:
        self.targets: list[Target] = []
        self.reads: list[Path] = list(reads)  # the files the command reads: no output may be one of them
        self._staged: list[tuple[Target, Path | None]] = []  # None: a file removed at the commit
        self._created: list[tuple[Path, Path]] = []  # (outermost, innermost) folder made for a staged output
        self.add(*targets)

    def add_reads(self, *paths: Path) -> None:
        """Note more files the command reads (known only once its work began: a dataset's files), checked against
        every output now, before anything is written."""
        self.reads.extend(paths)
        check_not_read(self._files(self.targets), paths)

    def _files(self, targets: list[Target]) -> list[tuple[str, Path]]:
        return [(target.option, target.path) for target in targets if isinstance(target, OutputFile)]

    def add(self, *targets: Target | None) -> None:
        """Declare more outputs; each is checked at once, and against the others for a shared path."""
        given = [target for target in targets if target is not None]
        every = [*self.targets, *given]
        options = [target.option for target in every]
        labels = [option if options.count(option) == 1 else f"the {_what(target)} of {option}"
                  for option, target in zip(options, every, strict=True)]  # fmt: skip
        folders = tuple(label for label, target in zip(labels, every, strict=True) if isinstance(target, OutputFolder))
        check_separate_outputs({label: target.path for label, target in zip(labels, every, strict=True)}, folders)
        for target in given:
            target.check()
        check_not_read(self._files(given), self.reads)
        self.targets.extend(given)

    def _make_parent(self, folder: Path) -> None:
        top = topmost_missing(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if top is not None:
            self._created.append((top, folder))

    def _kept(self) -> str:
        """What a failure before the renames leaves: every target as it was."""
        existing = [target.path.name for target in self.targets if target.path.exists()]
        if not existing:
            return "nothing was written"
        return f"nothing was written; {', '.join(existing)} {'was' if len(existing) == 1 else 'were'} left as before"

    @contextlib.contextmanager
    def writing(self, target: OutputFile) -> Iterator[Path]:
        """A temporary file beside `target` for the block to write (by name: an exporter, say), renamed into place
        at the commit; a file-system failure in the block becomes one line naming `target` and what was left."""
        path = refuse_non_regular(target.path, target.what, target.option)
        kept = self._kept()
        try:
            self._make_parent(path.parent)
        except OSError as exc:
            raise os_error_message(target.path, exc, f"choose another {target.option}", kept) from exc
        temporary = temporary_file_beside(path, kept=kept)
        self._staged.append((target, temporary))
        try:
            yield temporary
        except Exception as exc:
            failure = write_failure(target.path, exc, f"choose another {target.option}", self._kept())
            if failure is None:
                raise
            raise failure from exc

    def write(self, target: OutputFile, write: Writer, binary: bool = False) -> None:
        """Write `target`'s content to a temporary beside it, renamed into place at the commit."""
        with self.writing(target) as temporary:
            write_temporary(temporary, write, binary)

    def write_json(self, target: OutputFile, data: Any) -> None:
        self.write(target, json_writer(target.path, data))

    def remove(self, target: OutputFile) -> None:
        """Remove `target` at the commit (an output of an earlier run that would now be stale)."""
        refuse_non_regular(target.path, target.what, target.option)
        self._staged.append((target, None))

    def folder(self, target: OutputFolder) -> StagedFolder:
        """A temporary folder to fill, swapped in for `target` at the commit."""
        try:
            self._make_parent(target.path.absolute().parent)
            path = temporary_dir_beside(target.path.absolute())
        except OSError as exc:
            raise os_error_message(target.path, exc, f"choose another {target.option}", self._kept()) from exc
        self._staged.append((target, path))
        return StagedFolder(path, target.path, self._kept(), f"choose another {target.option}")

    def commit(self) -> None:
        """Rename every staged output into place, together: if one fails, those already in place are put back as
        they were, and the message says so, or (where one could not be put back) which were written and which not.
        """
        staged, self._staged = self._staged, []
        placed: list[_Placed] = []
        try:
            for target, temporary in staged:
                placed.append(_put_in_place(target, temporary))
        except (OSError, SimrecError) as exc:
            failed = staged[len(placed)][0]
            for _, left in staged[len(placed) :]:
                if left is not None:
                    discard(left)
            written = [done.target for done in reversed(placed) if not _put_back(done)]
            cause = exc.message if isinstance(exc, SimrecError) else reason(exc)
            if not written:
                self.discard()
                raise SimrecError(f"cannot write {failed.path}: {cause}", self._kept()) from exc
            listed = ", ".join(f"{t.option} {t.path}" for t in written)
            missing = ", ".join(f"{t.option} {t.path}" for t, _ in staged if t not in written)
            raise SimrecError(f"cannot write {failed.path}: {cause}",
                              f"written: {listed}; not written: {missing}") from exc  # fmt: skip
        for done in placed:
            if done.previous is not None:
                discard(done.previous)

    def discard(self) -> None:
        """Remove every staged temporary; the targets stay as they were."""
        staged, self._staged = self._staged, []
        for _, temporary in staged:
            if temporary is not None:
                discard(temporary)
        created, self._created = self._created, []
        for top, folder in created:  # folders made for the outputs go again, unless something else is in them
            remove_empty_folders(folder, top)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if error is None:
            self.commit()
        else:
            self.discard()
