"""SOURCE (file, folder, glob) and --pairs (JSONL, CSV) become per-image requests; bad requests fail early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simrec_cli.errors import SimrecError
from simrec_cli.predict.sources import ImageRequest, requests_from_pairs, requests_from_source


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    for name in ["b.jpg", "a.PNG", "c.webp", "notes.txt", "nested/d.jpg"]:
        (folder / name).write_bytes(b"not decoded here")
    return folder


def test_single_file_gets_every_expression(image_folder: Path) -> None:
    requests = requests_from_source(str(image_folder / "b.jpg"), ["  the dog ", "the cat"])
    assert requests == [ImageRequest(image_folder / "b.jpg", ("the dog", "the cat"))]


def test_folder_lists_its_images_sorted_without_recursing(image_folder: Path) -> None:
    requests = requests_from_source(str(image_folder), ["x"])
    assert [request.image.name for request in requests] == ["a.PNG", "b.jpg", "c.webp"]


def test_glob_pattern_recurses_with_double_star(image_folder: Path) -> None:
    flat = requests_from_source(str(image_folder / "*.jpg"), ["x"])
    deep = requests_from_source(str(image_folder / "**" / "*.jpg"), ["x"])
    assert [r.image.name for r in flat] == ["b.jpg"]
    assert sorted(r.image.name for r in deep) == ["b.jpg", "d.jpg"]


def test_missing_source_empty_folder_and_empty_glob_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="does not exist"):
        requests_from_source(str(tmp_path / "gone.jpg"), ["x"])
    with pytest.raises(SimrecError, match="holds no images"):
        requests_from_source(str(tmp_path), ["x"])
    with pytest.raises(SimrecError, match="no image matches"):
        requests_from_source(str(tmp_path / "*.jpg"), ["x"])


def test_empty_or_missing_expression_is_an_error(image_folder: Path) -> None:
    with pytest.raises(SimrecError, match="expression 2: expected a non-empty expression, found '   '"):
        requests_from_source(str(image_folder / "b.jpg"), ["the dog", "   "])
    with pytest.raises(SimrecError, match="no expression given"):
        requests_from_source(str(image_folder / "b.jpg"), [])


def test_jsonl_pairs_group_by_image_relative_to_the_file(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"image": "a.jpg", "expression": "the dog"},
        {"image": "/abs/b.jpg", "expressions": ["left one", "right one"]},
        {"image": "a.jpg", "expression": "the cat"},
    ]
    pairs.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert requests_from_pairs(pairs) == [
        ImageRequest(tmp_path / "a.jpg", ("the dog", "the cat")),
        ImageRequest(Path("/abs/b.jpg"), ("left one", "right one")),
    ]


def test_csv_pairs_with_header_and_unicode(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('image,expression\nx.png,"the café, left"\nx.png,the red one\n', encoding="utf-8")
    assert requests_from_pairs(pairs) == [ImageRequest(tmp_path / "x.png", ("the café, left", "the red one"))]


def test_csv_pairs_with_a_trailing_comma_or_an_extra_named_column(tmp_path: Path) -> None:
    """Spreadsheets write a header that ends in a comma; rows with nothing after that comma are fine."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('image,expression,\nx.png,the dog,\nx.png,"the cat, left"\n', encoding="utf-8")
    assert requests_from_pairs(pairs) == [ImageRequest(tmp_path / "x.png", ("the dog", "the cat, left"))]
    pairs.write_text("id,image,expression\n7,x.png,the dog\n", encoding="utf-8")
    assert requests_from_pairs(pairs) == [ImageRequest(tmp_path / "x.png", ("the dog",))]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.jsonl", '{"image": "a.jpg"}\n', "line 1: expected either 'expression' .* or 'expressions'"),
        ("p.jsonl", '{"image": "a.jpg", "expression": ""}\n', "line 1: field expression: expected a non-empty"),
        ("p.jsonl", '{"image": "a.jpg", "expression": "ok"}\n{oops\n', "line 2 is not valid JSON"),
        ("p.jsonl", '["a.jpg", "dog"]\n', "line 1: expected a mapping, found \\['a.jpg', 'dog'\\]"),
        ("p.jsonl", '{"expression": "dog"}\n', "line 1: lacks the field image"),
        ("p.jsonl", '{"image": " ", "expression": "dog"}\n', "line 1: field image: expected the path of an image"),
        ("p.jsonl", '{"image": "a.jpg", "expression": 3}\n', "line 1: field expression: expected text, found 3"),
        ("p.jsonl", '{"image": "a.jpg", "expression": "x\\ud800"}\n', "expected text without lone surrogate"),
        ("p.jsonl", '{"image": "a\\u0000.jpg", "expression": "x"}\n', "field image: expected a path without NUL"),
        ("p.jsonl", "\n\n", "holds no pairs"),
        ("p.csv", "path,text\na.jpg,dog\n", "needs a header row with the columns image and expression"),
        ("p.csv", "image,expression\na.jpg,\n", "line 2: field expression: expected a non-empty expression"),
        ("p.csv", 'image,expression\na.jpg,"the dog\nb.jpg,the cat\n', "line 2: a quote opened on this line is never"),
        ("p.csv", 'image,expression\na.jpg,"the\ndog"\nb.jpg,cat\n', "line 2: a quoted field runs on to line 3"),
        ("p.txt", "a.jpg dog\n", "must end in .jsonl or .csv"),
    ],
)
def test_malformed_pairs_files_name_the_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    pairs = tmp_path / name
    pairs.write_text(content)
    with pytest.raises(SimrecError, match=message):
        requests_from_pairs(pairs)


def test_missing_pairs_file(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="does not exist"):
        requests_from_pairs(tmp_path / "none.jsonl")
