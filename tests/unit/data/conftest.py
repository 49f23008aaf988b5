"""Shared fixtures for the data tests: a small REFER dataset and a small prepared synthetic dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from simrec_cli.data.synthetic import generate_synthetic
from tests.refer_fixture import ReferFixture, write_refer_fixture

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
torch.set_num_threads(1)


@pytest.fixture
def refer(tmp_path: Path) -> ReferFixture:
    return write_refer_fixture(tmp_path / "data", num_images=10, num_objects=30)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, num_images=20, seed=3)
    return root
