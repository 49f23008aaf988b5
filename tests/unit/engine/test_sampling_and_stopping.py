"""The pieces of a mid-epoch resume and of a deferred stop, on their own."""

from __future__ import annotations

import os
import signal

import pytest

from simrec_cli.engine.sampling import ResumableSampler
from simrec_cli.engine.stopping import DeferredStop


def test_a_resumed_epoch_skips_exactly_what_was_trained() -> None:
    data = list(range(23))
    for rank in (0, 1):
        sampler = ResumableSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=5, drop_last=True)
        sampler.set_epoch(3)
        whole = list(sampler)
        sampler.skip = 4
        assert list(sampler) == whole[4:] and len(sampler) == len(whole) - 4
        sampler.set_epoch(4)
        assert list(sampler) != whole[4:]  # another epoch, another order; the skip applies to it too


def test_sigterm_is_noted_then_a_second_one_stops_at_once() -> None:
    stop = DeferredStop()
    before = signal.getsignal(signal.SIGTERM)
    with stop.deferring_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested  # noted, nothing raised: the loop stops at its next safe point
        with pytest.raises(KeyboardInterrupt, match="second SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
