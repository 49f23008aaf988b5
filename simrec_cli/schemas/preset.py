"""A preset file: YAML whose top level maps the settings namespaces (model, dataset, train, optim), plus `base:`
(the preset it inherits from: a packaged name or a path) and `description:`.

The namespaces are validated by the settings models themselves (settings/), after the `base:` chain is merged;
this schema covers the file's own shape. YAML's anchors, aliases and merge keys (`<<: *defaults`) work inside a
file; inheritance between files is `base:`.
"""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.formats import Unreadable, parse_yaml
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import OPEN, Text, rule

PRESET_MAX_BYTES = MEBIBYTE  # the packaged presets are under 2 KB


def _preset_reference(name: str) -> str | None:
    if "\0" in name or not name.strip():
        return "the name of a packaged preset or the path of a YAML file"
    return None


class PresetFile(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    base: NotRequired[Annotated[Text, rule(_preset_reference)]]
    description: NotRequired[Text]


def parse_preset(raw: bytes) -> Any:
    """A preset's YAML (UTF-8); an empty file is an empty preset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"is not UTF-8 text (byte {exc.start:,})") from exc
    data = parse_yaml(text)
    return {} if data is None else data


PRESET = InputFormat[PresetFile](
    name="preset",
    schema=PresetFile,
    parse=parse_preset,
    fix="fix the preset file; a preset is a mapping such as `train: {epochs: 10}`, and inherits with `base: NAME`",
    max_bytes=PRESET_MAX_BYTES,
)
