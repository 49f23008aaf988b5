"""Properties of the request schemas of `POST /predict`: any JSON value and any form (its fields as lists of text
and file parts) ends in the checked fields or one RequestRefused whose kind is one of the stable codes, whose field
is a field the body has, and whose detail is one short line a JSON answer can carry."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simrec_cli.schemas.requests import (
    KINDS,
    RequestRefused,
    UploadedFile,
    checked_request,
    form_request,
    json_request,
)
from tests.fuzzing import JSON_VALUES, MAX_MESSAGE, mutations

FORMATS = {
    (kind, allow_paths): make(max_expressions=3, allow_paths=allow_paths)
    for kind, make in (("json", json_request), ("form", form_request))
    for allow_paths in (False, True)
}
IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
FIELD_NAMES = ["image", "image_path", "expression", "expressions", "masks", "colour", "\udfff", ""]
# Values near the rules' edges: what text cannot hold, white space, a 1,001-character expression, paths with NUL.
EDGE_TEXT = st.sampled_from(
    ["", " ", "the dog", "\ud800", "the \udfff dog", "a\x00b", "x" * 1001, "rle", "none", "gif", IMAGE,
     f"data:image/png;base64,{IMAGE}", "iVBO*w0KGgo=", "iVBO\nw0KG\ngo=", "/etc/hostname", "data:,"]
)  # fmt: skip
VALUES = st.one_of(JSON_VALUES, EDGE_TEXT, st.lists(EDGE_TEXT, max_size=5))
GOOD_JSON = {"image": IMAGE, "expressions": ["the red circle", "the square"], "masks": "rle"}
FILES = st.builds(UploadedFile, st.one_of(st.text(max_size=8), st.just("a\udcff.png")), st.binary(max_size=16))
FORM_VALUES = st.lists(st.one_of(EDGE_TEXT, st.text(max_size=8), FILES), min_size=1, max_size=4)
GOOD_FORM = {"image": [UploadedFile("photo.png", b"")], "expression": ["the red circle"], "masks": ["png"]}
FORMS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6)), FORM_VALUES, max_size=5),
    st.builds(  # a good form with one field dropped and others changed: most of it passes, one place breaks
        lambda dropped, changed: {**{k: v for k, v in GOOD_FORM.items() if k != dropped}, **changed},
        st.sampled_from(FIELD_NAMES),
        st.dictionaries(st.sampled_from(FIELD_NAMES), FORM_VALUES, max_size=2),
    ),
)


def checked_or_refused(request_format: Any, body: Any) -> dict[str, Any] | RequestRefused:
    """The checked fields, or the refusal held to its promises; any other exception fails the property."""
    try:
        return checked_request(request_format, body)
    except RequestRefused as refused:
        assert refused.kind in KINDS, refused.kind
        assert refused.field is None or (isinstance(body, dict) and refused.field in {*body, "expression", "image"})
        assert "\n" not in refused.detail and len(refused.detail) <= MAX_MESSAGE, refused.detail[:2000]
        refused.detail.encode("utf-8")  # a JSON answer carries it: no lone surrogate quoted raw
        (refused.field or "").encode("utf-8")
        return refused


@given(
    body=st.one_of(
        VALUES,
        st.dictionaries(st.sampled_from(FIELD_NAMES), VALUES, max_size=5),
        mutations(GOOD_JSON),
        mutations({"image_path": "a.jpg", "expression": "the dog"}),
    ),
    allow_paths=st.booleans(),
)
def test_any_json_body_is_checked_fields_or_one_refusal(body: Any, allow_paths: bool) -> None:
    result = checked_or_refused(FORMATS["json", allow_paths], body)
    if isinstance(result, dict):
        assert ("image" in result) != ("image_path" in result)
        given_expressions = result.get("expressions", [result.get("expression")])
        assert given_expressions and all(isinstance(text, str) and text.strip() for text in given_expressions)


@given(form=FORMS, allow_paths=st.booleans())
def test_any_form_is_checked_fields_or_one_refusal(form: dict[str, list[Any]], allow_paths: bool) -> None:
    result = checked_or_refused(FORMATS["form", allow_paths], form)
    if isinstance(result, dict):
        assert isinstance(result.get("image", UploadedFile("", b"")), UploadedFile)
        assert 1 <= len(result["expression"]) <= 3
