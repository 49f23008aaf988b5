"""How core code reports progress without knowing about the terminal.

Core functions take a `Reporter`; the CLI passes one that draws rich progress bars and tables, tests and
notebooks pass `NullReporter` or their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from simrec_cli.interruption import between_items

T = TypeVar("T")


class Reporter(Protocol):
    """Sink for messages and progress from long-running core functions."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]: ...

    def status(self, text: str) -> None:
        """Text shown beside the active progress bar (loss, lr, speed)."""

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A small result table (the CLI draws it with rich)."""


def format_cell(value: object) -> str:
    """A table cell as people read it: floats to two decimals (metrics are percentages, losses a few units)."""
    return f"{value:.2f}" if isinstance(value, float) else str(value)


class NullReporter:
    """Reporter that drops messages; warnings are kept so tests can inspect them."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def track(self, items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
        yield from between_items(items)

    def status(self, text: str) -> None:
        return None

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.messages.append(title)
