"""Training beyond one process as on a cluster, on one machine: two nodes on 127.0.0.1, a faked SLURM job, and the
one-line failures of nodes that do not meet. Every run uses gloo on CPU with the tiny model of conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_same_weights, metrics_rows, train_args
from tests.network import free_port

TIMEOUT = 300


def simrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "simrec_cli", *args]


def node_args(node_rank: int, nnodes: int, port: int) -> list[str]:
    return ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--master-addr", "127.0.0.1",
            "--master-port", str(port), "--nproc", "1"]  # fmt: skip


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)


@pytest.fixture(scope="module")
def slurm_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run inside a faked one-node SLURM job with two tasks' worth of CPU processes and no flags."""
    run_dir = tmp_path_factory.mktemp("slurm") / "run"
    job = {"SLURM_JOB_ID": "77", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_NTASKS_PER_NODE": "2",
           "SLURM_JOB_NODELIST": "localhost", "SLURM_GPUS_ON_NODE": "8"}  # fmt: skip
    completed = run(simrec(*train_args(synthetic_root, run_dir)), env={**os.environ, **job})
    assert completed.returncode == 0, completed.stderr[-3000:]
    return run_dir


def test_a_slurm_job_sets_the_processes_per_node(slurm_run: Path) -> None:
    # on CPU the 8 GPUs of the node do not count: SLURM_NTASKS_PER_NODE=2 gives two gloo processes
    assert "on 2 process(es), cpu" in (slurm_run / "log.txt").read_text()
    assert [row["epoch"] for row in metrics_rows(slurm_run)] == ["1", "2"]


@pytest.mark.slow
def test_two_nodes_on_localhost_equal_one_node_with_two_processes(
    synthetic_root: Path, slurm_run: Path, tmp_path: Path
) -> None:
    """Same global batch, same ranks: node 0's process is rank 0 and node 1's is rank 1, exactly as --nproc 2 places
    them, and gloo sums two gradients the same way whichever process holds which. The weights are bit-identical."""
    port = free_port()
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    second = subprocess.Popen(simrec(*train_args(synthetic_root, node1), *node_args(1, 2, port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = run(simrec(*train_args(synthetic_root, node0), *node_args(0, 2, port)))
    _, second_err = second.communicate(timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second_err[-3000:]
    assert not node1.exists()  # node 1 was given its own train.output_dir and wrote nothing there
    assert "on 2 process(es), cpu" in (node0 / "log.txt").read_text()
    assert [row["epoch"] for row in metrics_rows(node0)] == ["1", "2"]
    assert_same_weights(node0 / "last.pth", slurm_run / "last.pth")


@pytest.mark.slow
def test_a_node_that_cannot_reach_the_master_stops_in_one_line(synthetic_root: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    completed = run(simrec(*train_args(synthetic_root, tmp_path / "alone", "train.ddp.rendezvous_timeout=3"),
                           *node_args(1, 2, free_port())))  # fmt: skip
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert time.monotonic() - started < 60
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr[-3000:]
    assert "node 1 could not reach the master node at 127.0.0.1:" in lines[0] and "within 3 s" in lines[0]
    assert "train.ddp.rendezvous_timeout" in lines[0]
    assert not (tmp_path / "alone").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("first_nodes", "second_nodes"), [(3, 2), (2, 3)])
def test_nodes_that_disagree_on_nnodes_stop_in_one_line(
    synthetic_root: Path, tmp_path: Path, first_nodes: int, second_nodes: int
) -> None:
    """Node 0 counting more nodes waits for one that never comes (the rendezvous timeout); a node counting more than
    node 0 would join node 0's smaller run, and is stopped by comparing every node's count."""
    port, extra = free_port(), ["train.ddp.rendezvous_timeout=3", "train.batch_size=12"]
    second = subprocess.Popen(simrec(*train_args(synthetic_root, tmp_path / "b", *extra),
                                     *node_args(1, second_nodes, port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = run(simrec(*train_args(synthetic_root, tmp_path / "a", *extra), *node_args(0, first_nodes, port)))
    _, second_err = second.communicate(timeout=TIMEOUT)
    for code, stderr in [(first.returncode, first.stderr), (second.returncode, second_err)]:
        assert code == 2, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr[-3000:]
        assert "--nnodes" in lines[0]
    assert not (tmp_path / "a" / "last.pth").exists()
