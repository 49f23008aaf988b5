"""One process per run directory: `train` and `resume` hold an exclusive kernel lock in it for their lifetime.

Two trainings writing one run directory would interleave their log lines, lose metrics rows and leave whichever
checkpoint was saved last. The lock is a `flock` on `RUN_DIR/run.lock`, so the kernel releases it the moment its
holder ends, however it ends (a SIGKILL, a crashed node's process): no stale lock needs clearing by hand. The file
says who holds it (PID, host, start time), so a second start stops in one line naming them.

Who takes it: the single training process; or, when simrec relaunches itself under torchrun, the launcher (on
node 0 only, where the run directory lives), which keeps it through torchrun's restarts of failed workers and
hands the descriptor to torchrun, so the lock lives as long as any process of the run. The processes it starts
find `HELD_ENV` naming the directory and do not take it again. A process that torchrun started without simrec's
launcher takes it when it is global rank 0. `eval`, `compare` and reports only read, and never take the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from simrec_cli.engine.rundir import LOCK_FILE, OUTPUT_DIR_OPTION, check_run_dir, mark_run_dir, unmark_if_alone
from simrec_cli.errors import SimrecError
from simrec_cli.storage.targets import (
    claim_numbered_folder,
    ensure_writable_dir,
    refuse_non_regular,
    remove_empty_folders,
    topmost_missing,
)

HELD_ENV = "SIMREC_RUN_LOCK_HELD"  # the run directory whose lock a parent process holds for this one
MAX_RECORD_BYTES = 4096


@dataclass(frozen=True)
class RunLock:
    """A held lock: the lock file and the open descriptor the kernel lock belongs to."""

    path: Path
    descriptor: int

    @property
    def run_dir(self) -> Path:
        return self.path.parent


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says ("PID 4242 on gpu-node-3 since 2025-01-01 10:00:00")."""
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read(MAX_RECORD_BYTES))
        return f"PID {int(record['pid'])} on {str(record['host'])[:80]} since {str(record['started'])[:40]}"
    except (OSError, ValueError, TypeError, KeyError):
        return "another simrec process (it has not written its PID yet)"


def acquire(run_dir: Path) -> RunLock:
    """Take the run directory's lock, or stop in one line naming the process that holds it."""
    path = run_dir / LOCK_FILE
    refuse_non_regular(path, "run lock file", OUTPUT_DIR_OPTION)
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise SimrecError(
                f"cannot create the run lock {path}: {exc.strerror}", f"choose another {OUTPUT_DIR_OPTION}"
            ) from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SimrecError(f"cannot lock {path}: {exc.strerror}", "the file system must support flock") from exc
            raise SimrecError(
                f"{run_dir} is in use: {_holder(path)} is training into it",
                f"wait for it to end or stop it, or choose another {OUTPUT_DIR_OPTION}",
            ) from None
        if _same_file(descriptor, path):
            break
        os.close(descriptor)  # its holder removed the file as we opened it: lock the file that is there now
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
    return RunLock(path, descriptor)


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def release(lock: RunLock) -> None:
    """Remove the lock file, then let the lock go (in this order, so no one locks a file about to vanish)."""
    with contextlib.suppress(OSError):
        if _same_file(lock.descriptor, lock.path):
            lock.path.unlink()
    os.close(lock.descriptor)


def lock_held_by_parent(run_dir: Path) -> bool:
    """Whether the process that started this one holds `run_dir`'s lock (simrec's launcher does)."""
    return os.environ.get(HELD_ENV) == str(run_dir.resolve())


def _remove_if_empty(created: Path | None, run_dir: Path, marked: bool) -> None:
    """Remove the mark made now (`marked`), then `run_dir` and the parents made for it (up to `created`), when
    nothing else is in them: a start that failed leaves no trace behind."""
    if marked:
        unmark_if_alone(run_dir)
    if created is not None:
        remove_empty_folders(run_dir, created)


@contextlib.contextmanager
def held_run_dir(run_dir: Path | None, numbered_under: Path = Path("runs"), name: str = "train") -> Iterator[RunLock]:
    """Hold `run_dir` (made if missing, marked as a simrec run) for the block; None claims a new `runs/train`,
    `runs/train2`, ...

    Yields the lock (its `run_dir` is the directory held). A folder with files in it is held only when it is
    marked as a simrec run: the mark is checked before anything is made, and written before the lock file. The
    numbered name is claimed by creating its folder, which only one process can do, so two starts at once never
    pick the same one. Processes started in the block find `HELD_ENV`.
    """
    if run_dir is None:
        run_dir, created = claim_numbered_folder(numbered_under, name, "run directory", OUTPUT_DIR_OPTION)
    else:
        check_run_dir(run_dir)
        created = topmost_missing(run_dir)
        ensure_writable_dir(run_dir, "run directory", OUTPUT_DIR_OPTION)
    marked = False
    try:
        marked = mark_run_dir(run_dir)
        lock = acquire(run_dir)
    except BaseException:
        _remove_if_empty(created, run_dir, marked)
        raise
    previous = os.environ.get(HELD_ENV)
    os.environ[HELD_ENV] = str(run_dir.resolve())
    try:
        yield lock
    finally:
        if previous is None:
            os.environ.pop(HELD_ENV, None)
        else:
            os.environ[HELD_ENV] = previous
        release(lock)
        _remove_if_empty(created, run_dir, marked)


def lock_for_this_process(run_dir: Path | None, node_rank: int = 0) -> AbstractContextManager[RunLock | None]:
    """The lock this process holds while it trains into `run_dir` (None: a new numbered folder), or nothing.

    Nothing on a node other than 0 (the run directory lives on node 0), nothing in a process whose launcher
    holds the lock, nothing on a torchrun rank other than 0; the lock itself everywhere else.
    """
    rank = os.environ.get("RANK")
    if node_rank != 0 or (rank is not None and rank != "0"):
        return contextlib.nullcontext(None)
    if run_dir is not None and lock_held_by_parent(run_dir):
        return contextlib.nullcontext(None)
    return held_run_dir(run_dir)
