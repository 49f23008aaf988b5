"""The Python example of the README and of the docs' Python API page runs as written (paths swapped for files the
test makes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [(ROOT / "README.md", "## Python API"), (ROOT / "docs" / "python-api.md", "## Example")]


def _python_block(document: Path, heading: str) -> str:
    text = document.read_text(encoding="utf-8")
    return text[text.index(heading) :].split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(("document", "heading"), EXAMPLES, ids=lambda value: getattr(value, "name", value))
def test_python_api_example(document: Path, heading: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    checkpoint = write_checkpoint(tmp_path / "best.pth", tiny_settings())
    Image.fromarray(np.full((48, 80, 3), 90, np.uint8)).save(tmp_path / "photo.jpg")
    code = (
        _python_block(document, heading)
        .replace('"runs/train/best.pth"', repr(str(checkpoint)))
        .replace('"photo.jpg"', repr(str(tmp_path / "photo.jpg")))
    )
    namespace: dict = {}
    exec(compile(code, str(document), "exec"), namespace)
    assert namespace["settings"].train.batch_size == 64
    assert sum(p.numel() for p in namespace["model"].parameters()) == 40_192_135 + 300 * 10_000
    x1, y1, x2, y2 = namespace["answer"].box
    assert 0 <= x1 <= x2 <= 80 and 0 <= y1 <= y2 <= 48
    assert capsys.readouterr().out.strip()
