"""Keep freed host memory inside the process while a model answers on CPU.

glibc's malloc serves each large block (above its mmap threshold, which grows to at most 32 MiB) with its own
mmap and gives it back to the kernel with munmap when it is freed; smaller blocks come from the heap, whose free
top is also returned once it grows past the trim threshold. A forward pass frees and allocates the same large
activations every time, so every pass faulted all their pages in again: 63,000 page faults per pass for the
default SimREC at 416 at batch 8 in bf16, a quarter of its time (20.4 against 25.8 images/s compiled, on a
2-core Xeon with AMX). With mmap off and trimming out of reach, freed blocks stay in the heap and the next pass
reuses them with no fault. The process keeps its peak memory until it exits, which is what a predict, eval or
serve process wants; training, whose peak is far larger and which gains nothing from it, is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEEP_ALL = 2**31 - 1  # the largest value mallopt takes: free heap tops above 2 GiB are still returned
GLIBC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_applied = False


def keep_freed_memory() -> bool:
    """Turn off glibc's per-block mmap and its heap trimming for this process (once); True if it took effect.

    Nothing changes outside Linux, under a C library without `mallopt`, or where the user set glibc's own
    MALLOC_*_ variables (their choice wins).
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or user_tuned_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_ALL))
    return _applied


def user_tuned_malloc() -> bool:
    """The user set glibc's malloc through its environment variables or its tunables."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(name in os.environ for name in GLIBC_VARIABLES) or "glibc.malloc." in tunables
