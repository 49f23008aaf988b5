"""`simrec eval --report` as a user runs it: the files, numbers that add up, the page in a real browser, the
REFER format with and without objects.json, mask models, several processes, and eval's table at 80 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from simrec_cli.data.text import Vocabulary
from simrec_cli.report.analysis import MISS_CLASSES
from tests.browser import browser_page
from tests.e2e.conftest import invoke
from tests.refer_fixture import write_refer_fixture
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint


def _cli(*args: object, columns: int = 80) -> subprocess.CompletedProcess:
    """The CLI in a subprocess whose terminal is `columns` wide."""
    environment = {**os.environ, "COLUMNS": str(columns), "NO_ALBUMENTATIONS_UPDATE": "1"}
    command = [sys.executable, "-m", "simrec_cli", *(str(arg) for arg in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, check=False)


def without_spaces(text: str) -> str:
    """`text` without spaces or line breaks: rich wraps a line at the console's width (80 columns under a test),
    and the temporary folder's path (longer under pytest-xdist) decides where."""
    return "".join(text.split())


def assert_report_adds_up(report: dict) -> None:
    """Breakdowns, taxonomy and histogram account for every expression of every split."""
    for split in report["splits"]:
        count, acc50 = split["metrics"]["count"], split["metrics"]["acc50"]
        assert sum(split["iou_histogram"]["counts"]) == count
        for breakdown in split["breakdowns"]:
            buckets = breakdown["buckets"]
            assert sum(b["count"] for b in buckets) == count, breakdown["key"]
            weighted = sum(b["count"] * b["acc50"] for b in buckets if b["count"]) / count
            assert weighted == pytest.approx(acc50, abs=1e-9), breakdown["key"]
        taxonomy = split["taxonomy"]
        assert [c["name"] for c in taxonomy["classes"]] == list(MISS_CLASSES)
        assert sum(c["count"] for c in taxonomy["classes"]) == taxonomy["misses"]
        assert taxonomy["misses"] == round(count * (100 - acc50) / 100)


