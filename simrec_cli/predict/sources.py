"""Turn what the user typed (a file, a folder, a glob, or a pairs file) into per-image requests.

Expressions for the same image are grouped into one request so the predictor answers them in one batched
forward pass and draws them on one picture. Mistakes in the request itself (no image matches, an empty
expression, a malformed pairs line) are errors up front; a listed image that turns out to be missing or
broken is not, because the predictor reports it and goes on with the others.
"""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from simrec_cli.errors import SimrecError, quoted

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
CSV_SUFFIXES = frozenset({".csv"})
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class ImageRequest:
    """One image and the expressions to answer on it, in the order given."""

    image: Path
    expressions: tuple[str, ...]


def checked_expression(expression: str, where: str) -> str:
    """The expression with surrounding whitespace removed; an empty one is a user error."""
    cleaned = expression.strip()
    if not cleaned:
        raise SimrecError(f"{where}: the expression is empty", "describe the object, e.g. 'the red circle on the left'")
    return cleaned


def requests_from_source(source: str, expressions: Sequence[str]) -> list[ImageRequest]:
    """Requests asking every expression on every image of SOURCE (a file, a folder or a glob pattern)."""
    if not expressions:
        raise SimrecError("no expression given", 'add one after the image, e.g. simrec predict photo.jpg "the dog"')
    cleaned = tuple(checked_expression(text, f"expression {number}") for number, text in enumerate(expressions, 1))
    return [ImageRequest(image, cleaned) for image in images_from_source(source)]


def images_from_source(source: str) -> list[Path]:
    """The image files SOURCE names: the file itself, a folder's images (sorted), or a glob's matches."""
    path = Path(source)
    if path.is_dir():
        images = _image_files(path.iterdir())
        if not images:
            raise SimrecError(f"folder {path} holds no images", f"supported: {_suffix_list()}")
        return images
    if path.exists() or not GLOB_CHARACTERS & set(source):
        if not path.exists():
            raise SimrecError(f"image {path} does not exist", "check the path, or give a folder or a glob pattern")
        return [path]
    images = _image_files(Path(match) for match in glob.glob(source, recursive=True))
    if not images:
        raise SimrecError(f"no image matches the pattern {source}", f"supported: {_suffix_list()}")
    return images


def _image_files(candidates: Iterable[Path]) -> list[Path]:
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


PATH_MAX_BYTES = 4096  # the longest path Linux opens; a longer 'image' is a broken line, not a file


def requests_from_pairs(pairs_file: Path) -> list[ImageRequest]:
    """Requests from a JSONL or CSV file of (image, expression) pairs, grouped by image in first-seen order.

    Relative image paths are taken relative to the pairs file's folder, so a dataset folder with its pairs
    file can be moved as a whole.
    """
    suffix = pairs_file.suffix.lower()
    if suffix not in JSONL_SUFFIXES | CSV_SUFFIXES:
        raise SimrecError(f"pairs file {pairs_file} must end in .jsonl or .csv", "rename it or convert it")
    try:
        text = pairs_file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise SimrecError(f"pairs file {pairs_file} does not exist", "check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SimrecError(f"pairs file {pairs_file} cannot be read: {exc}", "save it as UTF-8 text") from exc
    rows = _jsonl_rows(text, pairs_file) if suffix in JSONL_SUFFIXES else _csv_rows(text, pairs_file)
    grouped: dict[Path, list[str]] = {}
    for image, expression in rows:
        resolved = image if image.is_absolute() else pairs_file.parent / image
        grouped.setdefault(resolved, []).append(expression)
    if not grouped:
        raise SimrecError(
            f"pairs file {pairs_file} holds no pairs", 'add lines like {"image": "a.jpg", "expression": "the dog"}'
        )
    return [ImageRequest(image, tuple(expressions)) for image, expressions in grouped.items()]


def _jsonl_rows(text: str, pairs_file: Path) -> list[tuple[Path, str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{pairs_file} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SimrecError(f"{where} is not valid JSON ({exc.msg})", "write one JSON object per line") from exc
        if not isinstance(record, dict):
            raise SimrecError(f"{where} is not a JSON object", 'write {"image": ..., "expression": ...}')
        rows.extend(_pair(record.get("image"), expression, where) for expression in _record_expressions(record, where))
    return rows


def _record_expressions(record: dict, where: str) -> list[object]:
    """A line holds either `expression` (one string) or `expressions` (a list of strings)."""
    if "expressions" in record:
        expressions = record["expressions"]
        if not isinstance(expressions, list) or not expressions:
            raise SimrecError(f"{where}: 'expressions' must be a non-empty list of strings", "or use 'expression'")
        return expressions
    if "expression" not in record:
        raise SimrecError(f"{where} has no 'expression'", 'write {"image": ..., "expression": ...}')
    return [record["expression"]]


def _csv_rows(text: str, pairs_file: Path) -> list[tuple[Path, str]]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    if "image" not in header or "expression" not in header:
        raise SimrecError(
            f"pairs file {pairs_file} needs a header row with the columns image and expression",
            f"its first row is {header}",
        )
    reader.fieldnames = header
    rows = []
    for row in reader:
        where = f"{pairs_file} line {reader.line_num}"
        # More fields than the header names, or a value under an unnamed column (a header ending in a comma):
        # an unquoted comma would cut the expression short.
        extra = list(row.pop(None, [])) + [value for name, value in row.items() if not name and (value or "").strip()]
        if extra:
            named = sum(1 for name in header if name)
            raise SimrecError(
                f"{where} has {named + len(extra)} fields but the header names {named} columns",
                'quote an expression that holds a comma: a.jpg,"the man, on the left"',
            )
        if any((value or "").strip() for value in row.values()):
            rows.append(_pair(row.get("image"), row.get("expression"), where))
    return rows


def _pair(image: object, expression: object, where: str) -> tuple[Path, str]:
    if not isinstance(image, str) or not image.strip():
        raise SimrecError(f"{where}: 'image' must be a non-empty path", "give the image file for each pair")
    if len(image.encode("utf-8", "surrogateescape")) > PATH_MAX_BYTES:
        raise SimrecError(f"{where}: 'image' {quoted(image)} is longer than any path", "give the image file's path")
    if not isinstance(expression, str):
        raise SimrecError(f"{where}: the expression must be text", f"got {quoted(expression)}")
    return Path(image.strip()), checked_expression(expression, where)
