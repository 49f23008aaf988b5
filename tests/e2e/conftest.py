"""Shared fixtures for end-to-end tests: a small prepared synthetic dataset and a trained tiny run."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from simrec_cli.cli import app
from tests.e2e.bad_inputs import Places
from tests.faults import read_only_folder

# A model and data small enough that a CPU epoch takes a second or two.
TINY = [
    "dataset.input_shape=[64,64]",
    "train.batch_size=8",
    "train.epochs=2",
    "train.warmup_epochs=1",
    "train.data.num_workers=0",
    "train.evaluation.eval_batch_size=16",
    "train.log_period=2",
    "model.visual_backbone.width_multiplier=0.125",
    "model.language_encoder.hidden_size=32",
    "model.language_encoder.ffn_size=64",
    "model.language_encoder.word_embed_size=16",
    "model.fusion_manner.out_planes=32",
    "model.multi_scale_manner.hidden_planes=32",
    "model.head.width=0.125",
]


def invoke(*args: str) -> object:
    """Run the CLI in-process as a user would, returning typer's result."""
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic-data")
    result = invoke("prepare-data", "--dataset", "synthetic", "--data-root", root, "--num-images", "60",
                    "--image-size", "64", "--seed", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


def train_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={root}",
            f"train.output_dir={run_dir}", *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="session")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = invoke(*train_args(synthetic_root, run_dir))
    assert result.exit_code == 0, result.output
    return run_dir


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """The model's and the EMA's tensors of a checkpoint, in one dict (EMA keys prefixed `ema.`)."""
    checkpoint = torch.load(path, weights_only=True)
    ema = checkpoint["ema"]["weights"] if checkpoint["ema"] else {}
    return {**checkpoint["model"], **{f"ema.{k}": v for k, v in ema.items()}}


def assert_same_weights(a: Path, b: Path) -> None:
    """The two checkpoints hold bit-identical weights and EMA."""
    first, second = checkpoint_weights(a), checkpoint_weights(b)
    assert first.keys() == second.keys()
    differing = [key for key in first if not torch.equal(first[key], second[key])]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:3]}"


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def read_only_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A folder nothing can be written to (a read-only tmpfs for root), or None where none can be made."""
    with read_only_folder(tmp_path_factory.mktemp("read-only")) as folder:
        yield folder


@pytest.fixture
def places(synthetic_root: Path, tmp_path: Path, read_only_dir: Path | None, request: pytest.FixtureRequest) -> Places:
    """The output places of one bad-input row: its own folder, the shared dataset and run, a read-only folder."""
    return Places(tmp_path, synthetic_root, lambda: request.getfixturevalue("trained_run"), read_only_dir)