@pytest.fixture(scope="module")
def report_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "report"
    result = invoke("eval", trained_run / "best.pth", "--device", "cpu", "--report", folder,
                    "--gallery-misses", "5", "--gallery-hits", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert without_spaces(f"report written to {folder / 'index.html'}") in without_spaces(result.output)
    return folder


def test_report_files_and_numbers(report_dir: Path, trained_run: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    assert [split["split"] for split in report["splits"]] == ["val", "test"]
    assert report["objects"]["complete"] and report["dataset"] == "synthetic"
    assert report["protocol"]["name"] == "original" and report["protocol"]["miss_rule"] == "IoU ≤ 0.5"
    assert_report_adds_up(report)
    keys = [b["key"] for b in report["splits"][0]["breakdowns"]]
    assert keys == ["size", "length", "category", "distractors", "spatial", "kind"]
    assert report["training"]["epochs"] == [1, 2] and "val_acc50" in report["training"]["series"]
    page = (report_dir / "index.html").read_text()
    assert "<script" not in page and 'id="split-val"' in page and 'id="split-test"' in page
    assert "evaluation protocol original (hit = IoU &gt; 0.5)" in page and "misses (IoU ≤ 0.5)" in page
    for split in report["splits"]:
        pictures = split["gallery"]["misses"] + split["gallery"]["hits"]
        assert len(split["gallery"]["misses"]) == min(5, split["taxonomy"]["misses"])
        assert len(split["gallery"]["hits"]) == min(3, split["metrics"]["count"] - split["taxonomy"]["misses"])
        for picture in pictures:
            assert f'src="{picture["file"]}"' in page
            with Image.open(report_dir / picture["file"]) as image:
                assert image.format == "JPEG" and image.width <= 640
    assert sorted(p.name for p in report_dir.iterdir()) == ["images", "index.html", "report.json"]


def test_every_number_on_the_page_is_in_report_json(report_dir: Path) -> None:
    """Table cells and chart labels: each number is one of report.json's, as the page rounds it."""
    report = json.loads((report_dir / "report.json").read_text())
    known: set[str] = set()

    def collect(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            known.update({f"{value:.2f}", f"{value:,}", f"{value:g}", f"{value:.4g}", str(value)})

    collect(report)
    page = (report_dir / "index.html").read_text()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page) + re.findall(r"<text[^>]*>([^<]*)</text>", page)
    numbers = [n for cell in cells for n in re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", cell.split("(n=")[0])]
    numbers += [n for cell in cells for n in re.findall(r"\(n=([\d,]+)\)", cell)]
    assert numbers
    unknown = {number for number in numbers if number not in known and number not in {"0.5", "0.75"}}
    # bucket names hold their own numbers (32², "3+", "1-2 words"); everything else must come from the file
    names = {b["name"] for s in report["splits"] for c in s["breakdowns"] for b in c["buckets"]}
    assert {n for n in unknown if not any(n in name for name in names)} == set()


def test_the_page_opens_in_a_browser_with_every_picture(report_dir: Path, tmp_path: Path) -> None:
    with browser_page() as (page, problems):
        page.goto((report_dir / "index.html").as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert problems.all() == []
    assert images and all(complete and width > 0 for complete, width in images)
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.width == 1280 and shot.height > 900


def test_report_folder_with_other_files_is_refused_before_evaluating(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    result = invoke("eval", trained_run / "best.pth", "--device", "cpu", "--report", tmp_path)
    assert result.exit_code == 2
    assert "holds files" in result.output and "eval val" not in result.output
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_refer_format_with_and_without_objects_file(tmp_path: Path) -> None:
    fixture = write_refer_fixture(tmp_path / "data", num_images=15, num_objects=30, unreferred_per_image=3)
    assert invoke("prepare-data", "--dataset", "refcoco", "--data-root", fixture.root).exit_code == 0
    words = Vocabulary.load(fixture.root / "anns" / "refcoco.vocab.json").words
    checkpoint = write_checkpoint(tmp_path / "refcoco.pth", tiny_settings("dataset.name=refcoco"), words)
    folder = tmp_path / "report"
    args = ["eval", checkpoint, "--device", "cpu", "--data-root", fixture.root, "--split", "val", "--report", folder]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    with_objects = json.loads((folder / "report.json").read_text())
    assert with_objects["objects"]["complete"]
    assert_report_adds_up(with_objects)
    names = {b["name"] for b in with_objects["splits"][0]["breakdowns"][2]["buckets"]}
    assert names <= {"category1", "category3", "category18", "category90"}

    (fixture.root / "anns" / "refcoco.objects.json").unlink()
    result = invoke(*args)  # the earlier report's folder is replaced
    assert result.exit_code == 0, result.output
    without = json.loads((folder / "report.json").read_text())
    assert not without["objects"]["complete"]
    assert "use the other referred objects of each image" in (folder / "index.html").read_text()
    assert_report_adds_up(without)
    names = {b["name"] for b in without["splits"][0]["breakdowns"][2]["buckets"]}
    assert names <= {"person", "car", "dog", "toothbrush"}  # COCO's names of ids 1, 3, 18, 90
    same = ("count", "acc50", "acc75", "mean_iou")
    assert [without["splits"][0]["metrics"][k] for k in same] == [with_objects["splits"][0]["metrics"][k] for k in same]


def test_mask_model_report_and_table_readable_at_80_columns(synthetic_root: Path, tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "mcn.pth", tiny_settings("model.name=mcn"))
    result = _cli("eval", checkpoint, "--device", "cpu", "--data-root", synthetic_root, "--report", tmp_path / "r",
                  "--gallery-misses", "2", "--gallery-hits", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    table = "\n".join(line for line in lines if line.startswith("│"))
    for metric in ("mask mIoU", "mask oIoU", "mask P@0.9", "IE (box/mask)", "Acc@0.75"):
        row = next(line for line in table.splitlines() if metric in line)
        cells = [cell.strip() for cell in row.split("│")[2:-1]]
        assert len(cells) == 2 and all(re.fullmatch(r"\d+\.\d\d", cell) for cell in cells), row  # in full
    assert "…" not in table
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["masks"] and report["splits"][0]["metrics"]["mask_miou"] is not None
    assert len(report["splits"][0]["gallery"]["misses"]) == 2


@pytest.mark.slow
def test_report_under_two_processes_matches_one(trained_run: Path, report_dir: Path, tmp_path: Path) -> None:
    result = _cli("eval", trained_run / "best.pth", "--device", "cpu", "--nproc", "2", "--batch-size", "3",
                  "--report", tmp_path / "r2", "--gallery-misses", "5", "--gallery-hits", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    one = json.loads((report_dir / "report.json").read_text())
    two = json.loads((tmp_path / "r2" / "report.json").read_text())
    for first, second in zip(one["splits"], two["splits"], strict=True):
        assert first["taxonomy"] == second["taxonomy"]
        assert [b["count"] for c in first["breakdowns"] for b in c["buckets"]] == [
            b["count"] for c in second["breakdowns"] for b in c["buckets"]
        ]
        assert len(second["gallery"]["misses"]) == len(first["gallery"]["misses"])
