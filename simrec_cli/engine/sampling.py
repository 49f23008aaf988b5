"""The training sampler: torch's DistributedSampler, able to start an epoch part-way for a mid-epoch resume."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose epoch can start after the indices a resumed run already trained on.

    The order of an epoch is a function of (seed, epoch) alone; leaving out this rank's first `skip` indices gives
    exactly the batches the interrupted epoch had still to run.
    """

    skip = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip
