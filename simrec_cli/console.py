"""Terminal output for the CLI: one rich console, the quiet/debug switches, and a rich `Reporter`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from simrec_cli.errors import one_line
from simrec_cli.interruption import between_items
from simrec_cli.reporting import format_cell

T = TypeVar("T")


@dataclass
class CliState:
    """Global flags given before the verb (`simrec --debug train ...`)."""

    debug: bool = False
    quiet: bool = False


state = CliState()
console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)


ELLIPSIS = "…"
MIN_CUT_WIDTH = 8  # a text column is never cut narrower than this


def middle_cut(text: str, width: int) -> str:
    """`text` cut in the middle to at most `width` characters, so both a path's start and its file name stay."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + ELLIPSIS + (text[-tail:] if tail else "")


def fitted_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    *,
    cut: Sequence[str] = (),
    left: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """A table that fits `width` (default: the terminal's) by cutting the cells of the `cut` columns (paths,
    expressions) in the middle; every other column keeps its full width, so a number is never shortened. Where the
    numbers alone are wider than `width`, the table keeps the width they need: print it with `print_table`, which
    does not crop it to the terminal (a table written to a file or a pipe, 80 columns to rich, stays whole).

    Columns in `cut` and `left` are left-aligned, the others right-aligned. Cells are plain text (no markup);
    cells given as rich `Text` are not measured (an error message in a number column) and are cut at the end.
    """
    width = width or console.width
    natural = [
        max([len(column), *(len(row[index]) for row in rows if isinstance(row[index], str))])
        for index, column in enumerate(columns)
    ]
    elastic = [index for index, column in enumerate(columns) if column in cut]
    frame = 3 * len(columns) + 1  # rich's default box: a border and a space either side of every cell
    fixed = sum(size for index, size in enumerate(natural) if index not in elastic)
    room = max(width - frame - fixed, 0)
    share = {index: natural[index] for index in elastic}
    while elastic and sum(share.values()) > room and max(share.values()) > MIN_CUT_WIDTH:
        widest = max(share, key=lambda index: share[index])
        share[widest] -= 1
    needed = frame + fixed + sum(share.values())
    table = Table(title=middle_cut(title, width) if title else None, width=needed if needed > width else None)
    for index, column in enumerate(columns):
        if index in share:
            table.add_column(middle_cut(column, share[index]), no_wrap=True, max_width=share[index])
        else:
            justify = "left" if column in left else "right"
            table.add_column(column, justify=justify, no_wrap=True, min_width=natural[index],
                             max_width=natural[index], overflow="ellipsis")  # fmt: skip
    for row in rows:
        table.add_row(*(Text(middle_cut(cell, share.get(i, len(cell)))) if isinstance(cell, str) else cell
                        for i, cell in enumerate(row)))  # fmt: skip
    return table


def print_table(table: Table) -> None:
    """Print a `fitted_table` whole: lines wider than the terminal (numbers that need the room) are not cropped."""
    console.print(table, crop=False)


class RichReporter:
    """Reporter that prints through rich and shows a progress bar for tracked loops."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: int | None = None

    def info(self, message: str) -> None:
        if not state.quiet:
            console.print(message, markup=False)

    def warning(self, message: str) -> None:
        error_console.print(f"[yellow]warning:[/] {escape(one_line(message))}")

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
        if state.quiet:
            yield from between_items(items)
            return
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )
        with progress:
            self._progress, self._task = progress, progress.add_task(description, total=total, status="")
            try:
                for item in between_items(items):
                    yield item
                    progress.advance(self._task)
            finally:
                self._progress = self._task = None

    def status(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, status=text)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        if state.quiet and not title:
            return
        cells = [[format_cell(value) for value in row] for row in rows]
        print_table(fitted_table(title, columns, cells, left=columns[:1]))
