"""Faults injected into real runs: a full disk while saving a checkpoint, preparing data or writing predictions
(a real small tmpfs where this machine lets root mount one, a write that raises ENOSPC everywhere), a rename that
fails while an export's files are put in place, SIGKILL at each phase of a checkpoint save, and SIGTERM and Ctrl-C
(SIGINT) during prepare-data, evaluation and predict.

SIGTERM during training, with one and two processes, is covered by test_train_eval.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from simrec_cli.errors import EXIT_INTERRUPTED, EXIT_SOME_FAILED, EXIT_USER_ERROR
from tests.e2e.bad_inputs import Outcome, Places, Row, changes, error_line, judge, run_cli, snapshot
from tests.faults import failing_rename, failing_writes, fill, small_tmpfs
from tests.refer_fixture import write_refer_fixture


def _temporaries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*.tmp"))


def _epoch(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, weights_only=True)["epoch"])


# ------------------------------------------------------------------------------ a full disk: checkpoints


def _resume_one_more_epoch(run: Path, cwd: Path) -> tuple[bytes, Outcome]:
    """Resume the copied tiny run (2 epochs done) for a third; returns last.pth's bytes before, and the outcome."""
    before = (run / "last.pth").read_bytes()
    return before, run_cli(["resume", run, "--device", "cpu", "train.epochs=3"], cwd)


def _assert_save_failed_cleanly(run: Path, before: bytes, outcome: Outcome) -> None:
    assert outcome.exit_code == EXIT_USER_ERROR, outcome.output[-3000:]
    line = error_line(outcome)
    assert "disk full" in line and str(run / "last.pth") in line and "was left as it was" in line, line
    assert (run / "last.pth").read_bytes() == before and _epoch(run / "last.pth") == 2
    assert _temporaries(run) == []


