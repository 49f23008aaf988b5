"""Run directories: auto-numbered names, the mark that makes one simrec's, the files a run writes, metrics.csv,
log.txt and the curves plot."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TypeVar

from simrec_cli.data.vectors import is_number
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.reporting import Reporter, format_cell
from simrec_cli.storage.atomic import atomic_write
from simrec_cli.storage.failures import os_error_message
from simrec_cli.storage.owned import FolderKind, check_own_folder, mark_folder
from simrec_cli.storage.targets import check_writable_dir, refuse_non_regular, topmost_missing

T = TypeVar("T")
CONFIG = "config.yaml"
LOG = "log.txt"
METRICS = "metrics.csv"
PLOT = "results.png"
LAST = "last.pth"
BEST = "best.pth"
MARKER = "run.json"
LOCK_FILE = "run.lock"
RUN_FORMAT = "simrec-run-v1"
RUN_FILES = (MARKER, LOCK_FILE, CONFIG, LOG, METRICS, PLOT, LAST, BEST)
OUTPUT_DIR_OPTION = "train.output_dir=FOLDER"

RUN_FOLDER = FolderKind("run", MARKER, lambda data: isinstance(data, dict) and data.get("format") == RUN_FORMAT)


def check_run_dir(run_dir: Path) -> None:
    """Refuse, before training, a run directory that simrec may not write: one that cannot be made or written, one
    where a file a run writes is a device, a FIFO, a socket or a folder (the writes would replace it, or block on
    it), or an existing folder with files in it and no `run.json` of simrec (a run would mix its files with, and
    replace, the user's). Nothing is created."""
    check_writable_dir(run_dir, "run directory", OUTPUT_DIR_OPTION)
    for name in RUN_FILES:
        refuse_non_regular(run_dir / name, "run file", "train.output_dir")
    if not is_unmarked_run(run_dir):
        fix = f"choose a new or empty folder with {OUTPUT_DIR_OPTION}; resume takes it too"
        check_own_folder(run_dir, RUN_FOLDER, fix)


def is_unmarked_run(run_dir: Path) -> bool:
    """Whether `run_dir` is a run of a simrec that wrote no `run.json` yet: its config.yaml, its last.pth, and a
    log.txt whose first line is one of simrec's (a timestamp and a level). Those runs resume (and are marked then);
    a folder of someone else's is unlikely to hold all three, the log in simrec's format included."""
    if not all((run_dir / name).is_file() for name in (CONFIG, LAST, LOG)):
        return False
    try:
        with open(run_dir / LOG, encoding="utf-8") as log:
            first = log.readline(200)
    except (OSError, UnicodeDecodeError):
        return False
    return re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING) .+\n?", first) is not None


def mark_run_dir(run_dir: Path) -> bool:
    """Mark `run_dir` as a simrec run (its `run.json`) before the first file goes in; whether it was marked now."""
    return mark_folder(run_dir, RUN_FOLDER, {"format": RUN_FORMAT, "created": time.strftime("%Y-%m-%d %H:%M:%S")})


def unmark_if_alone(run_dir: Path) -> None:
    """Remove the mark of `run_dir` again when nothing else is in it (a start that failed leaves no trace)."""
    with contextlib.suppress(OSError):
        if [entry.name for entry in run_dir.iterdir()] == [MARKER]:
            (run_dir / MARKER).unlink()


def next_run_dir(root: Path, name: str) -> Path:
    """`root/name`, or `root/name2`, `root/name3`, ... for the first that does not exist yet."""
    candidate = root / name
    number = 2
    while candidate.exists():
        candidate = root / f"{name}{number}"
        number += 1
    return candidate


