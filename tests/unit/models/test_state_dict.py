"""The default SimREC is the released model: same state_dict names and shapes, same parameter counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simrec_cli.models import build_model, count_parameters
from simrec_cli.models.weights import load_pretrained_checkpoint
from simrec_cli.reporting import NullReporter
from simrec_cli.settings import ModelSettings

REFERENCE = Path(__file__).parent / "data" / "simrec_state_dict.txt"
REFERENCE_VOCAB = 10000  # the vocabulary size of the reference dump
VOCAB = 777


@pytest.fixture(scope="module")
def default_simrec() -> torch.nn.Module:
    vectors = np.random.default_rng(0).normal(size=(VOCAB, 300)).astype(np.float32)
    return build_model(ModelSettings(), VOCAB, vectors, NullReporter())


def reference_entries(vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    entries = []
    for line in REFERENCE.read_text().splitlines():
        name, shape = line.split(" ", 1)
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        if name == "lang_encoder.embedding.weight":
            assert dims[0] == REFERENCE_VOCAB
            dims = (vocab, *dims[1:])
        entries.append((name, dims))
    return entries


def test_state_dict_matches_the_released_model_line_by_line(default_simrec: torch.nn.Module) -> None:
    ours = [(name, tuple(value.shape)) for name, value in default_simrec.state_dict().items()]
    expected = reference_entries(VOCAB)
    assert len(ours) == len(expected) == 555
    for index, (got, want) in enumerate(zip(ours, expected, strict=True)):
        assert got == want, f"entry {index}"


def test_parameter_counts_match_the_original(default_simrec: torch.nn.Module) -> None:
    total, trainable = count_parameters(default_simrec)
    assert total == 40_192_135 + 300 * VOCAB
    assert trainable == 26_205_447


def test_original_state_dict_loads_strictly_and_through_the_checked_loader(default_simrec: torch.nn.Module) -> None:
    original = {name: torch.zeros(shape) for name, shape in reference_entries(VOCAB)}
    original = {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in original.items()}
    default_simrec.load_state_dict(original, strict=True)
    report = load_pretrained_checkpoint(default_simrec, {"state_dict": original, "epoch": 3})
    assert len(report.matched) == 555 and not report.missing and not report.unexpected
