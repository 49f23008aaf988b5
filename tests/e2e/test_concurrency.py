"""Concurrency catalogue: one process per run directory.

`train` and `resume` hold a kernel lock in the run directory for their lifetime. A second start into a held
directory stops in one line naming the PID and host of the holder and changes nothing there; the holder's death,
even by SIGKILL, frees the directory at once; evaluation reads a held run; and two starts without
`train.output_dir` never pick the same numbered folder, nor do predicts started together without `--output-dir`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.bad_inputs import changes, error_line, run_cli, snapshot
from tests.e2e.conftest import metrics_rows, train_args

TIMEOUT = 300

# A process that holds a run directory's lock as `simrec train` does (the same function), then waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from simrec_cli.engine.run_lock import held_run_dir

with held_run_dir(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A finished run of the session's tiny model that the test may hold and resume."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


@pytest.fixture
def holder(run_copy: Path) -> Iterator[subprocess.Popen]:
    """A live process holding `run_copy`'s lock (killed, if still alive, at the end)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_copy)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait(timeout=TIMEOUT)


def _refused_naming(outcome: object, holder: subprocess.Popen, run_dir: Path) -> None:
    line = error_line(outcome)  # type: ignore[arg-type]
    assert f"{run_dir} is in use" in line, line
    assert f"PID {holder.pid} on {socket.gethostname()}" in line, line


def test_a_resume_into_a_held_run_is_refused_naming_the_holder(run_copy: Path, holder: subprocess.Popen) -> None:
    before = snapshot(run_copy)
    outcome = run_cli(["resume", run_copy, "--device", "cpu"], run_copy.parent)
    assert outcome.exit_code == 2, outcome.output[-3000:]
    _refused_naming(outcome, holder, run_copy)
    assert changes(before, snapshot(run_copy)) == []


def test_a_train_into_a_held_run_directory_is_refused_before_reading_anything(
    run_copy: Path, holder: subprocess.Popen, synthetic_root: Path
) -> None:
    before = snapshot(run_copy)
    outcome = run_cli(train_args(synthetic_root, run_copy), run_copy.parent)
    assert outcome.exit_code == 2, outcome.output[-3000:]
    _refused_naming(outcome, holder, run_copy)
    assert "epoch" not in outcome.stdout  # stopped before the data and the model were loaded
    assert changes(before, snapshot(run_copy)) == []


def test_a_sigkilled_holder_frees_the_run_at_once(run_copy: Path, holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=TIMEOUT)
    assert (run_copy / "run.lock").is_file()  # a killed holder leaves its file; the kernel's lock went with it
    outcome = run_cli(["resume", run_copy, "--device", "cpu"], run_copy.parent)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "nothing to do" in outcome.output
    assert not (run_copy / "run.lock").exists()  # the resume took it, and removed it when done


def test_eval_reads_a_held_run(run_copy: Path, holder: subprocess.Popen) -> None:
    outcome = run_cli(["eval", run_copy / "best.pth", "--device", "cpu", "--split", "val"], run_copy.parent)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "Acc@0.5" in outcome.stdout


def test_a_finished_resume_leaves_no_lock_file(run_copy: Path) -> None:
    before = snapshot(run_copy)
    outcome = run_cli(["resume", run_copy, "--device", "cpu"], run_copy.parent)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert changes(before, snapshot(run_copy)) == []


def test_a_run_of_a_simrec_without_run_marks_resumes_and_is_marked_then(run_copy: Path) -> None:
    """Run directories written before simrec marked them (no run.json) are still its own: resume trains on."""
    (run_copy / "run.json").unlink()
    outcome = run_cli(["resume", run_copy, "--device", "cpu", "train.epochs=3"], run_copy.parent)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert [row["epoch"] for row in metrics_rows(run_copy)] == ["1", "2", "3"]
    assert json.loads((run_copy / "run.json").read_text())["format"] == "simrec-run-v1"


def test_a_foreign_folder_with_a_last_pth_is_not_taken_for_a_run(run_copy: Path) -> None:
    (run_copy / "run.json").unlink()
    (run_copy / "log.txt").write_text("my notes about this model\n")
    before = snapshot(run_copy)
    outcome = run_cli(["resume", run_copy, "--device", "cpu", "train.epochs=3"], run_copy.parent)
    assert outcome.exit_code == 2, outcome.output[-3000:]
    assert "holds files and no run.json of a simrec run" in error_line(outcome)
    assert changes(before, snapshot(run_copy)) == []


