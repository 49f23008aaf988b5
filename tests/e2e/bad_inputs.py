"""The machinery of the bad-input catalogue: a row is one bad input or fault, run through the real CLI.

Every row is judged the same way: the exit status; no traceback; exactly one `error:` line, naming the
file or setting at fault (and, where the row says so, what is wrong with it); and no leftovers, found by
comparing every file and folder of the output places before and after the run: the row's own folder (its
inputs, outputs and working directory), the shared prepared dataset and the shared trained run. Nothing
new may appear there and nothing old may change.

Rows run in-process through Typer's CliRunner, which is cheap; a row that needs a real process (a signal,
a kill, what the interpreter or native code prints) sets `process=True`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simrec_cli.cli import app
from simrec_cli.errors import EXIT_USER_ERROR

MAX_ERROR_LINE = 600  # characters: one line that says what and where, never a dump


class Places:
    """Where a row reads and writes: its own folder, plus the session's shared dataset and run (never changed).

    The trained run is made (once per session) only when a row asks for it. `read_only` is a folder nothing
    can be written to, also by root (a read-only tmpfs), or None where this machine cannot make one.
    """

    def __init__(self, tmp: Path, data: Path, trained_run: Callable[[], Path], read_only: Path | None) -> None:
        self.tmp = tmp
        self.data = data
        self.read_only = read_only
        self._trained_run = trained_run
        self.used_run = False

    @property
    def run(self) -> Path:
        self.used_run = True
        return self._trained_run()

    @property
    def checkpoint(self) -> Path:
        return self.run / "best.pth"

    @property
    def anns(self) -> Path:
        return self.data / "anns" / "synthetic.json"

    @property
    def image(self) -> Path:
        return self.data / "images" / "synthetic" / "demo.jpg"

    def watched(self) -> tuple[Path, ...]:
        """The output places a row must leave as it found them."""
        shared = [self.run] if self.used_run else []
        return tuple(place for place in (self.tmp, self.data, *shared, self.read_only) if place is not None)


Text = str | Callable[[Places], object]


@dataclass(frozen=True)
class Row:
    """One catalogue case: the command, what the one error line must name, and how to set the input up."""

    id: str
    args: Callable[[Places], Sequence[object]]
    names: Text  # the file or setting at fault, as the error line must show it
    prepare: Callable[[Places], object] | None = None
    says: str = ""  # what is wrong, in the error line's words (optional)
    exit_code: int = EXIT_USER_ERROR
    process: bool = False
    needs_read_only: bool = False
    usage: bool = False  # refused by the command-line parser itself (an option's type or range)
    may_create: tuple[str, ...] = ()  # patterns (relative to the row's folder) of what a fault mid-run may leave
    env: tuple[tuple[str, str], ...] = ()  # environment variables the command runs with (a SLURM job's, say)

    def param(self) -> object:
        return pytest.param(self, id=self.id)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def resolve(text: Text, places: Places) -> str:
    return str(text(places)) if callable(text) else text


def run_cli(
    args: Sequence[object], cwd: Path, process: bool = False, timeout: float = 300, env: dict[str, str] | None = None
) -> Outcome:
    """Run `simrec ARGS` in `cwd`, with `env` added to the environment: in this process (CliRunner), or as a
    real `python -m simrec_cli`."""
    arguments = [str(arg) for arg in args]
    if process:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}
        completed = subprocess.run([sys.executable, "-m", "simrec_cli", *arguments], cwd=cwd, capture_output=True,
                                   text=True, timeout=timeout, env=env, check=False)  # fmt: skip
        return Outcome(completed.returncode, completed.stdout, completed.stderr)
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, arguments, catch_exceptions=False, env=env)
    finally:
        os.chdir(previous)
    return Outcome(result.exit_code, result.stdout, result.stderr)


Snapshot = dict[str, tuple]


def snapshot(*roots: Path) -> Snapshot:
    """Every folder and file under `roots` (links not followed): a folder by its name, a file by size and mtime."""
    entries: Snapshot = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs:
                entries[os.path.join(folder, name)] = ("folder",)
            for name in files:
                path = os.path.join(folder, name)
                stat = os.lstat(path)
                entries[path] = (stat.st_size, stat.st_mtime_ns)
    return entries


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What appeared, changed or went away between two snapshots."""
    found = [f"new: {path}" for path in sorted(after.keys() - before.keys())]
    found += [f"gone: {path}" for path in sorted(before.keys() - after.keys())]
    found += [f"changed: {path}" for path in sorted(before.keys() & after.keys()) if before[path] != after[path]]
    return found


