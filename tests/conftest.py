"""Suite-wide set-up: offline albumentations, one compute thread per process, and the trained demo checkpoint.

Tests start several processes at once (DDP workers, a killed training run, data loader workers); with the
default two OpenMP threads each they oversubscribe a 2-core machine and run many times slower.

`trained_checkpoint` is the one trained model of the suite: `synthetic-tiny` trained briefly on the demo's data
(`demo_data_root`), once per test session, for every test that needs a model that really finds objects
(held-out accuracy, agreement between precisions). Training it takes minutes, so every test that uses it is
marked `slow`: `make test` skips them and `make test-all` runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ["OMP_NUM_THREADS"] = "1"

import torch

from tests import fuzzing  # noqa: F401  (registers and loads the Hypothesis profiles)

torch.set_num_threads(1)
# `--runtime auto` times PyTorch against OpenVINO once per model and machine, converting the checkpoint to do so:
# seconds that most tests, which are not about the choice, need not spend. The tests of the choice ask for auto
# with SIMREC_RUNTIME removed; whatever a test caches goes to the session's own folder (`runtime_cache` below).
os.environ["SIMREC_RUNTIME"] = "torch"
# `simrec train` reads a SLURM job's environment: a suite run inside one must not turn every run multi-process.
for _name in [name for name in os.environ if name.startswith("SLURM_")]:
    del os.environ[_name]

# Enough for the held-out test's 90 % (measured: docs/benchmarks.md). The input is the preset's
# earlier 192: an epoch there costs about half of one at the preset's 256, and the tests need a model that finds
# objects, not the demo's best one.
BRIEF_EPOCHS = 7
BRIEF_INPUT = 192


def simrec_with_a_share_of_the_cores(*args: object) -> None:
    """Run `simrec` as a user does, in its own process with threads for its share of the cores: all of them in a
    plain run, one worker's share under pytest-xdist (the suite keeps itself to one thread). More threads than
    cores make torch's threads wait on each other: with two workers on 2 cores, a 2-thread epoch took minutes."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "simrec_cli", "-q", *(str(arg) for arg in args)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder of converted models and measured speeds, one per session, never the user's."""
    folder = tmp_path_factory.mktemp("simrec-cache")
    os.environ["SIMREC_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def demo_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's synthetic dataset, exactly as `make demo` prepares it (the generator is deterministic)."""
    root = tmp_path_factory.mktemp("demo") / "data"
    simrec_with_a_share_of_the_cores("prepare-data", "--dataset", "synthetic", "--data-root", root)
    return root


@pytest.fixture(scope="session")
def trained_checkpoint(demo_data_root: Path) -> Path:
    """`synthetic-tiny` trained for BRIEF_EPOCHS at BRIEF_INPUT on `demo_data_root`, or the checkpoint that the
    environment's SIMREC_TRAINED_CHECKPOINT names (the demo's runs/demo/best.pth, say, trained on the same data)."""
    given = os.environ.get("SIMREC_TRAINED_CHECKPOINT")
    if given:
        return Path(given)
    run_dir = demo_data_root.parent / "run"
    simrec_with_a_share_of_the_cores("train", "--preset", "synthetic-tiny", f"dataset.data_root={demo_data_root}",
                          f"train.output_dir={run_dir}", f"train.epochs={BRIEF_EPOCHS}",
                          f"dataset.input_shape=[{BRIEF_INPUT},{BRIEF_INPUT}]")  # fmt: skip
    return run_dir / "best.pth"


# Session fixtures that take a minute or more to build. `make test` runs the suite in two pytest-xdist workers with
# `--dist loadfile` (a file's tests on one worker, so every test that uses one of these lives in one file, and each
# is built once); their files go first, so that the longest chain (data, training, its tests) starts at once.
COSTLY_SESSION_FIXTURES = ("trained_checkpoint", "trained_tiny_simrec")


def _costly_fixture_rank(item: pytest.Item) -> int:
    """Where a test's costliest session fixture stands in COSTLY_SESSION_FIXTURES (after them all when it uses none)."""
    names = getattr(item, "fixturenames", ())
    return min(
        (rank for rank, name in enumerate(COSTLY_SESSION_FIXTURES) if name in names),
        default=len(COSTLY_SESSION_FIXTURES),
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the trained checkpoint waits minutes for it: it belongs to the slow tests. The tests of
    the costly fixtures run first (`--no-loadscope-reorder` makes xdist hand out files in this order)."""
    for item in items:
        if "trained_checkpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_costly_fixture_rank)
