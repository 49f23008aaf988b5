"""The generated reference pages: the committed ones are what the code generates, and they cover all of it."""

from __future__ import annotations

import pytest
import typer
from pydantic import BaseModel, Field

from simrec_cli.settings import Settings, packaged_presets, valid_keys
from tools.docs.cli_reference import PROGRAM, help_markdown, root_command, walk_commands
from tools.docs.generate import GENERATED, REGENERATE, ROOT, stale_pages
from tools.docs.http_reference import openapi_document
from tools.docs.settings_reference import UndocumentedSetting, block_section, preset_anchor


def _page(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def test_committed_pages_are_what_the_code_generates() -> None:
    stale = stale_pages()
    assert stale == [], f"{', '.join(stale)} out of date with the code: run `{REGENERATE}` and commit the result"


def test_settings_page_has_every_key_and_every_preset() -> None:
    page = _page("docs/reference/settings.md")
    leaves = [key for key in valid_keys() if not any(other.startswith(f"{key}.") for other in valid_keys())]
    assert len(leaves) > 80
    missing = [key for key in leaves if f"### `{key}` {{ #{key} }}" not in page]
    assert missing == []
    for name in packaged_presets():
        assert f"{{ #{preset_anchor(name)} }}" in page
    assert "| [`dataset.name`](#dataset.name) | `synthetic` |" in page  # what synthetic-tiny changes


def test_a_setting_without_a_description_stops_the_generator() -> None:
    class Block(BaseModel):
        described: int = Field(1, description="has one")
        bare: int = 2

    with pytest.raises(UndocumentedSetting, match=r"train\.block\.bare"):
        block_section("train.block", Block, list(Block.model_fields.items()), {}, {})


def test_cli_page_has_every_verb_and_option() -> None:
    page = _page("docs/reference/cli.md")
    root = root_command()
    verbs = list(walk_commands(root, typer.Context(root, info_name=PROGRAM)))
    assert {" ".join(path) for path, _, _ in verbs} >= {"train", "eval", "predict", "serve", "config show"}
    for path, command, ctx in verbs:
        assert f"`{' '.join((PROGRAM, *path))}`" in page
        for param in command.get_params(ctx):
            if param.param_type_name == "option" and param.get_help_record(ctx) is not None:
                assert param.opts[-1] in page, f"{path}: {param.opts}"


def test_help_examples_become_code_and_prose_stays_prose() -> None:
    text = "Do a thing.\n\nExamples:\n\n  simrec a --x 1\n\n  simrec b\n\nExample: simrec c <dir>"
    assert help_markdown(text) == [
        "Do a thing.", "", "Examples:", "", "```bash", "simrec a --x 1", "simrec b", "```", "",
        "Example:", "", "```bash", "simrec c <dir>", "```", "",
    ]  # fmt: skip


def test_http_page_has_every_route_and_schema() -> None:
    page = _page("docs/reference/http-api.md")
    document = openapi_document()
    for path, item in document["paths"].items():
        for method in item:
            assert f"## `{method.upper()} {path}`" in page
    for name in document["components"]["schemas"]:
        assert f"### {name} " in page
    assert {"/predict", "/health", "/info", "/metrics"} <= set(document["paths"])


def test_every_generated_page_is_in_the_site() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for relative in GENERATED:
        if relative.endswith(".md"):
            assert relative.removeprefix("docs/") in nav
    assert Settings.model_fields.keys() == {"model", "dataset", "train", "optim"}
