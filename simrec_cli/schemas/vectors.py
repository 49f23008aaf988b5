"""The first line of a word-vector text file: word2vec's `<count> <dimension>` header, or GloVe's first vector.

Only the header is read through a schema here: the rest of a 5 GB file is streamed, each needed line checked
against the dimension this line gives (see `data/vectors.py`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict

from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import WholeText

MAX_DIMENSION = 100_000  # GloVe and word2vec use 50 to 300; fastText 300
MAX_HEADER_BYTES = 1 << 20  # a first line longer than this is no vector file (a 300-d GloVe line is about 3 KB)


class Word2VecHeader(TypedDict):
    count: Annotated[WholeText, Field(ge=1)]
    dimension: Annotated[WholeText, Field(ge=1, le=MAX_DIMENSION)]


WORD2VEC_HEADER = InputFormat[Word2VecHeader](
    name="word vectors",
    schema=Word2VecHeader,
    fix="a word2vec text file starts with '<word count> <dimension>'; GloVe files have no header",
)
