"""The request schemas of `POST /predict`: what a good body comes out as, and the kind, field and one line of each
way a body can be wrong."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from simrec_cli.schemas.requests import RequestRefused, UploadedFile, checked_request, form_request, json_request

JSON = json_request(max_expressions=3, allow_paths=True)
FORM = form_request(max_expressions=3, allow_paths=True)
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
IMAGE = base64.b64encode(PNG_HEAD).decode()
FILE = UploadedFile("photo.png", PNG_HEAD)


def refusal(request_format: Any, body: Any) -> RequestRefused:
    with pytest.raises(RequestRefused) as refused:
        checked_request(request_format, body)
    assert "\n" not in refused.value.detail and len(refused.value.detail) < 300, refused.value.detail
    return refused.value


def test_good_bodies_come_out_checked_and_alike() -> None:
    wrapped = base64.encodebytes(PNG_HEAD * 10).decode()  # 76 letters a line, as `base64` writes it
    assert checked_request(JSON, {"image": wrapped, "expressions": [" the dog ", "the cat"], "masks": "rle"}) == {
        "image": PNG_HEAD * 10,
        "expressions": ["the dog", "the cat"],
        "masks": "rle",
    }
    assert checked_request(JSON, {"image": f"data:image/png;base64,{IMAGE}", "expression": "x"})["image"] == PNG_HEAD
    assert checked_request(FORM, {"image": [FILE], "expression": ["the dog", "the cat"], "masks": ["png"]}) == {
        "image": FILE,
        "expression": ["the dog", "the cat"],
        "masks": "png",
    }
    assert checked_request(FORM, {"image_path": ["a.jpg"], "expression": ["x"]})["image_path"] == "a.jpg"


CASES = [
    (JSON, {"image": IMAGE, "expressions": ["the dog", 5]}, "wrong_type", "expression",
     "the JSON body: expression 2: expected text, found 5"),
    (JSON, {"image": IMAGE, "expressions": ["the dog", "  "]}, "empty_expression", "expression",
     "the JSON body: expression 2: expected an expression describing the object, e.g. 'the red circle on the left', "
     "found '  '"),
    (JSON, {"image": IMAGE, "expressions": ["a", "b", "c", "d"]}, "too_many_expressions", "expressions",
     "the JSON body: field expressions: expected at most 3 expressions (this server's limit), "
     "found ['a', 'b', 'c', 'd']"),
    (JSON, {"image": IMAGE, "expression": "x" * 1001}, "expression_too_long", "expression",
     f"the JSON body: field expression: expected at most 1,000 characters, found '{'x' * 59}... (1,001 characters)"),
    (JSON, {"image": IMAGE, "expression": "x", "colour": "red"}, "unknown_field", "colour",
     "the JSON body: field colour: expected no field of this name, found 'red' (the fields are image, image_path, "
     "expression, expressions, masks)"),
    (JSON, {"image": IMAGE, "image_path": "a.jpg", "expression": "x"}, "conflicting_fields", "image_path",
     "the JSON body: field image_path: expected either 'image' or 'image_path', one of them, found both"),
    (JSON, {"expressions": ["x"]}, "missing_image", "image",
     "the JSON body: field image: expected either 'image' or 'image_path', one of them, found neither"),
    (JSON, {"image": "iVBO*w0KGgo=", "expression": "x"}, "bad_base64", "image",
     "the JSON body: field image: expected the image file in base64 (Only base64 data is allowed); encode it with "
     "`base64 -w0 FILE`, found 'iVBO*w0KGgo='"),
    (JSON, {"image_path": "a\x00.jpg", "expression": "x"}, "bad_path", "image_path",
     "the JSON body: field image_path: expected a path without NUL characters, which no file name holds, "
     "found 'a\\x00.jpg'"),
    (JSON, {"image": IMAGE, "expression": "the \ud800 dog"}, "invalid_text", "expression",
     "the JSON body: field expression: expected UTF-8 text (a lone surrogate escape such as \\ud800 is not), "
     "found 'the \\ud800 dog'"),
    (JSON, {"\udfff": 1}, "invalid_text", None,
     "the JSON body: expected field names in UTF-8 text (a lone surrogate escape such as \\ud800 is not), found a "
     "mapping of 1 entry (keys '\\udfff')"),
    (JSON, ["the dog"], "invalid_json", None,
     "the JSON body: expected a JSON object of fields, e.g. {\"image\": ..., \"expression\": ...}, found ['the dog']"),
    (JSON, {"image": IMAGE, "expression": "x", "masks": 1e999}, "bad_value", "masks",
     "the JSON body: field masks: expected 'none' or 'rle' or 'png', found inf"),
    (FORM, {"image": ["photo.png"], "expression": ["x"]}, "wrong_type", "image",
     "the form: field image: expected the image file (a file part), not text, found 'photo.png'"),
    (FORM, {"image": [FILE], "expression": ["x", FILE]}, "wrong_type", "expression",
     "the form: expression 2: expected text, not a file part, found a file"),
    (FORM, {"image": [FILE], "expression": ["x"], "masks": ["rle", "png"]}, "repeated_field", "masks",
     "the form: field masks: expected the field once (it is given 2 times), found ['rle', 'png']"),
    (FORM, {"image": [FILE]}, "missing_expression", "expression",
     "the form: field expression: expected an expression, e.g. 'the red circle on the left', found nothing"),
    (FORM, {"image": [FILE], "expressions": ["x"]}, "unknown_field", "expressions",
     "the form: field expressions: expected no field of this name, found ['x'] (the fields are image, image_path, "
     "expression, masks)"),
    (FORM, {"image": [UploadedFile("a\udcff.png", PNG_HEAD)], "expression": ["x"]}, "invalid_text", "image",
     "the form: field image: expected a file name in UTF-8 text (a lone surrogate escape such as \\ud800 is not), "
     "found a file"),
]  # fmt: skip


@pytest.mark.parametrize(("request_format", "body", "kind", "field", "detail"), CASES)
def test_each_violation_has_its_kind_field_and_line(
    request_format: Any, body: Any, kind: str, field: str | None, detail: str
) -> None:
    refused = refusal(request_format, body)
    assert (refused.kind, refused.field, refused.detail) == (kind, field, detail)


def test_a_server_without_paths_refuses_any_image_path_first() -> None:
    """Whatever the path holds, a server that reads no files by path says so, not what is wrong with the path."""
    closed = json_request(max_expressions=3, allow_paths=False)
    for path in ("/etc/hostname", "a\x00b", 5):
        refused = refusal(closed, {"image_path": path, "expression": "x"})
        assert (refused.kind, refused.field) == ("paths_not_allowed", "image_path")
        assert "--allow-paths" in refused.detail
