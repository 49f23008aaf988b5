"""`predict --pairs`: a JSONL file (one `{"image", "expression" | "expressions"}` object a line) or a CSV file
(a header naming `image` and `expression`, then one pair a row).

Each line or row is checked against `PairRecord`; a CSV field may not run over lines (a quote left open would
otherwise swallow every row after it into one expression).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from pydantic import AfterValidator, Strict
from typing_extensions import NotRequired, TypedDict

from simrec_cli.errors import SimrecError
from simrec_cli.schemas.files import MEBIBYTE
from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import expected, is_text, non_empty, rule

PATH_MAX_BYTES = 4096  # the longest path Linux opens; a longer 'image' is a broken line, not a file
PAIRS_MAX_BYTES = 256 * MEBIBYTE
CSV_FIX = 'quote an expression that holds a comma or a quote: a.jpg,"the man, on the left"'
JSONL_FIX = 'write one JSON object per line: {"image": "a.jpg", "expression": "the dog"}'


def _stripped_expression(text: str) -> str:
    """An expression without the spaces around it; an empty one describes nothing."""
    cleaned = text.strip()
    if not cleaned:
        raise expected("a non-empty expression")
    if not is_text(cleaned):
        raise expected("text without lone surrogate escapes such as \\ud800")
    return cleaned


Expression = Annotated[str, Strict(), AfterValidator(_stripped_expression)]


def _image_path(text: str) -> str | None:
    if not text.strip():
        return "the path of an image"
    if "\0" in text or not is_text(text):
        return "a path without NUL characters or lone surrogate escapes"
    if len(text.encode("utf-8", "surrogateescape")) > PATH_MAX_BYTES:
        return f"a path of at most {PATH_MAX_BYTES:,} bytes"
    return None


ImagePath = Annotated[str, Strict(), rule(_image_path)]


def _one_of_expression_or_expressions(record: dict) -> str | None:
    given = [key for key in ("expression", "expressions") if key in record]
    return None if len(given) == 1 else "either 'expression' (text) or 'expressions' (a list of text), one of them"


class PairRecord(TypedDict):
    image: ImagePath
    expression: NotRequired[Expression]
    expressions: NotRequired[Annotated[list[Expression], non_empty("expressions")]]


PAIR = InputFormat[PairRecord](
    name="pairs file",
    schema=Annotated[PairRecord, rule(_one_of_expression_or_expressions)],
    fix=JSONL_FIX,
)


class PairRow(TypedDict):
    image: ImagePath
    expression: Expression


PAIR_ROW = InputFormat[PairRow](name="pairs file", schema=PairRow, fix=CSV_FIX)
EXPRESSION = InputFormat[str](
    name="expression", schema=Expression, fix="describe the object, e.g. 'the red circle on the left'"
)


def csv_rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each row, the header (line 1) first.

    A quoted field that runs over a line break means a quote left open: refused, naming the line it opened on,
    as is a quote the file never closes (csv would otherwise take the rest of the file as one field).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = 1
    try:
        while True:
            first = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if reader.line_num != first:
                raise SimrecError(
                    f"{source} line {first}: a quoted field runs on to line {reader.line_num} (a quote is not closed)",
                    CSV_FIX,
                )
            yield first, row
    except csv.Error as exc:
        raise SimrecError(f"{source} line {first}: {_csv_problem(exc)}", CSV_FIX) from None


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quote opened on this line is never closed"
    if "field larger than field limit" in text:
        return "a field longer than any expression (a quote left open?)"
    return f"not CSV ({text})"