FOREIGN_NOISE = ("Traceback", "[ WARN", "Warning:")  # tracebacks, OpenCV's log lines, Python's warnings


def error_line(outcome: Outcome) -> str:
    """The one `error:` line of a failed command (asserting there is exactly one, and no traceback or warning
    of a library beside it)."""
    assert not [noise for noise in FOREIGN_NOISE if noise in outcome.output], outcome.output[-3000:]
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, outcome.output[-3000:]
    assert len(lines[0]) <= MAX_ERROR_LINE, f"{len(lines[0])} characters: {lines[0][:1000]}"
    return lines[0]


def usage_line(outcome: Outcome, option: str) -> str:
    """The parser's one line about `option` (inside its framed panel), asserting there is no traceback."""
    assert "Traceback" not in outcome.output, outcome.output[-3000:]
    lines = [line for line in outcome.stderr.splitlines() if option in line and "Invalid value" in line]
    assert len(lines) == 1, outcome.output[-3000:]
    return lines[0]


def judge(row: Row, places: Places) -> Outcome:
    """Set the row up, run it, and check status, the one error line and that nothing was left behind."""
    if row.needs_read_only and places.read_only is None:
        pytest.skip("no read-only folder on this machine (not root and mount refused)")
    if row.prepare is not None:
        row.prepare(places)
    args = row.args(places)
    watched = places.watched()
    before = snapshot(*watched)
    outcome = run_cli(args, places.tmp, row.process, env=dict(row.env))
    assert outcome.exit_code == row.exit_code, outcome.output[-3000:]
    line = usage_line(outcome, resolve(row.names, places)) if row.usage else error_line(outcome)
    assert resolve(row.names, places) in line, f"{resolve(row.names, places)!r} not in {line!r}"
    assert row.says in line, f"{row.says!r} not in {line!r}"
    left = [
        change
        for change in changes(before, snapshot(*watched))
        if not any(fnmatch.fnmatch(change, f"new: {places.tmp}/{pattern}") for pattern in row.may_create)
    ]
    assert left == [], left
    return outcome


# ------------------------------------------------------------------ a row's own copy of the prepared dataset


def own_data(p: Places) -> Path:
    """The row's own data root (for rows that prepare or break a dataset of their own)."""
    return p.tmp / "data"


def own_anns(p: Places) -> Path:
    return own_data(p) / "anns" / "synthetic.json"


def prepared_copy(change: Callable[[Path], object] | None = None) -> Callable[[Places], None]:
    """The shared prepared dataset as the row's own: anns copied (to be broken by `change`), images linked."""

    def prepare(p: Places) -> None:
        root = own_data(p)
        shutil.copytree(p.data / "anns", root / "anns")
        (root / "images").mkdir()
        (root / "images" / "synthetic").symlink_to(p.data / "images" / "synthetic")
        if change is not None:
            change(own_anns(p))

    return prepare


def edit_json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """A change that loads a JSON file, lets `edit` alter it, and writes it back (NaN as Python writes it)."""

    def change(path: Path) -> None:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))

    return change


def replace_image(p: Places, name: str, content: bytes | None) -> None:
    """In the row's own dataset, make image `name` missing (None) or hold `content`; the others stay linked."""
    linked = own_data(p) / "images" / "synthetic"
    linked.unlink()
    linked.mkdir()
    for image in (p.data / "images" / "synthetic").iterdir():
        if image.name != name:
            (linked / image.name).symlink_to(image)
    if content is not None:
        (linked / name).write_bytes(content)


def write_file(name: str, content: str | bytes) -> Callable[[Places], None]:
    """A preparation that writes `content` to `name` in the row's folder (making its parents)."""

    def prepare(p: Places) -> None:
        path = p.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return prepare


class RunsCode:
    """A pickled object that creates `marker` when unpickled: the proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))
