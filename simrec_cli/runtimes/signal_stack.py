"""Keep the calling thread's alternate signal stack as it was across a call into a native library.

OpenVINO's CPU plugin gives the thread that compiles a model an alternate signal stack of its own (about 11 KiB)
and frees that memory later without unregistering it. Python runs its signal handlers on the alternate stack
(SA_ONSTACK), so the next signal the thread received (Ctrl-C, SIGTERM, a child's exit) was written into freed
memory: the process died with SIGSEGV and no traceback, or, where the memory had been reused, ran on with a
corrupted heap and died later somewhere unrelated. Putting back the stack that was there before (none, or the one
faulthandler installed) keeps every signal where Python expects it.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SS_DISABLE = 2  # <signal.h>: no alternate stack


class SignalStack(ctypes.Structure):
    """Linux's stack_t."""

    _fields_ = (("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t))


def _sigaltstack() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).sigaltstack
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.POINTER(SignalStack), ctypes.POINTER(SignalStack))
    function.restype = ctypes.c_int
    return function


def current_signal_stack() -> tuple[int, int, int] | None:
    """The calling thread's alternate signal stack as (address, size, flags); None where it cannot be read."""
    sigaltstack = _sigaltstack()
    stack = SignalStack()
    if sigaltstack is None or sigaltstack(None, ctypes.byref(stack)) != 0:
        return None
    return stack.ss_sp or 0, stack.ss_size, stack.ss_flags


@contextmanager
def signal_stack_kept() -> Iterator[None]:
    """Run the block, then give the calling thread back the alternate signal stack it had before."""
    sigaltstack = _sigaltstack()
    before = SignalStack()
    if sigaltstack is None or sigaltstack(None, ctypes.byref(before)) != 0:
        yield
        return
    try:
        yield
    finally:
        flags = SS_DISABLE if before.ss_flags & SS_DISABLE else 0
        sigaltstack(ctypes.byref(SignalStack(before.ss_sp, flags, before.ss_size)), None)
