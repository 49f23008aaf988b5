"""What travels with an exported model: settings, vocabulary and preprocessing, as metadata and a JSON sidecar.

The same entries are stored in the file's own metadata (ONNX `metadata_props`, OpenVINO `rt_info`, both as
`simrec.<key>` strings, JSON where not plain strings) and in `<file>.json` beside it. The runtimes read the
embedded copy (OpenVINO shows an ONNX file's metadata as its `framework` rt_info, and keeps it through conversion),
so the file alone suffices; the sidecar is for people and for programs without an ONNX or OpenVINO reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simrec_cli.data.letterbox import PAD_VALUE
from simrec_cli.data.text import Vocabulary
from simrec_cli.errors import SimrecError
from simrec_cli.schemas.formats import Unreadable, parse_json
from simrec_cli.schemas.prepared import STORED_WORDS
from simrec_cli.settings import Settings, settings_from_dict, settings_to_dict

METADATA_PREFIX = "simrec."
ONNX_FORMAT = "simrec-onnx-v2"
OPENVINO_FORMAT = "simrec-openvino-v2"
TOKENIZER_RULES = (
    "lowercase; delete the characters . , ' ! ? \" ( ) * # : ; ; replace - and / by spaces; split on whitespace; "
    "map each word to its index in `vocabulary` (unknown words -> 1), pad with 0 or cut to max_token_length"
)
# What a runtime needs of an exported file; files written before the settings travelled with them lack some.
EXPORTED_SUFFIXES = (".onnx", ".xml")
REQUIRED_KEYS = ("format", "settings", "vocabulary", "input_size", "max_token_length")


def export_metadata(
    settings: Settings, vocabulary: Vocabulary, has_mask: bool, file_format: str, **extra: Any
) -> dict[str, Any]:
    """Everything needed to use an exported file without simrec (also written as the sidecar JSON)."""
    height, width = settings.dataset.input_shape
    outputs = {"boxes": "float32 [B, 5]: x1, y1, x2, y2 in letterbox pixels, score"}
    if has_mask:
        outputs["masks"] = f"float32 [B, {height}, {width}]: mask probabilities in the letterbox"
    return {
        "format": file_format,
        "model": settings.model.name,
        "dataset": settings.dataset.name,
        "input_size": [height, width],
        "pad_value": PAD_VALUE,
        "image_input": f"float32 [B, 3, {height}, {width}]: letterboxed RGB divided by 255 (NCHW)",
        "normalization_inside": {"mean": list(settings.train.data.mean), "std": list(settings.train.data.std)},
        "tokens_input": f"int64 [B, {settings.dataset.max_token_length}]",
        "max_token_length": settings.dataset.max_token_length,
        "pad_id": Vocabulary.PAD,
        "unk_id": Vocabulary.UNK,
        "tokenizer": TOKENIZER_RULES,
        "outputs": outputs,
        "mask_threshold": settings.model.head.mask_threshold if has_mask else None,
        "vocabulary": vocabulary.to_list(),
        "settings": settings_to_dict(settings),
        **extra,
    }


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The entries as `simrec.<key>` strings: plain strings stay, everything else is JSON."""
    return {
        f"{METADATA_PREFIX}{key}": value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        for key, value in metadata.items()
    }


def decode_metadata(strings: Mapping[str, str]) -> dict[str, Any]:
    """The `simrec.*` entries of a file's metadata, JSON values decoded (the inverse of `metadata_strings`)."""
    metadata: dict[str, Any] = {}
    for key, value in strings.items():
        if not key.startswith(METADATA_PREFIX):
            continue
        try:
            metadata[key.removeprefix(METADATA_PREFIX)] = parse_json(value.encode("utf-8", "surrogatepass"))
        except Unreadable:
            metadata[key.removeprefix(METADATA_PREFIX)] = value
    return metadata


@dataclass(frozen=True)
class ExportedFacts:
    """What simrec reads back from an exported file's metadata."""

    settings: Settings
    vocabulary: Vocabulary
    dynamic_batch: bool
    half: bool
    metadata: dict[str, Any]

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], path: Path) -> ExportedFacts:
        missing = [key for key in REQUIRED_KEYS if key not in metadata]
        if missing:
            raise SimrecError(
                f"{path} has no simrec metadata ({', '.join(missing)}): not written by this version of simrec export",
                f"export the checkpoint again: simrec export CHECKPOINT --format {_format_of(path)}",
            )
        settings = settings_from_dict(metadata["settings"], f"the metadata of {path}")
        words = STORED_WORDS.check(metadata["vocabulary"], f"{path} (its vocabulary metadata)")
        try:
            vocabulary = Vocabulary.from_list(words)
        except SimrecError as error:
            raise SimrecError(f"{path}: its vocabulary metadata is damaged", "export the checkpoint again") from error
        return cls(settings, vocabulary, bool(metadata.get("dynamic_batch")), bool(metadata.get("half")), metadata)


def _format_of(path: Path) -> str:
    return "openvino" if path.suffix.lower() == ".xml" else "onnx"
