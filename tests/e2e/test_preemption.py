"""Runs that lose a process: checkpoints inside an epoch (`train.checkpoint_every_steps`), a SIGTERM that saves one
before stopping, and torchrun restarting the workers after one was killed. Each ends with the weights of a run
that was never interrupted, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.e2e.conftest import assert_same_weights, invoke, metrics_rows, train_args

STEPS = 24  # train.batch_size=2 over the 48 training images: 24 steps an epoch with one process or two
SMALL_STEPS = ["train.batch_size=2"]
TIMEOUT = 300


def command(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simrec_cli", *train_args(root, run_dir, *SMALL_STEPS, *extra)]


def read_last(run_dir: Path) -> dict | None:
    """last.pth as it is now (None before the first one); it is replaced atomically, so never torn."""
    try:
        return torch.load(run_dir / "last.pth", weights_only=True)
    except FileNotFoundError:
        return None


def wait_for(process: subprocess.Popen, ready: object) -> None:
    """Poll until `ready()` is true; fail if the process ends first or nothing happens for a long time."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():  # type: ignore[operator]
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.02)


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) if entry.name.isdigit() else None
        except OSError:
            continue  # the process ended while we looked
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def environment(pid: int) -> bytes:
    """The NUL-separated environment of a process (empty once it has ended), with a NUL in front of the first."""
    try:
        return b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def resume_to_the_end(root: Path, run_dir: Path, *extra: str) -> None:
    """The same command again: it finds last.pth and continues (auto-resume)."""
    completed = subprocess.run(command(root, run_dir, *extra), capture_output=True, text=True, timeout=TIMEOUT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "resuming from" in (run_dir / "log.txt").read_text()


@pytest.fixture(scope="module")
def one_process_reference(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs straight, without step checkpoints: writing them must not change a bit either."""
    run_dir = tmp_path_factory.mktemp("straight") / "one"
    result = invoke(*train_args(synthetic_root, run_dir, *SMALL_STEPS))
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def two_process_reference(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "two"
    completed = subprocess.run(command(synthetic_root, run_dir, "--nproc", "2"), capture_output=True, text=True,
                               timeout=TIMEOUT)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return run_dir


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """Same weights, and metrics.csv with one row per epoch and the same numbers in every column but the time."""
    assert_same_weights(run_dir / "last.pth", reference / "last.pth")
    rows, expected = metrics_rows(run_dir), metrics_rows(reference)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in [*rows, *expected]:
        del row["time_s"]
    assert rows == expected  # the resumed epoch's mean losses and its validation too


def kill_after_a_step_checkpoint(root: Path, run_dir: Path, *extra: str) -> dict:
    """Start training with step checkpoints, SIGKILL every process of it once one is written; last.pth then."""
    process = subprocess.Popen(command(root, run_dir, "train.checkpoint_every_steps=5", *extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(process, lambda: ((read_last(run_dir) or {}).get("epoch_progress") or {}).get("steps"))
    for pid in process_tree(process.pid):  # the launcher, torchrun and the workers, as when a node dies
        os.kill(pid, signal.SIGKILL)
    process.communicate(timeout=TIMEOUT)
    checkpoint = read_last(run_dir)
    assert checkpoint is not None and 0 < checkpoint["epoch_progress"]["steps"] < STEPS
    return checkpoint


@pytest.mark.slow
def test_sigkill_after_a_step_checkpoint_then_resume_is_bit_exact(
    synthetic_root: Path, one_process_reference: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "killed"
    checkpoint = kill_after_a_step_checkpoint(synthetic_root, run_dir)
    assert checkpoint["world_size"] == 1 and len(checkpoint["rng_ranks"]) == 1
    # an exact continuation in the middle of an epoch needs the same processes
    other = subprocess.run([sys.executable, "-m", "simrec_cli", "resume", str(run_dir), "--device", "cpu",
                            "--nproc", "2"], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert other.returncode == 2
    assert f"saved in the middle of epoch {checkpoint['epoch'] + 1} by 1 process(es)" in other.stderr
    resume_to_the_end(synthetic_root, run_dir, "train.checkpoint_every_steps=5")
    assert_same_run(run_dir, one_process_reference)


@pytest.mark.slow
def test_sigterm_saves_a_step_checkpoint_before_stopping(
    synthetic_root: Path, one_process_reference: Path, tmp_path: Path
) -> None:
    """No step checkpoint is due (every 1000 steps): the one in the middle of epoch 2 is SIGTERM's."""
    run_dir = tmp_path / "preempted"
    process = subprocess.Popen(command(synthetic_root, run_dir, "train.checkpoint_every_steps=1000"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(process, lambda: (read_last(run_dir) or {}).get("epoch") == 1)
    process.send_signal(signal.SIGTERM)  # after epoch 1's last check for a stop: it stops within epoch 2
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    checkpoint = read_last(run_dir)
    assert checkpoint is not None and checkpoint["epoch"] == 1
    steps = checkpoint["epoch_progress"]["steps"]
    assert 0 < steps < STEPS
    log = (run_dir / "log.txt").read_text()
    assert f"holds epoch 1 and step {steps}/{STEPS} of epoch 2: continue with `simrec resume {run_dir}`" in log
    resume_to_the_end(synthetic_root, run_dir, "train.checkpoint_every_steps=1000")
    assert_same_run(run_dir, one_process_reference)


@pytest.mark.slow
def test_two_processes_killed_after_a_step_checkpoint_then_resume_is_bit_exact(
    synthetic_root: Path, two_process_reference: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "killed"
    checkpoint = kill_after_a_step_checkpoint(synthetic_root, run_dir, "--nproc", "2")
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_ranks"]) == 2  # every rank's RNG states
    resume_to_the_end(synthetic_root, run_dir, "train.checkpoint_every_steps=5", "--nproc", "2")
    assert_same_run(run_dir, two_process_reference)


@pytest.mark.slow
def test_torchrun_restarts_a_killed_worker_and_the_run_ends_as_if_uninterrupted(
    synthetic_root: Path, two_process_reference: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "restarted"
    process = subprocess.Popen(command(synthetic_root, run_dir, "--nproc", "2", "--max-restarts", "1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # last.pth appears (atomically) once epoch 1 is saved, after its metrics row; epoch 2 (24 steps) is under way then
    wait_for(process, lambda: (run_dir / "last.pth").is_file())
    workers = [pid for pid in process_tree(process.pid) if b"\0RANK=1\0" in environment(pid)]
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)  # one worker, not the launcher: an OOM kill, a crashed process
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr[-3000:]
    log = (run_dir / "log.txt").read_text()
    assert "torchrun restarted the workers after one failed (restart 1 of 1)" in log
    assert f"resuming from {run_dir / 'last.pth'} (epoch 1 done)" in log
    assert_same_run(run_dir, two_process_reference)
