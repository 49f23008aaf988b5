"""Tables that fit the terminal: text cut in the middle, numbers never."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from simrec_cli import console as console_module
from simrec_cli.console import fitted_table, middle_cut, print_table


def test_middle_cut_keeps_both_ends() -> None:
    assert middle_cut("runs/experiment/best.pth", 30) == "runs/experiment/best.pth"
    assert middle_cut("runs/experiment/best.pth", 11) == "runs/…t.pth"
    assert len(middle_cut("x" * 100, 9)) == 9 and middle_cut("abc", 1) == "…" and middle_cut("abc", 0) == ""


def test_fitted_table_shrinks_only_the_text_columns() -> None:
    rows = [["/data/" + "long-folder-name/" * 6 + "photo.jpg", "the dog " * 8, "123,456.78", "0.987"]]
    table = fitted_table(
        "answers", ["image", "expression", "value", "score"], rows, cut=["image", "expression"], width=60
    )
    buffer = io.StringIO()
    Console(file=buffer, width=60).print(table)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 60
    (row,) = [line for line in lines if line.startswith("│")]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[2:] == ["123,456.78", "0.987"]
    assert cells[0].startswith("/data/") and cells[0].endswith(".jpg") and "…" in cells[0]


def test_numbers_wider_than_the_terminal_are_printed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark's eleven number columns need more than 80 columns: a file or pipe gets every one of them."""
    columns = [f"column {index}" for index in range(10)]
    rows = [[f"{index * 1111.5:.2f}" for index in range(10)], ["0.5"] * 10]
    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "console", Console(file=buffer, width=80))
    print_table(fitted_table("wide", columns, rows, cut=["column 0"], width=80))
    lines = buffer.getvalue().splitlines()
    header = next(line for line in lines if "column 0" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == columns
    first_row = next(line for line in lines if line.startswith("│"))
    assert [cell.strip() for cell in first_row.split("│")[1:-1]] == rows[0]
    assert max(len(line) for line in lines) > 80
