"""The folder `simrec benchmark --keep` keeps the exported files in: what marks it as ours, and what it holds.

The exports are written into a staged folder beside the target and swapped in whole at the end, like a report, so
`--keep` never mixes them with files already there: the target must be new, empty, or an earlier benchmark's
folder holding nothing but the files its `benchmark.json` lists. Kept apart from the runner (which needs torch)
so that the command checks the folder in a blink, before any export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simrec_cli.storage.atomic import json_text
from simrec_cli.storage.outputs import OutputFolder, StagedFolder
from simrec_cli.storage.owned import FolderKind

KEPT_FORMAT = "simrec-benchmark-exports-v1"
MARKER = "benchmark.json"
# The exported files' names in the folder: each format's model and the metadata JSON beside it differ by stem, so
# the ONNX file's metadata and the OpenVINO IR's never share one name.
EXPORT_NAMES = {"onnx": "model.onnx", "openvino": "model_openvino.xml"}


def _is_kept_exports(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == KEPT_FORMAT


def _listed(data: dict, relative: str) -> bool:
    return relative == MARKER or relative in data["files"]


KEPT_EXPORTS = FolderKind("benchmark", MARKER, _is_kept_exports, _listed)


def kept_output(folder: Path) -> OutputFolder:
    """The --keep folder as an output: checked at once (new, empty, or an earlier benchmark's and nothing else)."""
    return OutputFolder(folder, KEPT_EXPORTS, "--keep")


def mark_kept(folder: StagedFolder, checkpoint: Path, results: dict[str, Any]) -> None:
    """Write `benchmark.json` into the filled folder: our format, every entry the folder holds (relative POSIX
    paths, folders ending in `/`), and the results, so that a later --keep may replace the folder whole."""
    entries = sorted(path.relative_to(folder.path).as_posix() + "/" * path.is_dir() for path in folder.path.rglob("*"))
    marker = {"format": KEPT_FORMAT, "checkpoint": str(checkpoint), "files": entries, "results": results}
    folder.write_text(MARKER, json_text(marker))
