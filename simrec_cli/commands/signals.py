"""Stopping a run on request: SIGTERM takes the same clean path as Ctrl-C.

Clusters preempt jobs with SIGTERM (SLURM, Kubernetes), torchrun stops its workers with it, and `kill` sends it by
default. Python's default for SIGTERM ends the process on the spot: no message, no closed log or TensorBoard
file, no leaving the process group. Raising KeyboardInterrupt instead lets a run report where it stopped and
what `last.pth` holds, exactly as after Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread; the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers; such callers stop however their host stops them
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
