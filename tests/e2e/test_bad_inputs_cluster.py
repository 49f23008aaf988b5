"""Bad-input catalogue, clusters: a SLURM job's environment that is malformed or contradicts the flags, and
launch flags (--nnodes, --node-rank, --master-port, --max-restarts) that contradict each other.

Every row fails while the launch is planned: before torchrun starts, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from tests.e2e.bad_inputs import Places, Row, judge
from tests.e2e.conftest import TINY

Args = Callable[[Places], Sequence[object]]

# One node of a one-node job, one task on it: the environment srun gives `simrec train`.
JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "node1",
       "SLURM_NTASKS_PER_NODE": "1"}  # fmt: skip


def _train(*flags: object) -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={p.data}",
                      f"train.output_dir={p.tmp / 'run'}", *TINY, *flags]  # fmt: skip


def _in_job(id: str, names: str, says: str = "", flags: Sequence[object] = (), **variables: str) -> Row:
    """`simrec train FLAGS` in a SLURM job whose environment has `variables` changed."""
    return Row(f"slurm {id}", _train(*flags), names, says=says, env=tuple({**JOB, **variables}.items()))


SLURM = [
    _in_job("node list bracket not closed", "SLURM_JOB_NODELIST", "without ']'", SLURM_JOB_NODELIST="gpu[01-"),
    _in_job("node list of letters", "SLURM_JOB_NODELIST", "not a list of numbers", SLURM_JOB_NODELIST="gpu[a-b]"),
    _in_job("node list range backwards", "SLURM_JOB_NODELIST", "runs backwards", SLURM_JOB_NODELIST="gpu[9-1]"),
    _in_job("node list empty", "SLURM_JOB_NODELIST", "is not", SLURM_JOB_NODELIST=""),
    _in_job("node list a lone comma", "SLURM_JOB_NODELIST", "empty host name", SLURM_JOB_NODELIST=","),
    _in_job("node list of a billion hosts", "--nnodes 3", "SLURM_JOB_NUM_NODES=2", flags=["--nnodes", "3"],
            SLURM_JOB_NODELIST="n[0-999999999]", SLURM_JOB_NUM_NODES="2", SLURM_NODEID="1"),
    _in_job("node id not a number", "SLURM_NODEID", "expected a whole number", SLURM_NODEID="abc"),
    _in_job("node id with a tail", "SLURM_NODEID", "found '2abc'", SLURM_NODEID="2abc"),
    _in_job("node id negative", "SLURM_NODEID", "found '-1'", SLURM_NODEID="-1"),
    _in_job("node count beyond any cluster", "SLURM_JOB_NUM_NODES", "at most 100,000", SLURM_JOB_NUM_NODES="10" * 20),
    _in_job("first host not a host name", "SLURM_JOB_NODELIST", "expected a host name",
            SLURM_JOB_NODELIST="node;reboot,n2", SLURM_JOB_NUM_NODES="2"),
    _in_job("first host of 300 characters", "SLURM_JOB_NODELIST", "(300 characters)",
            SLURM_JOB_NODELIST="n" * 299 + "!", SLURM_JOB_NUM_NODES="2"),
    _in_job("node id beyond the job's nodes", "SLURM_NODEID 5", "SLURM_JOB_NUM_NODES 2", SLURM_NODEID="5",
            SLURM_JOB_NUM_NODES="2", SLURM_JOB_NODELIST="n[1-2]"),
    _in_job("no nodes", "SLURM_JOB_NUM_NODES", "1 or more", SLURM_JOB_NUM_NODES="0"),
    _in_job("no tasks per node", "SLURM_NTASKS_PER_NODE", "1 or more", SLURM_NTASKS_PER_NODE="0"),
    _in_job("tasks per node not a number", "SLURM_NTASKS_PER_NODE", "expected a number of tasks",
            SLURM_NTASKS_PER_NODE="(x2)"),
    _in_job("several tasks on one node", "srun started 4 tasks", "--ntasks-per-node=1",
            SLURM_STEP_NUM_TASKS="4", SLURM_STEP_NUM_NODES="1"),
    _in_job("--nnodes contradicts the job", "--nnodes 3", "SLURM_JOB_NUM_NODES=2", flags=["--nnodes", "3"],
            SLURM_JOB_NUM_NODES="2", SLURM_NODEID="1", SLURM_JOB_NODELIST="n[1-2]"),
]  # fmt: skip

FLAGS = [
    Row("--node-rank beyond --nnodes", _train("--nnodes", "2", "--node-rank", "2"), "--node-rank 2"),
    Row("--nnodes 0", _train("--nnodes", "0"), "--nnodes 0"),
    Row("--node-rank negative", _train("--nnodes", "2", "--node-rank", "-1"), "--node-rank -1"),
    Row("--node-rank without --nnodes", _train("--node-rank", "1"), "--node-rank 1"),
    Row("--max-restarts negative", _train("--max-restarts", "-1"), "--max-restarts -1"),
    Row("--master-port out of range", _train("--nnodes", "2", "--node-rank", "1", "--master-port", "70000"),
        "--master-port 70000", says="not a TCP port"),
    Row("--master-port negative", _train("--nproc", "2", "--master-port", "-1"), "--master-port -1"),
    Row("--master-addr empty", _train("--nnodes", "2", "--node-rank", "1", "--master-addr", " "), "--master-addr",
        says="empty"),
    Row("--master-addr not a host", _train("--nnodes", "2", "--node-rank", "1", "--master-addr", "no such host!"),
        "--master-addr", says="expected a host name"),
    Row("resume --node-rank beyond --nnodes", lambda p: ["resume", p.run, "--device", "cpu", "--nnodes", "2",
        "--node-rank", "3"], "--node-rank 3"),
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in SLURM + FLAGS])
def test_bad_launch(row: Row, places: Places) -> None:
    judge(row, places)
