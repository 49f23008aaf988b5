"""A stop asked for by a signal is not lost when its KeyboardInterrupt is swallowed on the way."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

import pytest
import typer

from simrec_cli.commands.common import guarded
from simrec_cli.commands.signals import sigterm_as_interrupt
from simrec_cli.console import RichReporter, state
from simrec_cli.errors import EXIT_INTERRUPTED
from simrec_cli.interruption import request_stop
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


class _RaisesWhenFreed:
    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error("raised while being freed")


def test_a_stop_landing_in_a_finaliser_is_dropped_but_other_errors_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt raised by the handlers inside a finaliser cannot propagate; Python would print it with a
    traceback. Within the block it is dropped quietly; any other error of a finaliser reaches the hook as before."""
    seen: list[type[BaseException] | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable.exc_type))
    recorder = sys.unraisablehook
    with sigterm_as_interrupt():
        stop = _RaisesWhenFreed(KeyboardInterrupt)
        del stop
        other = _RaisesWhenFreed(ValueError)
        del other
    assert sys.unraisablehook is recorder
    assert seen == [ValueError]


def test_an_error_after_a_stop_is_the_stop_and_before_it_stays_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Under torchrun a rank that stopped first makes the others' next collective fail: that is the stop (exit 130,
    'interrupted'), not a traceback. The same error with no stop asked for still propagates."""

    @guarded
    def peer_gone(stopped: bool) -> None:
        if stopped:
            request_stop("stopped by SIGTERM")
        raise RuntimeError("Connection closed by peer")

    with pytest.raises(typer.Exit) as exited:
        peer_gone(True)
    assert exited.value.exit_code == EXIT_INTERRUPTED and "interrupted" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="closed by peer"):
        peer_gone(False)
