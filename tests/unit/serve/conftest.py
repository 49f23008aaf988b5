"""Random-weight tiny checkpoints (a box model and a mask model) shared by the server's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("serve-ckpt") / "tiny.pth", tiny_settings())


@pytest.fixture(scope="session")
def mask_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("serve-ckpt") / "mcn.pth", tiny_settings("model.name=mcn"))
