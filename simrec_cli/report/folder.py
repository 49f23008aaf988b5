"""The report folder as an output: what marks a folder as a report, and which entries a report writes.

Kept apart from the writer (which needs the data and the models) so that a command checks its --report folder
in a blink, before it imports anything heavy.
"""

from __future__ import annotations

from pathlib import Path

from simrec_cli.storage.outputs import OutputFolder
from simrec_cli.storage.owned import FolderKind

REPORT_FORMAT = "simrec-report-v1"
DEFAULT_MISSES = 24  # pictures of the worst misses per split
DEFAULT_HITS = 12  # pictures of typical hits per split


def _is_report(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == REPORT_FORMAT


def _written_by_report(report: dict, relative: str) -> bool:
    """Whether `relative` is one of the entries a report writes: its page, its JSON and its listed pictures."""
    if relative in ("report.json", "index.html", "images/"):
        return True
    galleries = [split["gallery"] for split in report["splits"]]
    return any(picture["file"] == relative for gallery in galleries for pictures in gallery.values()
               for picture in pictures)  # fmt: skip


REPORT_FOLDER = FolderKind("report", "report.json", _is_report, _written_by_report)


def report_output(folder: Path, option: str = "--report") -> OutputFolder:
    """The report folder as an output: checked at once (new, empty, or an earlier report and nothing else)."""
    return OutputFolder(folder, REPORT_FOLDER, option)
