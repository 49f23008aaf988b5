"""The files of a run that other commands read back: an eval report's `report.json` (compare takes its
accuracies), and an exported model's metadata sidecar. A hand, a copy cut short or another tool may have changed
them, so they are read like any other input; their readers skip a damaged one rather than fail.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Strict
from typing_extensions import NotRequired, TypedDict

from simrec_cli.schemas.formats import parse_json
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import OPEN, Text

Accuracy = Annotated[float, Strict(), Field(ge=0, le=100, allow_inf_nan=False)]


class ReportMetrics(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    acc50: Accuracy
    protocol: NotRequired[Text]


class ReportSplit(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    split: Text
    metrics: ReportMetrics


class Report(TypedDict):
    __pydantic_config__ = OPEN  # type: ignore[misc]
    checkpoint_resolved: Text
    splits: list[ReportSplit]


REPORT = InputFormat[Report](
    name="eval report",
    schema=Report,
    parse=parse_json,
    fix="write the report again with simrec eval --report",
)

EXPORT_METADATA = InputFormat[dict[str, Any]](
    name="export metadata",
    schema=dict[Text, Any],
    parse=parse_json,
    fix="export the checkpoint again",
)

Seconds = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class SpeedRecordFile(TypedDict):
    """The runtimes' measured seconds for one model on one machine (simrec's cache); another version is remeasured."""

    __pydantic_config__ = OPEN  # type: ignore[misc]
    version: Annotated[int, Strict()]
    row_seconds: dict[Text, Seconds]
    setup_seconds: dict[Text, Seconds]


SPEED_RECORD = InputFormat[SpeedRecordFile](
    name="speed record",
    schema=SpeedRecordFile,
    parse=parse_json,
    fix="it is measured again",
)
