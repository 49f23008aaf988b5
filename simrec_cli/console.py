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


class RichReporter:
    """Reporter that prints through rich and shows a progress bar for tracked loops."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: int | None = None

    def info(self, message: str) -> None:
        if not state.quiet:
            console.print(message, markup=False)

    def warning(self, message: str) -> None:
        error_console.print(f"[yellow]warning:[/] {escape(message)}")

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
        if state.quiet:
            yield from items
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
                for item in items:
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
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column != columns[0] else "left")
        for row in rows:
            table.add_row(*(format_cell(value) for value in row))
        console.print(table)
