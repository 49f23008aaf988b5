"""`simrec compare` on two short synthetic runs that differ in two settings: the table, the settings that
differ (exactly those two), Markdown, CSV, the curves plot, splits from reports, and paths it cannot read."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import invoke, train_args

CHANGED = {"train.seed": ("123456", "7"), "model.head.label_smooth": ("0.0", "0.1")}


@pytest.fixture(scope="module")
def second_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "variant"
    result = invoke(*train_args(synthetic_root, run_dir, "train.seed=7", "model.head.label_smooth=0.1"))
    assert result.exit_code == 0, result.output
    return run_dir


def test_two_runs_show_exactly_the_two_settings_that_differ(trained_run: Path, second_run: Path) -> None:
    result = invoke("compare", trained_run, second_run)
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "variant" in result.output and "val Acc@0.5" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    setting_rows = [line for line in rows if "." in line.split("│")[1]]
    assert sorted(line.split("│")[1].strip() for line in setting_rows) == sorted(CHANGED)
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_markdown_and_csv(trained_run: Path, second_run: Path) -> None:
    markdown = invoke("compare", trained_run, second_run, "--markdown")
    assert markdown.exit_code == 0, markdown.output
    tables = markdown.output.strip().split("\n\n")
    header = "| run | dataset | best epoch | val Acc@0.5 | protocol | parameters |"
    assert len(tables) == 2 and tables[0].startswith(header)
    assert sorted(line.split("|")[1].strip() for line in tables[1].splitlines()[2:]) == sorted(CHANGED)

    table = invoke("compare", trained_run, second_run, "--csv")
    assert table.exit_code == 0, table.output
    rows = list(csv.DictReader(io.StringIO(table.output)))
    assert [row["run"] for row in rows] == ["tiny", "variant"]
    assert set(rows[0]) == {"run", "dataset", "best epoch", "val Acc@0.5", "protocol", "parameters", *CHANGED}
    assert [row["protocol"] for row in rows] == ["original", "original"]  # training validated as the original
    for key, (first, second) in CHANGED.items():
        assert (rows[0][key], rows[1][key]) == (first, second)
    assert rows[0]["parameters"] == rows[1]["parameters"] and rows[0]["parameters"].isdigit()
    assert 0 <= float(rows[0]["val Acc@0.5"]) <= 100


def test_markdown_keeps_one_row_per_run_whatever_the_folder_names(
    trained_run: Path, second_run: Path, tmp_path: Path
) -> None:
    """A line break, a pipe or a terminal escape in a run folder's name is escaped inside its cell: each table keeps
    one line per row and the same number of cells in every line."""
    odd = tmp_path / "run\nname|with\x1b[31mred"
    shutil.copytree(trained_run, odd)
    markdown = invoke("compare", odd, second_run, "--markdown")
    assert markdown.exit_code == 0, markdown.output
    results, settings = markdown.output.strip().split("\n\n")
    for table, rows in ((results, 2), (settings, len(CHANGED))):
        lines = table.splitlines()
        assert len(lines) == 2 + rows and all(line.startswith("| ") and line.endswith(" |") for line in lines)
        assert len({len(line.replace("\\|", "").split(" | ")) for line in lines}) == 1
    assert "run\\nname\\|with\\x1b[31mred" in results and "\x1b" not in markdown.output


def test_plot_and_splits_from_a_report_inside_the_run(trained_run: Path, second_run: Path, tmp_path: Path) -> None:
    evaluated = invoke("eval", second_run / "best.pth", "--device", "cpu", "--report", second_run / "report",
                       "--gallery-misses", "0", "--gallery-hits", "0")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    plot = tmp_path / "curves.png"
    result = invoke("compare", trained_run, second_run / "best.pth", "--csv", "--plot", plot)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["test Acc@0.5"] == "—" and float(rows[1]["test Acc@0.5"]) >= 0
    with Image.open(plot) as picture:
        assert picture.format == "PNG" and picture.width >= 600


def test_accuracies_of_different_protocols_are_named_and_flagged(second_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "variant"
    shutil.copytree(second_run, run, ignore=shutil.ignore_patterns("report"))
    evaluated = invoke("eval", run / "best.pth", "--device", "cpu", "--protocol", "clipped", "--report",
                       run / "clipped", "--gallery-misses", "0", "--gallery-hits", "0")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    result = invoke("compare", run, "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["protocol"] == "original, clipped"  # val from training, test from the clipped report
    assert "different evaluation protocols (original, clipped)" in result.output


def test_paths_that_cannot_be_compared_are_named_and_the_rest_compared(
    trained_run: Path, second_run: Path, tmp_path: Path
) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("model: {}\n")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    result = invoke("compare", trained_run, tmp_path / "nowhere", unfinished, tmp_path / "notes.pth", second_run)
    assert result.exit_code == 1
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 3
    assert "nowhere does not exist" in skipped[0] and "no finished epoch yet" in skipped[1]
    assert "notes.pth is not a readable checkpoint" in skipped[2]
    assert "variant" in result.output and "model.head.label_smooth" in result.output

    nothing = invoke("compare", tmp_path / "nowhere")
    assert nothing.exit_code == 2 and "none of the paths could be compared" in nothing.output
