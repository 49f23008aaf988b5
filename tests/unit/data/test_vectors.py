"""Word vectors from GloVe/word2vec text, a .npy matrix with its word list, and a spaCy pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simrec_cli.data.vectors import load_word_vectors
from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter

WORDS = ["PAD", "UNK", "CLS", "red", "car", "zebra"]


def test_glove_text_file(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 0.3\nred 1 2 3\n. . . 9 9 9\ncar -1 -2 -3.5\nred 7 7 7\nPAD 0.5 0.5 0.5\n")
    reporter = NullReporter()
    matrix = load_word_vectors(path, WORDS, reporter)
    assert matrix.dtype == np.float32 and matrix.shape == (6, 3)
    np.testing.assert_array_equal(matrix[3], [1, 2, 3])  # the first occurrence wins
    np.testing.assert_array_equal(matrix[4], [-1, -2, -3.5])
    np.testing.assert_array_equal(matrix[0], [0.5, 0.5, 0.5])
    assert not matrix[[1, 2, 5]].any()
    assert any("3/6 words found" in m for m in reporter.messages)


def test_word2vec_header_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "w2v.vec"
    path.write_text("2 2\nred 1 2\nzebra 3 4\n")
    matrix = load_word_vectors(path, WORDS)
    assert matrix.shape == (6, 2)
    np.testing.assert_array_equal(matrix[5], [3, 4])


def test_npy_matrix_with_word_list(tmp_path: Path) -> None:
    np.save(tmp_path / "vec.npy", np.arange(6, dtype=np.float64).reshape(3, 2))
    (tmp_path / "vec.json").write_text(json.dumps(["car", "red", "x"]))
    matrix = load_word_vectors(tmp_path / "vec.npy", WORDS)
    np.testing.assert_array_equal(matrix[3], [2, 3])
    np.testing.assert_array_equal(matrix[4], [0, 1])
    (tmp_path / "vec.json").write_text(json.dumps(["car"]))
    with pytest.raises(SimrecError, match="does not match 1 words"):
        load_word_vectors(tmp_path / "vec.npy", WORDS)
    (tmp_path / "vec.json").unlink()
    with pytest.raises(SimrecError, match="no word list"):
        load_word_vectors(tmp_path / "vec.npy", WORDS)


def test_spacy_pipeline_mean_of_tokens(tmp_path: Path) -> None:
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.vocab.set_vector("red", np.array([1.0, 3.0], dtype=np.float32))
    nlp.vocab.set_vector("car", np.array([3.0, 5.0], dtype=np.float32))
    nlp.to_disk(tmp_path / "pipe")
    matrix = load_word_vectors(str(tmp_path / "pipe"), ["PAD", "red", "red-car", "zebra"])
    np.testing.assert_allclose(matrix[1], [1, 3])
    np.testing.assert_allclose(matrix[2], [4 / 3, 8 / 3])  # "red", "-", "car": spaCy averages all three
    assert not matrix[3].any()


def test_unknown_source_and_pipeline_without_vectors(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="not an installed spaCy pipeline"):
        load_word_vectors("no_such_pipeline_xyz", WORDS)
    spacy = pytest.importorskip("spacy")
    spacy.blank("en").to_disk(tmp_path / "empty")
    with pytest.raises(SimrecError, match="has no word vectors"):
        load_word_vectors(str(tmp_path / "empty"), WORDS)


@pytest.mark.parametrize(
    ("text", "line", "numbers", "source"),
    [
        ("red 1 2 3 4\ncar 1 2 3\nzebra 1 2 3\n", 2, 3, "line 1 gives 4"),  # lines of another length than the first
        ("car 1 2\nred 1 2 3 4\n", 2, 4, "line 1 gives 2"),
        ("12 300\nred 1 2 3\ncar 1 2 3\n", 2, 3, "the word2vec header on line 1 gives 300"),
    ],
)
def test_wrong_dimension_names_the_line_and_both_dimensions(
    tmp_path: Path, text: str, line: int, numbers: int, source: str
) -> None:
    path = tmp_path / "vectors.txt"
    path.write_text(text)
    with pytest.raises(SimrecError) as error:
        load_word_vectors(path, WORDS)
    assert f"{path}: line {line} holds {numbers} numbers, but {source} dimensions" in error.value.message
