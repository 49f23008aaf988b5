"""Stopping a run on request: SIGTERM takes the same clean path as Ctrl-C.

Clusters preempt jobs with SIGTERM (SLURM, Kubernetes), torchrun stops its workers with it, and `kill` sends it by
default. Python's default for SIGTERM ends the process on the spot: no message, no closed log or TensorBoard
file, no leaving the process group. Raising KeyboardInterrupt instead lets a run report where it stopped and
what `last.pth` holds, exactly as after Ctrl-C. Both signals are also noted in `simrec_cli.interruption`, since
a KeyboardInterrupt raised inside some C code is swallowed; progress loops raise it again at their next item.
One that lands in a garbage collector's callback (a weakref's, a `__del__`) cannot propagate either: Python prints
it as an ignored exception with a traceback, so while the handlers are in place such a one is dropped quietly,
the stop being noted already.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from simrec_cli.interruption import forget_stop, request_stop


def _interrupt(signum: int, frame: FrameType | None) -> None:
    reason = f"stopped by {signal.Signals(signum).name}"
    request_stop(reason)
    raise KeyboardInterrupt(reason)


def _quiet_about_noted_stops(previous: object) -> object:
    """An unraisable-exception hook that drops the KeyboardInterrupts of `_interrupt` and passes on the rest."""

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return
        previous(unraisable)  # type: ignore[operator]

    return hook


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise KeyboardInterrupt in the main thread and note the stop; the old
    handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers; such callers stop however their host stops them
        return
    # A SIGINT that was ignored when the process started (a background job of a shell) stays ignored.
    stops = [stop for stop in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(stop) is not signal.SIG_IGN]
    previous = {stop: signal.signal(stop, _interrupt) for stop in stops}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_noted_stops(previous_hook)  # type: ignore[assignment]
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        sys.unraisablehook = previous_hook
        forget_stop()
