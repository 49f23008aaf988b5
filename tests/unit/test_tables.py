"""Tables that fit the terminal: text cut in the middle, numbers never."""

from __future__ import annotations

import io

from rich.console import Console

from simrec_cli.console import fitted_table, middle_cut


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
