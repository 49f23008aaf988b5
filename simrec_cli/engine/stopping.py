"""A stop request that waits for a safe point, so a preempted run can save exactly where it is.

Clusters preempt jobs with SIGTERM and kill them a while later. Raising at once (the default, see
`commands/signals.py`) stops anywhere, between a forward and its optimizer step, in the middle of a collective.
With step checkpoints on, the trainer instead notes the request, finishes the running step (or validation), writes
a checkpoint as of that point, and only then stops. A second SIGTERM stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class DeferredStop:
    """`requested` turns true on SIGTERM while `deferring_sigterm()` is active; the loop decides when to stop."""

    def __init__(self) -> None:
        self.requested = False

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt("stopped by a second SIGTERM")
        self.requested = True

    @contextmanager
    def deferring_sigterm(self) -> Iterator[None]:
        """Within the block SIGTERM only sets `requested`; the previous handler comes back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may install handlers; such callers stop however their host stops them
            return
        previous = signal.signal(signal.SIGTERM, self._note)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
