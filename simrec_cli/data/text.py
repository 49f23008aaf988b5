"""Words: SimREC's tokenizer, the vocabulary (saved, so checkpoints carry it), and the left/right swap for flips."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from simrec_cli.errors import SimrecError
from simrec_cli.schemas.prepared import VOCABULARY, VOCABULARY_FORMAT
from simrec_cli.storage.atomic import atomic_write_json

# One table for SimREC's two steps (delete `. , ' ! ? " ( ) * # : ;`, then `-` and `/` to spaces): the character
# sets are disjoint, so one pass gives the same words.
_TOKEN_TABLE = str.maketrans("-/", "  ", ".,'!?\"()*#:;")
_LEFT_RIGHT = re.compile(r"\b(left|right)(most|er|ward|wards)?\b", re.IGNORECASE)
_SWAPPED = {"left": "right", "right": "left"}


def tokenize(sentence: str) -> list[str]:
    """SimREC's rules, in its order: lowercase, delete `. , ' ! ? " ( ) * # : ;`, split `-` and `/`, whitespace."""
    return sentence.lower().translate(_TOKEN_TABLE).split()


def distinct_sentences(anns: dict[str, list[dict]]) -> list[str]:
    """Every sentence of an annotation file once, in the order first met (splits, entries, sentences).

    A sentence seen again adds no new word, so the vocabulary built from these is the one built from all.
    """
    return list(dict.fromkeys(sentence for entries in anns.values() for entry in entries for sentence in entry["refs"]))


def swap_left_right(sentence: str) -> str:
    """Swap left/right words (leftmost, righter, ...) so a mirrored image keeps a true description."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(1)
        replacement = _SWAPPED[word.lower()]
        if word.isupper():
            replacement = replacement.upper()
        elif word[0].isupper():
            replacement = replacement.capitalize()
        return replacement + (match.group(2) or "")

    return _LEFT_RIGHT.sub(swap, sentence)


class Vocabulary:
    """Word <-> id table with SimREC's reserved ids; its row order is the embedding's row order."""

    PAD = 0
    UNK = 1
    CLS = 2
    RESERVED = ("PAD", "UNK", "CLS")

    def __init__(self, words: Iterable[str]) -> None:
        self.words: list[str] = list(words)
        if tuple(self.words[: len(self.RESERVED)]) != self.RESERVED:
            raise SimrecError(
                f"a vocabulary must start with {list(self.RESERVED)}, got {self.words[:3]}",
                "rebuild it with `simrec prepare-data`",
            )
        self._ids = {word: index for index, word in enumerate(self.words)}
        if len(self._ids) != len(self.words):
            raise SimrecError("the vocabulary lists a word twice", "rebuild it with `simrec prepare-data`")

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def __hash__(self) -> int:
        return hash(tuple(self.words))

    def __contains__(self, word: str) -> bool:
        return word in self._ids

    @classmethod
    def from_annotations(cls, anns: dict[str, list[dict]]) -> Vocabulary:
        """Words in SimREC's encounter order (every split in file order, entries, sentences, words).

        Released SimREC checkpoints index their embedding rows in exactly this order, so it must not change.
        """
        return cls.from_tokenized(tokenize(sentence) for sentence in distinct_sentences(anns))

    @classmethod
    def from_tokenized(cls, sentences: Iterable[list[str]]) -> Vocabulary:
        """The reserved words, then every word in the order it first appears in `sentences` (lists of words)."""
        words = list(cls.RESERVED)
        seen = set(words)
        for sentence in sentences:
            for word in sentence:
                if word not in seen:
                    seen.add(word)
                    words.append(word)
        return cls(words)

    def encode(self, sentence: str, max_length: int) -> tuple[np.ndarray, list[str]]:
        """Token ids (int64, zero padded or truncated to `max_length`) and the words not in the vocabulary."""
        ids = np.zeros(max_length, dtype=np.int64)
        unknown = []
        for position, word in enumerate(tokenize(sentence)):
            index = self._ids.get(word)
            if index is None:
                unknown.append(word)
                index = self.UNK
            if position < max_length:
                ids[position] = index
        return ids, unknown

    def to_list(self) -> list[str]:
        return list(self.words)

    @classmethod
    def from_list(cls, words: Iterable[str]) -> Vocabulary:
        return cls(words)

    def to_json(self) -> dict:
        """The content of a vocabulary file."""
        return {"format": VOCABULARY_FORMAT, "words": self.words}

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """The vocabulary of a file written by `save` (or a bare JSON list of words), read through its schema."""
        words = VOCABULARY.read(Path(path))["words"]
        try:
            return cls(words)
        except SimrecError as error:
            raise SimrecError(f"vocabulary file {path}: {error.message}", error.hint) from None
