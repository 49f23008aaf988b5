"""Tokenizer, vocabulary and left/right swap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simrec_cli.data.text import Vocabulary, swap_left_right, tokenize
from simrec_cli.errors import SimrecError


def test_tokenize_follows_simrec_rules() -> None:
    assert tokenize('The man\'s "red" (left-most) hat/cap: #1; wow!?*') == [
        "the",
        "mans",
        "red",
        "left",
        "most",
        "hat",
        "cap",
        "1",
        "wow",
    ]
    assert tokenize("  Ünïcode   Straße. ") == ["ünïcode", "straße"]
    assert tokenize("...") == []


def test_vocabulary_order_is_splits_then_entries_then_sentences_then_words() -> None:
    anns = {
        "train": [{"refs": ["b a", "c"]}, {"refs": ["a d"]}],
        "val": [{"refs": ["e b"]}],
        "testA": [{"refs": ["PAD f"]}],
    }
    vocab = Vocabulary.from_annotations(anns)
    assert vocab.words == ["PAD", "UNK", "CLS", "b", "a", "c", "d", "e", "pad", "f"]
    assert (Vocabulary.PAD, Vocabulary.UNK, Vocabulary.CLS) == (0, 1, 2)


def test_encode_pads_truncates_and_reports_unknown_words() -> None:
    vocab = Vocabulary.from_list(["PAD", "UNK", "CLS", "the", "red", "car"])
    ids, unknown = vocab.encode("The red bus", 5)
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 4, 1, 0, 0]
    assert unknown == ["bus"]
    ids, _ = vocab.encode("the red car the red car", 4)
    assert ids.tolist() == [3, 4, 5, 3]


def test_save_load_round_trip_and_bad_file(tmp_path: Path) -> None:
    vocab = Vocabulary.from_list(["PAD", "UNK", "CLS", "x", "ÿ"])
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "bad.json").write_text('{"words": ["x"]}')
    with pytest.raises(SimrecError, match="must start with"):
        Vocabulary.load(tmp_path / "bad.json")


def test_swap_left_right_keeps_case_and_suffixes() -> None:
    assert swap_left_right("the Left man right of the leftmost car") == "the Right man left of the rightmost car"
    assert swap_left_right("LEFT lefty bright") == "RIGHT lefty bright"
