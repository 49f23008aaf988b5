"""Suite-wide set-up: offline albumentations and one compute thread per process.

Tests start several processes at once (DDP workers, a killed training run, data loader workers); with the
default two OpenMP threads each they oversubscribe a 2-core machine and run many times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ["OMP_NUM_THREADS"] = "1"

import torch

torch.set_num_threads(1)
