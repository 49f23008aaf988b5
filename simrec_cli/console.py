"""Terminal output for the CLI: one rich console, the quiet/debug switches, and a rich `Reporter`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

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

    def info(self, message: str) -> None:
        if not state.quiet:
            console.print(message)

    def warning(self, message: str) -> None:
        error_console.print(f"[yellow]warning:[/] {message}")

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
            console=console,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
