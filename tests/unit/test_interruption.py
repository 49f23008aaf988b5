"""A stop asked for by a signal is not lost when its KeyboardInterrupt is swallowed on the way."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from simrec_cli.commands.signals import sigterm_as_interrupt
from simrec_cli.console import RichReporter, state
from simrec_cli.reporting import NullReporter


def _swallowed_signal(stop: signal.Signals) -> None:
    """What C code that clears exceptions does to a signal that arrives while it runs."""
    try:
        os.kill(os.getpid(), stop)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    except KeyboardInterrupt:
        return
    raise AssertionError(f"{stop.name} raised nothing")


@contextlib.contextmanager
def _sigint_handled_by(handler: signal.Handlers | Callable[..., object]) -> Iterator[None]:
    """SIGINT's handler set to `handler` for the block, the one before restored after it."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigint_as_in_a_terminal() -> Iterator[None]:
    """SIGINT handled as Python does in a foreground process: the suite may run as a shell's background job,
    which starts with SIGINT ignored (and an ignored SIGINT stays ignored, as the last test shows)."""
    with _sigint_handled_by(signal.default_int_handler):
        yield


@pytest.mark.usefixtures("sigint_as_in_a_terminal")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda stop: stop.name)
@pytest.mark.parametrize("reporter", ["null", "rich", "rich quiet"])
def test_a_swallowed_stop_is_raised_at_the_next_item(stop: signal.Signals, reporter: str) -> None:
    state.quiet = reporter == "rich quiet"
    track = (NullReporter() if reporter == "null" else RichReporter()).track
    done = []
    try:
        with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt, match=f"stopped by {stop.name}"):
            for item in track(range(5), 5, "items"):
                done.append(item)
                if item == 1:
                    _swallowed_signal(stop)
    finally:
        state.quiet = False
    assert done == [0, 1]


def test_the_request_ends_with_the_command_and_the_old_handlers_come_back() -> None:
    before = {stop: signal.getsignal(stop) for stop in (signal.SIGTERM, signal.SIGINT)}
    with sigterm_as_interrupt():
        _swallowed_signal(signal.SIGTERM)
    assert {stop: signal.getsignal(stop) for stop in before} == before
    assert list(NullReporter().track(range(3), 3, "items")) == [0, 1, 2]  # the next command is not stopped


def test_an_ignored_sigint_stays_ignored() -> None:
    """A background job of a shell starts with SIGINT ignored; the terminal's Ctrl-C is not meant for it."""
    with _sigint_handled_by(signal.SIG_IGN), sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
