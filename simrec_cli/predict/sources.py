"""Turn what the user typed (a file, a folder, a glob, or a pairs file) into per-image requests.

Expressions for the same image are grouped into one request so the predictor answers them in one batched
forward pass and draws them on one picture. Mistakes in the request itself (no image matches, an empty
expression, a malformed pairs line) are errors up front; a listed image that turns out to be missing or
broken is not, because the predictor reports it and goes on with the others.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.files import path_problem, read_bytes
from simrec_cli.schemas.formats import Unreadable, parse_json
from simrec_cli.schemas.pairs import (
    CSV_FIX,
    EXPRESSION,
    JSONL_FIX,
    PAIR,
    PAIR_ROW,
    PAIRS_MAX_BYTES,
    PairRecord,
    PairRow,
    csv_rows,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
CSV_SUFFIXES = frozenset({".csv"})
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class ImageRequest:
    """One image and the expressions to answer on it, in the order given."""

    image: Path
    expressions: tuple[str, ...]


def requests_from_source(source: str, expressions: Sequence[str]) -> list[ImageRequest]:
    """Requests asking every expression on every image of SOURCE (a file, a folder or a glob pattern)."""
    if not expressions:
        raise SimrecError("no expression given", 'add one after the image, e.g. simrec predict photo.jpg "the dog"')
    cleaned = tuple(EXPRESSION.check(text, f"expression {number}") for number, text in enumerate(expressions, 1))
    return [ImageRequest(image, cleaned) for image in images_from_source(source)]


def image_paths_among(expressions: Sequence[str]) -> list[str]:
    """The expressions that name an existing image file: `simrec predict a.jpg b.jpg` answers "b.jpg" on a.jpg,
    which is seldom what was meant (several images are given as a folder or a glob)."""
    return [text for text in expressions if Path(text).suffix.lower() in IMAGE_SUFFIXES and _is_file(text)]


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        return False


def images_from_source(source: str) -> list[Path]:
    """The image files SOURCE names: the file itself, a folder's images (sorted), or a glob's matches."""
    path = Path(source)
    if path.is_dir():
        images = _image_files(path.iterdir())
        if not images:
            raise SimrecError(f"folder {path} holds no images", f"supported: {_suffix_list()}")
        return images
    if os.path.lexists(path) or not GLOB_CHARACTERS & set(source):
        problem = path_problem(path)
        if problem is not None:
            raise SimrecError(f"image {path} {problem}", "check the path, or give a folder or a glob pattern")
        return [path]
    images = _image_files(Path(match) for match in glob.glob(source, recursive=True))
    if not images:
        raise SimrecError(f"no image matches the pattern {source}", f"supported: {_suffix_list()}")
    return images


def _image_files(candidates: Iterable[Path]) -> list[Path]:
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def requests_from_pairs(pairs_file: Path) -> list[ImageRequest]:
    """Requests from a JSONL or CSV file of (image, expression) pairs, grouped by image in first-seen order.

    Relative image paths are taken relative to the pairs file's folder, so a dataset folder with its pairs
    file can be moved as a whole. Each line or row is read through its schema (`schemas/pairs.py`).
    """
    suffix = pairs_file.suffix.lower()
    if suffix not in JSONL_SUFFIXES | CSV_SUFFIXES:
        raise SimrecError(f"pairs file {pairs_file} must end in .jsonl or .csv", "rename it or convert it")
    raw = read_bytes(pairs_file, "pairs file", "check the path", PAIRS_MAX_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SimrecError(
            f"pairs file {pairs_file} cannot be read: it is not UTF-8 text (byte {exc.start:,})",
            "save it as UTF-8 text",
        ) from None
    records = _jsonl_records(text, pairs_file) if suffix in JSONL_SUFFIXES else _csv_records(text, pairs_file)
    grouped: dict[Path, list[str]] = {}
    for record in records:
        image = Path(record["image"].strip())
        resolved = image if image.is_absolute() else pairs_file.parent / image
        grouped.setdefault(resolved, []).extend(record.get("expressions") or [record["expression"]])
    if not grouped:
        raise SimrecError(
            f"pairs file {pairs_file} holds no pairs", 'add lines like {"image": "a.jpg", "expression": "the dog"}'
        )
    return [ImageRequest(image, tuple(expressions)) for image, expressions in grouped.items()]


def _jsonl_records(text: str, pairs_file: Path) -> Iterator[PairRecord]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{pairs_file} line {number}"
        try:
            data = parse_json(line.encode("utf-8", "surrogatepass"))
        except Unreadable as exc:
            raise SimrecError(f"{where} {exc}", JSONL_FIX) from None
        yield PAIR.check(data, where)


def _csv_records(text: str, pairs_file: Path) -> Iterator[PairRow]:
    rows = csv_rows(text, str(pairs_file))
    header = [name.strip() for name in next(rows, (1, []))[1]]
    if "image" not in header or "expression" not in header:
        raise SimrecError(
            f"pairs file {pairs_file} needs a header row with the columns image and expression",
            f"its first row is {quoted(header)}",
        )
    for number, row in rows:
        # More fields than the header names, or a value under an unnamed column (a header ending in a comma):
        # an unquoted comma would cut the expression short.
        named = sum(1 for name in header if name)
        paired = list(zip(header, row, strict=False))  # a short row leaves the last columns empty
        extra = row[len(header) :] + [value for name, value in paired if not name and value.strip()]
        if extra:
            raise SimrecError(
                f"{pairs_file} line {number} has {named + len(extra)} fields but the header names {named} columns",
                CSV_FIX,
            )
        fields = {name: value for name, value in paired if name}
        if any(value.strip() for value in fields.values()):
            yield PAIR_ROW.check(fields, f"{pairs_file} line {number}")
