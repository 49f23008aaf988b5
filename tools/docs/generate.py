"""The generated pages: what each holds, writing them, and finding the committed ones that differ from the code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tools.docs.cli_reference import cli_reference
from tools.docs.http_reference import http_reference, openapi_json
from tools.docs.settings_reference import settings_reference

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "make docs-gen"

# Path below the repository root -> the function that writes its text.
GENERATED: dict[str, Callable[[], str]] = {
    "docs/reference/cli.md": cli_reference,
    "docs/reference/settings.md": settings_reference,
    "docs/reference/http-api.md": http_reference,
    "docs/reference/openapi.json": openapi_json,
}


def write_pages(root: Path = ROOT) -> list[str]:
    """Write every generated page under `root`; the paths whose text changed."""
    changed = []
    for relative, make in GENERATED.items():
        path = root / relative
        text = make()
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(relative)
    return changed


def stale_pages(root: Path = ROOT) -> list[str]:
    """The generated pages whose committed text is not what the code generates now (or that are missing)."""
    return [
        relative
        for relative, make in GENERATED.items()
        if not (root / relative).is_file() or (root / relative).read_text(encoding="utf-8") != make()
    ]