def test_disk_full_while_saving_a_checkpoint_simulated(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    run = places.tmp / "run"
    shutil.copytree(places.run, run)
    failing_writes(monkeypatch, target="last.pth")
    before, outcome = _resume_one_more_epoch(run, places.tmp)
    _assert_save_failed_cleanly(run, before, outcome)
    monkeypatch.undo()  # space again: the same command goes on from the intact last.pth
    again = run_cli(["resume", run, "--device", "cpu", "train.epochs=3"], places.tmp)
    assert again.exit_code == 0, again.output[-3000:]
    assert _epoch(run / "last.pth") == 3


def test_disk_full_while_saving_a_checkpoint_on_a_real_tmpfs(places: Places) -> None:
    checkpoint_kib = (places.run / "last.pth").stat().st_size // 1024
    with small_tmpfs(places.tmp / "disk", checkpoint_kib + 1024) as disk:  # room for last.pth, not for a second
        run = disk / "run"
        shutil.copytree(places.run, run, ignore=shutil.ignore_patterns("best.pth", "events.*", "results.png"))
        fill(disk, leave_kib=256)
        before, outcome = _resume_one_more_epoch(run, places.tmp)
        _assert_save_failed_cleanly(run, before, outcome)


# ----------------------------------------------------------------------------- a full disk: prepare-data


def _prepare_refer_row(root: Path) -> Row:
    return Row("prepare-data on a full disk", lambda p: ["prepare-data", "--dataset", "refcoco", "--data-root", root,
               "--generate-mask"], "disk full")  # fmt: skip


def test_disk_full_while_preparing_data_simulated(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    """The masks fail after the annotations were written to their temporary: every old file stays as it was."""
    root = places.tmp / "data"
    write_refer_fixture(root, num_images=5, crowd=False)
    row = _prepare_refer_row(root)
    assert run_cli(row.args(places), places.tmp).exit_code == 0
    failing_writes(monkeypatch, target=".rle.json")
    line = error_line(judge(row, places))
    assert "refcoco.rle.json" in line and _temporaries(root) == []


def test_disk_full_while_preparing_data_on_a_real_tmpfs(places: Places) -> None:
    with small_tmpfs(places.tmp / "disk", 1024) as disk:
        root = disk / "data"
        write_refer_fixture(root, num_images=5, crowd=False)
        row = _prepare_refer_row(root)
        assert run_cli(row.args(places), places.tmp).exit_code == 0
        fill(disk, leave_kib=0)
        judge(row, Places(places.tmp, places.data, lambda: places.run, disk))
        assert _temporaries(root) == []


# -------------------------------------------------------------------------- a full disk: eval's outputs


def _eval_outputs(places: Places, folder: Path, *more: object) -> list[object]:
    return ["eval", places.checkpoint, "--device", "cpu", "--split", "val", "--json", folder / "m.json",
            "--report", folder / "rep", *more]  # fmt: skip


def _assert_nothing_written(outcome: Outcome, folder: Path, failed: str) -> None:
    """One line that names the file that did not fit and says truly that nothing was written; and nothing was."""
    assert outcome.exit_code == EXIT_USER_ERROR, outcome.output[-3000:]
    line = error_line(outcome)
    assert "disk full" in line and failed in line and "nothing was written" in line, line
    assert sorted(path.name for path in folder.iterdir() if path.name != "filler.bin") == []


def test_disk_full_while_drawing_the_report_simulated(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's pictures do not fit, after --json and --save-predictions did: none of the three is written
    (each is renamed into place only when all are complete), and the line says so."""
    out = places.tmp / "out"
    out.mkdir()
    failing_writes(monkeypatch, target=".jpg")
    outcome = run_cli(_eval_outputs(places, out, "--save-predictions", out / "p.jsonl"), places.tmp)
    _assert_nothing_written(outcome, out, str(out / "rep" / "images" / "val-"))


def test_disk_full_while_drawing_the_report_on_a_real_tmpfs(places: Places) -> None:
    with small_tmpfs(places.tmp / "disk", 1024) as disk:
        fill(disk, leave_kib=8)  # room for the metrics, not for the report's pictures and page
        outcome = run_cli(_eval_outputs(places, disk), places.tmp)
        _assert_nothing_written(outcome, disk, str(disk / "rep"))


# ---------------------------------------------------------------- an export's files put in place together


EXPORTS = {  # the files of each format, in the order they are renamed into place; the model file is -o
    "onnx": ("m.onnx", "m.json"),
    "openvino": ("m.bin", "m.json", "m.xml"),
}
MODEL_FILE = {"onnx": "m.onnx", "openvino": "m.xml"}


def _failing_export(places: Places, monkeypatch: pytest.MonkeyPatch, export_format: str, failing: str) -> None:
    """An earlier export's files are there; the rename of `failing` fails: every file of the export is left as it
    was (those already renamed into place are put back), and the one line says nothing was written."""
    files = EXPORTS[export_format]
    for name in files:
        (places.tmp / name).write_text(f"an earlier {name}")
    before = snapshot(places.tmp)
    failing_rename(monkeypatch, failing)
    model = places.tmp / MODEL_FILE[export_format]
    outcome = run_cli(["export", places.checkpoint, "--format", export_format, "-o", model], places.tmp)
    assert outcome.exit_code == EXIT_USER_ERROR, outcome.output[-3000:]
    line = error_line(outcome)
    assert f"cannot write {places.tmp / failing}" in line and "nothing was written" in line, line
    assert changes(before, snapshot(places.tmp)) == []


@pytest.mark.parametrize("failing", EXPORTS["onnx"])
def test_an_onnx_export_is_put_in_place_whole_or_not_at_all(places: Places, monkeypatch: pytest.MonkeyPatch,
                                                             failing: str) -> None:  # fmt: skip
    _failing_export(places, monkeypatch, "onnx", failing)


@pytest.mark.slow  # an OpenVINO conversion and check
def test_an_openvino_export_is_put_in_place_whole_or_not_at_all(places: Places,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _failing_export(places, monkeypatch, "openvino", "m.xml")


# ------------------------------------------------------------------------------- a full disk: predictions


def _predict_into(places: Places, output: Path) -> tuple[list[object], bytes]:
    """Answer on a.jpg and b.jpg with pictures in `output`, where an earlier run left a.jpg's picture."""
    for name in ("a.jpg", "b.jpg"):
        shutil.copyfile(places.image, places.tmp / name)
    args = ["predict", places.tmp / "a.jpg", "the red circle", "--checkpoint", places.checkpoint, "--json",
            "--output-dir", output]  # fmt: skip
    first = run_cli(args, places.tmp)
    assert first.exit_code == 0, first.output[-2000:]
    return [*args[:1], places.tmp / "*.jpg", *args[2:]], (output / "a.jpg").read_bytes()


def _assert_answers_printed(outcome: Outcome, output: Path, old_picture: bytes) -> None:
    assert outcome.exit_code == EXIT_SOME_FAILED, outcome.output[-3000:]
    records = [json.loads(line) for line in outcome.stdout.splitlines()]
    assert [Path(record["image"]).name for record in records] == ["a.jpg", "b.jpg"]
    assert all(record["box"] is not None and record["error"] is None for record in records)
    assert all(record["picture"] is None for record in records)
    line = error_line(outcome)
    assert "disk full" in line and "2 of 2 images were not written" in line, line
    assert (output / "a.jpg").read_bytes() == old_picture and not (output / "b.jpg").exists()
    assert _temporaries(output) == []


def test_disk_full_while_writing_predictions_simulated(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    output = places.tmp / "out"
    args, old_picture = _predict_into(places, output)
    failing_writes(monkeypatch, target=".jpg")
    _assert_answers_printed(run_cli(args, places.tmp), output, old_picture)


def test_disk_full_while_writing_predictions_on_a_real_tmpfs(places: Places) -> None:
    with small_tmpfs(places.tmp / "disk", 1024) as disk:
        output = disk / "out"
        args, old_picture = _predict_into(places, output)
        fill(disk, leave_kib=0)
        _assert_answers_printed(run_cli(args, places.tmp), output, old_picture)


# --------------------------------------------------------------------------- SIGKILL during a checkpoint save

# Run the CLI in a process that kills itself with SIGKILL at one phase of writing last.pth.
KILLING_DRIVER = """
import os, signal, sys
from simrec_cli.storage import atomic as files

phase, target = sys.argv[1], ".last.pth."

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if phase == "before the temporary file":
    make_temporary = files._make_private_file
    def make_private_file(path):
        if path.name.startswith(target):
            die()
        return make_temporary(path)
    files._make_private_file = make_private_file
elif phase == "while writing it":
    open_for_writing = files.open_for_writing
    class HalfWritten:
        def __init__(self, handle):
            self.handle, self.written = handle, 0
        def write(self, data):
            if self.written > 10_000:
                self.handle.flush()
                die()
            self.written += len(data)
            return self.handle.write(data)
        def __getattr__(self, name):
            return getattr(self.handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.handle.close()
    def opener(path, binary):
        handle = open_for_writing(path, binary)
        return HalfWritten(handle) if path.name.startswith(target) else handle
    files.open_for_writing = opener
elif phase == "between writing and renaming":
    rename = files.os.replace
    def replace(source, destination):
        if str(destination).endswith("last.pth"):
            die()
        return rename(source, destination)
    files.os.replace = replace

from simrec_cli.cli import main
sys.argv = ["simrec", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["before the temporary file", "while writing it", "between writing and renaming"])
def test_sigkill_at_each_phase_of_a_save_leaves_the_old_checkpoint(places: Places, phase: str) -> None:
    run = places.tmp / "run"
    shutil.copytree(places.run, run)
    before = (run / "last.pth").read_bytes()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", KILLING_DRIVER, phase, "resume", str(run), "--device", "cpu", "train.epochs=3"]
    killed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (run / "last.pth").read_bytes() == before and _epoch(run / "last.pth") == 2
    left = _temporaries(run)
    assert len(left) == (0 if phase == "before the temporary file" else 1), left
    resumed = run_cli(["resume", run, "--device", "cpu", "train.epochs=3"], places.tmp)
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert _epoch(run / "last.pth") == 3 and _temporaries(run) == []  # the killed writer's temporary is gone


# -------------------------------------------------------------------------------------- SIGTERM and Ctrl-C

STOPS = [signal.SIGTERM, signal.SIGINT]  # a scheduler's or `kill`'s stop, and Ctrl-C


def _default_sigint() -> None:
    """A process started from a background job inherits SIGINT ignored; a terminal's Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[object], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "simrec_cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip


def _terminate(process: subprocess.Popen, ready: Callable[[], bool], stop: int = signal.SIGTERM) -> tuple[str, str]:
    """Send `stop` once `ready()` holds (or the process ended), and collect its output."""
    deadline = time.time() + 120
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the command ended before it could be stopped"
    process.send_signal(stop)
    return process.communicate(timeout=120)


def _assert_stopped(process: subprocess.Popen, stdout: str, stderr: str) -> None:
    assert process.returncode == EXIT_INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    assert [line for line in stderr.splitlines() if line.strip()][-1] == "interrupted", stderr[-2000:]


@pytest.mark.parametrize("stop", STOPS, ids=lambda stop: stop.name)
def test_a_stop_during_prepare_data_leaves_nothing(places: Places, stop: signal.Signals) -> None:
    root = places.tmp / "data"
    process = _start(["prepare-data", "--dataset", "synthetic", "--data-root", root, "--num-images", "5000",
                      "--image-size", "64"], places.tmp)  # fmt: skip
    staged = root / "images"
    ready = lambda: staged.is_dir() and any(staged.glob(".synthetic.*"))  # noqa: E731
    _assert_stopped(process, *_terminate(process, ready, stop))
    assert not root.exists()  # the staged images, and the folders made for them, are gone


@pytest.fixture(scope="module")
def bigger_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset large enough that evaluating or predicting on it takes seconds, not a blink."""
    data = tmp_path_factory.mktemp("bigger")
    prepared = run_cli(["prepare-data", "--dataset", "synthetic", "--data-root", data, "--num-images", "400",
                        "--image-size", "64", "--seed", "7"], data)  # fmt: skip
    assert prepared.exit_code == 0, prepared.output[-2000:]
    return data


def _after_first_line(process: subprocess.Popen, first_line: list[str]) -> Callable[[], bool]:
    """Ready once the command printed its first line (the model is loaded), and half a second after."""

    def ready() -> bool:
        if not first_line and process.stdout is not None:
            first_line.append(process.stdout.readline())
            time.sleep(0.5)  # into the work loop (one expression or image per step)
        return True

    return ready


@pytest.mark.parametrize("stop", STOPS, ids=lambda stop: stop.name)
def test_a_stop_during_evaluation_writes_no_metrics(
    places: Places, tmp_path: Path, bigger_data: Path, stop: signal.Signals
) -> None:
    metrics = tmp_path / "metrics.json"
    process = _start(["eval", places.checkpoint, "--device", "cpu", "--data-root", bigger_data, "--batch-size", "1",
                      "--json", metrics], tmp_path)  # fmt: skip
    first_line: list[str] = []
    stdout, stderr = _terminate(process, _after_first_line(process, first_line), stop)
    _assert_stopped(process, first_line[0] + stdout, stderr)
    assert "loaded" in first_line[0] and not metrics.exists()


def test_ctrl_c_during_predict_leaves_whole_pictures(places: Places, tmp_path: Path, bigger_data: Path) -> None:
    """Ctrl-C while answering a folder of images: one line, and only whole pictures (no temporary file). SIGTERM
    takes the same way out (the eval and prepare-data tests above send both)."""
    out = tmp_path / "out"
    images = bigger_data / "images" / "synthetic"
    process = _start(["predict", images, "the red circle", "--checkpoint", places.checkpoint, "--device", "cpu",
                      "--batch-size", "1", "--output-dir", out], tmp_path)  # fmt: skip
    first_line: list[str] = []
    stdout, stderr = _terminate(process, _after_first_line(process, first_line), signal.SIGINT)
    _assert_stopped(process, first_line[0] + stdout, stderr)
    assert _temporaries(out) == [] and all(picture.stat().st_size > 0 for picture in out.iterdir())
