"""Word vectors for the embedding: GloVe/word2vec text, a `.npy` matrix with its word list, or a spaCy pipeline.

SimREC gave every vocabulary entry (PAD/UNK/CLS included) spaCy's `nlp(word).vector`: the mean of its tokens'
vectors, zeros when none is known. The same rule is applied here whatever the source, so the embedding
dimension simply follows the vectors.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.schemas.files import read_array, read_bytes
from simrec_cli.schemas.prepared import WORD_LIST
from simrec_cli.schemas.vectors import MAX_DIMENSION, MAX_HEADER_BYTES, WORD2VEC_HEADER

WORD_LIST_SUFFIXES = (".txt", ".json", ".parquet")
Lookup = Callable[[str], np.ndarray | None]


VECTORS_FIX = (
    "give a GloVe/word2vec .txt file, a .npy matrix with a word list beside it, or an installed spaCy pipeline"
)


def _vectors_error(source: object, problem: str) -> SimrecError:
    return SimrecError(f"word vectors {source}: {problem}", VECTORS_FIX)


def _read_text_vectors(path: Path, needed: Iterable[str], reporter: Reporter) -> tuple[dict[str, np.ndarray], int]:
    """Stream a text vector file (plain or .gz), keeping only the needed words (a 5 GB GloVe file never sits in
    memory); a file that cannot be read, or a damaged .gz, is one error naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            lines = reporter.track(_bounded_first_line(handle, path), None, f"reading {path.name}")
            found, dim = _needed_vectors(lines, {word.encode("utf-8"): word for word in needed}, path)
    except (OSError, EOFError, zlib.error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise _vectors_error(path, f"cannot read it ({reason})") from exc
    if dim <= 0:
        raise _vectors_error(path, "the file holds no vectors")
    return found, dim


def _needed_vectors(lines: Iterable[bytes], wanted: dict[bytes, str], path: Path) -> tuple[dict[str, np.ndarray], int]:
    """The vectors of the `wanted` words among `lines`, and the dimension line 1 gives.

    Only lines whose first field is a needed word are split. Vocabulary words never contain spaces, so the
    few multi-word entries of glove.840B (words before the numbers) are skipped; a needed word's line with
    another number of values than the file's dimension is an error that names the line.
    """
    found: dict[str, np.ndarray] = {}
    dim, dim_source = 0, "line 1"
    for number, line in enumerate(lines):
        if number == 0:
            header = _header(line, path)
            if header is not None:
                dim, dim_source = header, "the word2vec header on line 1"
                continue
            dim = len(line.split()) - 1
            if not 1 <= dim <= MAX_DIMENSION:
                problem = "no numbers" if dim < 1 else f"{dim:,} numbers, more than any word vector has"
                raise _vectors_error(path, f"line 1 holds {problem}: it is neither 'word v1 v2 ...' nor a header")
        word = line[: line.find(b" ")]
        if word not in wanted or wanted[word] in found:
            continue
        fields = line.split()
        if len(fields) != dim + 1:
            if len(fields) > dim + 1 and not is_number(fields[1]):
                continue  # a multi-word entry that starts like a vocabulary word
            raise _vectors_error(
                path, f"line {number + 1} holds {len(fields) - 1} numbers, but {dim_source} gives {dim} dimensions"
            )
        try:
            found[wanted[word]] = np.array(fields[1:], dtype=np.float32)
        except ValueError as exc:
            raise _vectors_error(path, f"line {number + 1} is not 'word v1 v2 ...'") from exc
    return found, dim


def _bounded_first_line(handle: IO[bytes], path: Path) -> Iterator[bytes]:
    """The file's lines, the first refused when longer than any vector line (a binary file has no line breaks)."""
    first = handle.readline(MAX_HEADER_BYTES + 1)
    if not first:
        return
    if len(first) > MAX_HEADER_BYTES:
        raise _vectors_error(path, f"line 1 is longer than {MAX_HEADER_BYTES:,} bytes: this is no vector text file")
    yield first
    yield from handle


def _header(line: bytes, path: Path) -> int | None:
    """The dimension a word2vec header (`<count> <dimension>`) gives, or None when line 1 is already a vector.

    Two fields of digits are a header (GloVe lines hold a word and at least one number); the header is then read
    through its schema, so a count of 0 or a dimension of a million digits is refused in one line.
    """
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    count, dimension = (field.decode("ascii", "replace") for field in fields)
    header = WORD2VEC_HEADER.check({"count": count, "dimension": dimension}, f"word vectors {path} line 1")
    return header["dimension"]


def is_number(field: str | bytes) -> bool:
    """Whether `field` reads as a float (a word-vector value, a metrics.csv cell)."""
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_word_list(matrix_path: Path) -> list[str]:
    for suffix in WORD_LIST_SUFFIXES:
        path = matrix_path.with_suffix(suffix)
        if not path.is_file():
            continue
        if suffix == ".txt":
            raw = read_bytes(path, "word list", "save it as UTF-8 text, one word per line", WORD_LIST.max_bytes)
            try:
                return raw.decode("utf-8").splitlines()
            except UnicodeDecodeError as exc:
                raise _vectors_error(path, f"the word list is not UTF-8 text (byte {exc.start:,})") from exc
        if suffix == ".json":
            return WORD_LIST.read(path)
        try:
            import pandas
        except ImportError as exc:
            raise _vectors_error(path, "reading a parquet word list needs pandas and pyarrow") from exc
        try:
            frame = pandas.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise _vectors_error(path, f"cannot read the parquet word list ({type(exc).__name__})") from exc
        if frame.columns.empty:
            raise _vectors_error(path, "the parquet word list has no column")
        return [str(word) for word in frame[frame.columns[0]]]
    names = ", ".join(matrix_path.with_suffix(s).name for s in WORD_LIST_SUFFIXES)
    raise _vectors_error(matrix_path, f"no word list beside the matrix (looked for {names})")


def _matrix_lookup(path: Path) -> tuple[Lookup, int]:
    matrix = read_array(path, "word vectors", VECTORS_FIX, mmap=True)
    words = _read_word_list(path)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise _vectors_error(path, f"matrix shape {matrix.shape} does not match {len(words)} words in its list")
    rows = {}
    for row, word in enumerate(words):
        rows.setdefault(word, row)

    def lookup(word: str) -> np.ndarray | None:
        row = rows.get(word)
        return None if row is None else np.asarray(matrix[row], dtype=np.float32)

    return lookup, matrix.shape[1]


def _spacy_vectors(source: str, words: list[str]) -> np.ndarray:
    """spaCy's own `nlp(word).vector` rule: mean over the word's tokens, zeros for tokens without a vector."""
    try:
        import spacy
    except ImportError as exc:
        raise _vectors_error(source, "not a file (and spaCy, to read a pipeline of that name, is missing)") from exc
    try:
        nlp = spacy.load(source)
    except (OSError, ValueError) as exc:
        raise _vectors_error(source, "not a file, and not an installed spaCy pipeline") from exc
    dim = nlp.vocab.vectors.shape[1]
    if dim == 0 or nlp.vocab.vectors.shape[0] == 0:
        raise _vectors_error(source, "this spaCy pipeline has no word vectors (use e.g. en_core_web_lg)")
    matrix = np.zeros((len(words), dim), dtype=np.float32)
    for row, word in enumerate(words):
        tokens = [token.text for token in nlp.make_doc(word)]
        if tokens:
            matrix[row] = np.mean([nlp.vocab.get_vector(token) for token in tokens], axis=0)
    return matrix


def _matrix_from_lookup(words: list[str], lookup: Lookup, dim: int) -> np.ndarray:
    matrix = np.zeros((len(words), dim), dtype=np.float32)
    for row, word in enumerate(words):
        vector = lookup(word)
        if vector is not None:
            matrix[row] = vector
    return matrix


def load_word_vectors(source: str | Path, words: list[str], reporter: Reporter | None = None) -> np.ndarray:
    """A float32 [len(words), D] matrix for the vocabulary, reporting how many words were found."""
    reporter = reporter or NullReporter()
    path = Path(source)
    if path.suffix == ".npy":
        if not path.is_file():
            raise _vectors_error(path, "the file does not exist")
        lookup, dim = _matrix_lookup(path)
        matrix = _matrix_from_lookup(words, lookup, dim)
    elif path.is_file():
        found, dim = _read_text_vectors(path, words, reporter)
        matrix = _matrix_from_lookup(words, found.get, dim)
    else:
        matrix = _spacy_vectors(str(source), words)
    covered = int(np.count_nonzero(np.any(matrix != 0, axis=1)))
    share = 100.0 * covered / max(1, len(words))
    dim = matrix.shape[1]
    reporter.info(f"word vectors from {source}: {covered}/{len(words)} words found ({share:.1f} %), {dim}-d")
    if covered == 0:
        reporter.warning(f"none of the {len(words)} words has a vector in {source}: the embedding starts at zero")
    return matrix
