"""A stop asked for by a signal, remembered so that it cannot get lost.

The handlers in `commands/signals.py` raise KeyboardInterrupt wherever the main thread happens to be. Inside some
C code the exception is cleared and the work goes on: numpy's coercion of Python values to arrays does so, and
the synthetic scene generator calls it thousands of times a second, so about one Ctrl-C in ten went unnoticed
there. The handlers therefore also note the request here, and every progress loop raises it again at its next
item (`between_items`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from simrec_cli.errors import SimrecError

T = TypeVar("T")

_requested: str | None = None


def request_stop(reason: str) -> None:
    """Remember that the user asked to stop (the signal's name as the reason)."""
    global _requested
    _requested = reason


def forget_stop() -> None:
    """Clear the request once the command that received it is over."""
    global _requested
    _requested = None


@contextmanager
def errors_after_a_stop_are_the_stop() -> Iterator[None]:
    """Within the block, an error raised after the user asked to stop is the stop's consequence: KeyboardInterrupt.

    Under torchrun every rank gets the signal, and one that stops first closes its connections: the others fail
    in their next collective with a RuntimeError of the backend, which would print a traceback (and skip the
    words on how to resume) instead of the clean stop every rank owes the user. A SimrecError keeps its line.
    """
    try:
        yield
    except Exception as error:
        if _requested is None or isinstance(error, SimrecError):
            raise
        raise KeyboardInterrupt(_requested) from error


def raise_if_stop_requested() -> None:
    """Raise KeyboardInterrupt if a stop was asked for and its first KeyboardInterrupt was swallowed."""
    if _requested is not None:
        raise KeyboardInterrupt(_requested)


def between_items(items: Iterable[T]) -> Iterator[T]:
    """`items`, checking before each one whether a stop was asked for."""
    for item in items:
        raise_if_stop_requested()
        yield item