class RunDirSnapshot:
    """What a run directory was before a start, so a start that fails can leave it exactly as it found it.

    A new directory (and any parent created with it) is removed again; in an existing one the lines the
    failed start appended to log.txt are cut off and the file gets its old modification time back, and a mark
    the start made in an otherwise empty folder goes again.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.created = topmost_missing(run_dir)
        self.log = run_dir / LOG
        self.log_stat = self.log.stat() if self.log.is_file() else None
        self.marked = (run_dir / MARKER).is_file()

    def restore(self) -> None:
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            if self.log_stat is None:
                self.log.unlink(missing_ok=True)
            else:
                os.truncate(self.log, self.log_stat.st_size)
                os.utime(self.log, ns=(self.log_stat.st_atime_ns, self.log_stat.st_mtime_ns))
        if not self.marked:
            unmark_if_alone(self.run_dir)


def read_metrics_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv, each checked: an integer epoch and a number (or nothing) per column.

    simrec writes the file atomically, so damage comes from outside (an editor, a copy cut short). It is refused
    with the line at fault rather than half read, because resuming rewrites the file from the rows it read.
    """
    fix = "repair or delete that line; resuming rewrites metrics.csv from the rows it keeps"
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if "epoch" not in header:
                raise SimrecError(f"{path} has no header line with an epoch column", "delete the file")
            rows = []
            for values in reader:
                if not values:
                    continue
                row = dict(zip(header, values, strict=False))
                if (
                    len(values) != len(header)
                    or not row["epoch"].isdigit()
                    or not all(value == "" or is_number(value) for value in values)
                ):
                    raise SimrecError(f"{path} line {reader.line_num} is damaged: {quoted(','.join(values))}", fix)
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SimrecError(f"{path} is not a readable CSV file ({exc})", "delete it, or restore it") from exc
    return rows


class MetricsCsv:
    """metrics.csv with one row per epoch; on resume, rows past the checkpoint's epoch are dropped."""

    def __init__(self, path: Path, keep_through_epoch: int) -> None:
        self.path = path
        self.rows: list[dict[str, str]] = []
        if path.is_file():
            self.rows = [row for row in read_metrics_rows(path) if int(row["epoch"]) <= keep_through_epoch]

    def append(self, row: dict[str, float | int]) -> None:
        self.rows.append({key: str(value) for key, value in row.items()})
        columns = list(dict.fromkeys(key for existing in self.rows for key in existing))

        def write(handle: IO[str]) -> None:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)

        atomic_write(self.path, write)


def plot_metrics(rows: list[dict[str, str]], path: Path) -> None:
    """results.png: every numeric column of metrics.csv against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [key for key in rows[0] if key not in ("epoch", "time_s")]
    epochs = [int(row["epoch"]) for row in rows]
    figure, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3))
    for axis, column in zip(axes if len(columns) > 1 else [axes], columns, strict=True):
        axis.plot(epochs, [float(row.get(column) or "nan") for row in rows], marker="o")
        axis.set_title(column)
        axis.set_xlabel("epoch")
    figure.tight_layout()
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=80), binary=True)
    plt.close(figure)


class LoggingReporter:
    """Forwards to another reporter and appends every message to log.txt."""

    def __init__(self, inner: Reporter, log_path: Path) -> None:
        self.inner = inner
        self.path = log_path
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def _write(self, level: str, message: str) -> None:
        try:
            self.log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level} {message}\n")
            self.log.flush()
        except OSError as exc:  # a full disk shows here first when the log is the first file a step writes
            raise os_error_message(self.path, exc, "resume the run in another train.output_dir") from exc

    def info(self, message: str) -> None:
        self._write("INFO", message)
        self.inner.info(message)

    def warning(self, message: str) -> None:
        self._write("WARNING", message)
        self.inner.warning(message)

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
        return self.inner.track(items, total, description)

    def status(self, text: str) -> None:
        self.inner.status(text)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        lines = [" | ".join(format_cell(value) for value in row) for row in [columns, *rows]]
        self._write("INFO", "\n".join([title, *lines]))
        self.inner.table(title, columns, rows)

    def close(self) -> None:
        self.log.close()
