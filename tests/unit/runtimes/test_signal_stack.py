"""OpenVINO's compile leaves the thread a signal stack it frees later; the runner puts back the one it had."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import numpy as np
import pytest

from simrec_cli.runtimes.openvino_runtime import OpenVinoRunner
from simrec_cli.runtimes.signal_stack import SignalStack, current_signal_stack, signal_stack_kept

openvino = pytest.importorskip("openvino")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read on Linux")


def tiny_model() -> object:
    """A two-input model with the runner's input names, built in memory."""
    ops = openvino.opset13
    image = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    tokens = ops.parameter([1, 4], np.int64, name="tokens")
    summed = ops.add(ops.reduce_sum(image, [1, 2, 3], False), ops.convert(ops.reduce_sum(tokens, [1], False), "f32"))
    return openvino.Model([summed], [image, tokens])


def test_a_compile_keeps_the_threads_signal_stack_and_signals_arrive() -> None:
    before = current_signal_stack()
    assert before is not None
    runner = OpenVinoRunner(tiny_model(), "fp32")
    answer = runner.run(np.ones((1, 3, 8, 8), np.float32), np.ones((1, 4), np.int64))
    assert float(answer[0][0]) == pytest.approx(196.0)
    assert current_signal_stack() == before
    del runner
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, _frame: received.append(number))
    try:
        for _ in range(100):
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == [signal.SIGUSR1] * 100


def test_the_guard_puts_back_the_stack_that_a_block_replaced() -> None:
    before = current_signal_stack()
    replacement = ctypes.create_string_buffer(64 * 1024)
    with signal_stack_kept():
        stack = SignalStack(ctypes.addressof(replacement), 0, len(replacement))
        assert ctypes.CDLL(None).sigaltstack(ctypes.byref(stack), None) == 0
        assert current_signal_stack() == (ctypes.addressof(replacement), len(replacement), 0)
    assert current_signal_stack() == before