@pytest.mark.slow  # two real trainings at once
def test_two_trains_into_one_output_dir_one_is_refused_and_the_other_is_whole(
    synthetic_root: Path, tmp_path: Path
) -> None:
    """Started together into one train.output_dir: exactly one trains (every epoch's row, its own checkpoints),
    the other stops in one line naming it; they never interleave."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "simrec_cli", *train_args(synthetic_root, run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=tmp_path) for _ in range(2))  # fmt: skip
    outcomes = [(process.pid, *process.communicate(timeout=TIMEOUT), process.returncode) for process in (first, second)]
    codes = sorted(code for *_, code in outcomes)
    assert codes == [0, 2], outcomes
    winner = next(pid for pid, _, _, code in outcomes if code == 0)
    refused = next(stderr for _, _, stderr, code in outcomes if code == 2)
    assert f"is in use: PID {winner} on {socket.gethostname()}" in refused, refused
    assert [row["epoch"] for row in metrics_rows(run_dir)] == ["1", "2"]
    assert (run_dir / "log.txt").read_text().count("epoch 1/2") == 1


def test_starts_without_an_output_dir_claim_numbered_folders_one_each(synthetic_root: Path, tmp_path: Path) -> None:
    """runs/train exists and is held: the next start takes runs/train2 (created by the claim, not shared)."""
    held = tmp_path / "runs" / "train"
    held.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(held)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        args = [arg for arg in train_args(synthetic_root, tmp_path) if not arg.startswith("train.output_dir=")]
        outcome = run_cli(args, tmp_path)
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "run directory runs/train2" in outcome.stdout.replace("\n", " ")
    assert [row["epoch"] for row in metrics_rows(tmp_path / "runs" / "train2")] == ["1", "2"]
    assert sorted(path.name for path in held.iterdir()) == ["run.json", "run.lock"]  # only its killed holder's files


@pytest.mark.slow  # two processes under torchrun
def test_under_torchrun_the_launcher_holds_the_lock_and_its_ranks_train(synthetic_root: Path, tmp_path: Path) -> None:
    """`--nproc 2`: the launcher takes the lock, its ranks do not take it again (they would refuse each other),
    and a start meanwhile is refused naming the launcher."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "simrec_cli", *train_args(synthetic_root, run_dir), "--nproc", "2"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while not (run_dir / "log.txt").is_file():  # the ranks are training
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()[1][-3000:]
        time.sleep(0.05)
    second = run_cli(train_args(synthetic_root, run_dir), tmp_path)
    _, stderr = launcher.communicate(timeout=TIMEOUT)
    assert launcher.returncode == 0, stderr[-3000:]
    assert second.exit_code == 2 and f"PID {launcher.pid} on" in error_line(second), second.output[-3000:]
    assert [row["epoch"] for row in metrics_rows(run_dir)] == ["1", "2"]
    assert not (run_dir / "run.lock").exists()


def test_predicts_started_together_claim_a_numbered_folder_each(trained_run: Path, synthetic_root: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """Three `simrec predict` without --output-dir at the same moment: runs/predict, predict2 and predict3, one
    each, each holding its own picture (the name is claimed by creating the folder, not chosen and made later)."""
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    command = [sys.executable, "-m", "simrec_cli", "predict", str(image), "the big red circle", "--json",
               "--checkpoint", str(trained_run / "best.pth"), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for _ in range(3)]  # fmt: skip
    finished = [process.communicate(timeout=TIMEOUT) for process in started]
    assert [process.returncode for process in started] == [0, 0, 0], [stderr[-2000:] for _, stderr in finished]
    pictures = sorted(json.loads(stdout)["picture"] for stdout, _ in finished)
    assert pictures == [f"runs/{name}/demo.jpg" for name in ("predict", "predict2", "predict3")]
    for folder in (tmp_path / "runs").iterdir():
        assert [path.name for path in folder.iterdir()] == ["demo.jpg"]


@pytest.mark.slow  # three predicts of ten images each at once
def test_predicts_into_one_output_folder_never_replace_each_other_s_pictures(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    """Three predicts at once into one --output-dir, on the same ten images: thirty pictures, none replaced (each
    name is created new; a name another process took meanwhile moves the picture to the next free one)."""
    images = str(synthetic_root / "images" / "synthetic" / "00000*.jpg")
    command = [sys.executable, "-m", "simrec_cli", "predict", images, "the big red circle", "--json", "--checkpoint",
               str(trained_run / "best.pth"), "--device", "cpu", "--output-dir", str(tmp_path / "out")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(3)]  # fmt: skip
    finished = [process.communicate(timeout=TIMEOUT) for process in started]
    assert [process.returncode for process in started] == [0, 0, 0], [stderr[-2000:] for _, stderr in finished]
    pictures = [json.loads(line)["picture"] for stdout, _ in finished for line in stdout.splitlines()]
    assert len(pictures) == 30 and len(set(pictures)) == 30
    assert sorted(str(path) for path in (tmp_path / "out").iterdir()) == sorted(pictures)


def test_a_predict_that_fails_after_claiming_its_folder_leaves_nothing(trained_run: Path, synthetic_root: Path,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """The default folder is claimed before the model loads; a predict that then fails (an expression without
    words, found once the vocabulary is read) removes it again, and runs/ with it."""
    image = synthetic_root / "images" / "synthetic" / "demo.jpg"
    outcome = run_cli(["predict", image, "?!", "--checkpoint", trained_run / "best.pth", "--device", "cpu"], tmp_path)
    assert outcome.exit_code == 2 and "has no words" in error_line(outcome), outcome.output[-3000:]
    assert list(tmp_path.iterdir()) == []
