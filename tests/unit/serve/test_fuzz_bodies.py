"""Property of the server's `POST /predict`, in process: any body, JSON or multipart or neither, whole or damaged,
ends in an answer (200 and one record per expression) or a 4xx whose JSON names a stable error code and says what
is wrong in one line; never a 500.

Most bodies are a good request with one place broken, so that they pass the parser and reach the schemas (and some
the model); the rest are hostile values and bytes."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import JSON_VALUES, json_text, mutations, with_flipped_bytes
from tests.unit.serve.test_app import client, png_bytes

PNG = png_bytes(np.random.default_rng(3).integers(0, 255, (24, 32, 3), dtype=np.uint8))
GOOD_JSON = {"image": base64.b64encode(PNG).decode(), "expressions": ["the red circle", "the square"]}
FIELD_NAMES = ["image", "image_path", "expression", "expressions", "masks", "colour"]
TEXT_VALUES = st.one_of(
    st.sampled_from(["the red circle", " ", "rle", "png", "gif", "\\ud800", "a\x00b", "x" * 1001, "image.png"]),
    st.text(max_size=10),
)
# Strings as JSON carries them: a lone surrogate becomes the escape \ud800, which Python decodes to a str no output
# can print.
JSON_TEXT = st.sampled_from(["\ud800", "the \udfff dog", "a\x00b", " ", "x" * 1001, "gif", "rle", "image.png"])
CHANGED_FIELDS = st.dictionaries(st.sampled_from(FIELD_NAMES), st.one_of(JSON_TEXT, st.lists(JSON_TEXT, max_size=3)))
CODE = re.compile(r"[a-z][a-z0-9_]*")
BOUNDARY = "fuzzboundary"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body of (field name, file name or None for text, content) parts."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("utf-8", "surrogatepass")
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


GOOD_PARTS = [("image", "photo.png", PNG), ("expression", None, b"the red circle"), ("expression", None, b"left")]
PARTS = st.lists(
    st.tuples(
        st.sampled_from(FIELD_NAMES),
        st.one_of(st.none(), st.sampled_from(["photo.png", "", "a\udcff.png"])),
        st.one_of(
            TEXT_VALUES.map(lambda text: text.encode("utf-8", "surrogatepass")), st.just(PNG), st.binary(max_size=12)
        ),
    ),
    max_size=5,
)
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
BODIES = st.one_of(
    st.tuples(st.builds(json_text, mutations(GOOD_JSON)).map(str.encode), st.just("application/json")),
    st.tuples(st.builds(json_text, JSON_VALUES).map(str.encode), st.just("application/json")),
    st.tuples(CHANGED_FIELDS.map(lambda fields: json_text({**GOOD_JSON, **fields}).encode()),
              st.just("application/json")),
    st.tuples(st.builds(lambda kept, extra: multipart(GOOD_PARTS[:kept] + extra), st.integers(0, 3), PARTS),
              st.just(MULTIPART_TYPE)),
    st.tuples(with_flipped_bytes(multipart(GOOD_PARTS)), st.just(MULTIPART_TYPE)),
    st.tuples(st.binary(max_size=40), st.sampled_from(["application/json", MULTIPART_TYPE,
                                                       "application/x-www-form-urlencoded", "text/plain", ""])),
)  # fmt: skip


@pytest.fixture(scope="module")
def api(tiny_checkpoint: Path) -> Iterator[TestClient]:
    with client(tiny_checkpoint, max_expressions=3, allow_paths=True) as test_client:
        yield test_client


@given(body=BODIES)
def test_any_body_is_answered_or_refused_with_a_code(api: TestClient, body: tuple[bytes, str]) -> None:
    content, content_type = body
    response = api.post("/predict", content=content, headers={"content-type": content_type} if content_type else {})
    answer = response.json()
    if response.status_code == 200:
        assert len(answer["results"]) >= 1 and all(record["box"] is not None for record in answer["results"])
        return
    assert 400 <= response.status_code < 500, response.text[:2000]
    assert CODE.fullmatch(answer["error"]), answer
    assert isinstance(answer["detail"], str) and "\n" not in answer["detail"], answer
    assert answer["field"] is None or isinstance(answer["field"], str)
