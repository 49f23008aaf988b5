"""SLURM's compact node lists, and the launch plan derived from faked SLURM environments (no cluster needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from simrec_cli.engine.launcher import LaunchRequest, plan_processes
from simrec_cli.engine.slurm import SlurmValue, expand_nodelist, first_host, slurm_allocation
from simrec_cli.errors import SimrecError


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node7", ["node7"]),
        ("gpu[01-04,07],cpu3", ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07", "cpu3"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),  # no padding: the width of the first number
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),  # padding kept, then outgrown
        ("a[1-2]-ib[3,5]", ["a1-ib3", "a1-ib5", "a2-ib3", "a2-ib5"]),  # several groups: the first changes slowest
        ("gnode[10,20,25,37]", ["gnode10", "gnode20", "gnode25", "gnode37"]),
        ("login1,compute-[001-002]", ["login1", "compute-001", "compute-002"]),
        ("rack2-[1]", ["rack2-1"]),
        ("x1000c0s[0-1]b0n0", ["x1000c0s0b0n0", "x1000c0s1b0n0"]),  # HPE-style names with the group inside
        ("10.0.0.[1-2]", ["10.0.0.1", "10.0.0.2"]),
    ],
)
def test_compact_nodelists_expand_like_slurm(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize(
    ("nodelist", "problem"),
    [("gpu[01-04", "'\\[' without '\\]'"), ("gpu01]", "without '\\['"), ("gpu[4-1]", "runs backwards"),
     ("gpu[a-b]", "not a list of numbers"), ("a,,b", "empty host name"), ("g[[1]]", "nested")],
)  # fmt: skip
def test_malformed_nodelists_are_one_clear_error(nodelist: str, problem: str) -> None:
    with pytest.raises(SimrecError, match=f"SLURM_JOB_NODELIST: .*{problem}"):
        expand_nodelist(nodelist, "SLURM_JOB_NODELIST")


def test_the_first_host_of_a_huge_range_is_found_without_expanding_it() -> None:
    """A typo such as `n[0-999999999]` names a billion hosts: node 0 comes at once, and the list is still checked."""
    assert first_host("n[0-999999999],login[007-9]", "SLURM_JOB_NODELIST") == "n0"
    with pytest.raises(SimrecError, match="runs backwards"):
        first_host("n[0-999999999],m[9-1]", "SLURM_JOB_NODELIST")


def test_scontrol_expands_the_list_where_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scontrol = tmp_path / "scontrol"
    scontrol.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "from-scontrol\\nother\\n"\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert first_host("gpu[01-02]", "SLURM_JOB_NODELIST") == "from-scontrol"
    scontrol.write_text("#!/bin/sh\nexit 1\n")  # a controller that does not answer: the parser still does
    assert first_host("gpu[01-02]", "SLURM_JOB_NODELIST") == "gpu01"


def _job(**variables: str) -> dict[str, str]:
    """A SLURM task's environment: two nodes, this one the second, eight GPUs each."""
    base = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1", "SLURM_GPUS_ON_NODE": "8",
            "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NODELIST": "gpu[07-08]", "PATH": "/nonexistent"}  # fmt: skip
    return {**base, **variables}


def test_outside_slurm_nothing_is_derived() -> None:
    assert slurm_allocation({"PATH": "/usr/bin"}) is None
    plan = plan_processes(LaunchRequest(), "cpu", {"PATH": "/usr/bin"})
    assert (plan.nnodes, plan.node_rank, plan.nproc_per_node, plan.master_addr) == (1, 0, 1, "127.0.0.1")
    assert not plan.needs_launcher


def test_the_plan_comes_from_the_allocation() -> None:
    allocation = slurm_allocation(_job())
    assert allocation is not None
    assert (allocation.nnodes.value, allocation.node_rank.value, allocation.master_addr) == (2, 1, "gpu07")
    assert allocation.nproc_per_node is not None and allocation.nproc_per_node.value == 8
    assert allocation.master_port == 20000 + 4242
    # on CPU the GPUs do not count: processes per node come from SLURM_NTASKS_PER_NODE
    plan = plan_processes(LaunchRequest(), "cpu", _job(SLURM_NTASKS_PER_NODE="2"), rendezvous_timeout=60)
    assert (plan.nnodes, plan.node_rank, plan.nproc_per_node, plan.master_addr) == (2, 1, 2, "gpu07")
    assert (plan.master_port, plan.rendezvous_timeout, plan.world_size) == (24242, 60, 4)
    # SLURM_NNODES when SLURM_JOB_NUM_NODES is missing; one process when SLURM names none
    older = _job(SLURM_NNODES="3", SLURM_NODEID="2", SLURM_JOB_NODELIST="c[1-3]")
    del older["SLURM_JOB_NUM_NODES"], older["SLURM_NTASKS_PER_NODE"]
    plan = plan_processes(LaunchRequest(), "cpu", older)
    assert (plan.nnodes, plan.node_rank, plan.nproc_per_node, plan.master_addr) == (3, 2, 1, "c1")


def test_flags_win_where_slurm_only_suggests() -> None:
    request = LaunchRequest(nproc=3, master_addr="gpu07-ib", master_port=31000, max_restarts=2)
    plan = plan_processes(request, "cpu", _job())
    assert (plan.nproc_per_node, plan.master_addr, plan.master_port, plan.max_restarts) == (3, "gpu07-ib", 31000, 2)
    agreeing = plan_processes(LaunchRequest(nnodes=2, node_rank=1), "cpu", _job())
    assert (agreeing.nnodes, agreeing.node_rank) == (2, 1)


@pytest.mark.parametrize(
    ("request_flags", "message"),
    [(LaunchRequest(nnodes=4), r"--nnodes 4 but this SLURM job says SLURM_JOB_NUM_NODES=2 \(leave --nnodes out"),
     (LaunchRequest(node_rank=0), r"--node-rank 0 but this SLURM job says SLURM_NODEID=1 \(leave --node-rank out")],
)  # fmt: skip
def test_flags_that_contradict_the_allocation_are_one_clear_error(request_flags: LaunchRequest, message: str) -> None:
    with pytest.raises(SimrecError, match=message):
        plan_processes(request_flags, "cpu", _job())


def test_several_srun_tasks_per_node_are_refused() -> None:
    with pytest.raises(SimrecError, match=r"srun started 16 tasks on 2 node\(s\).*--ntasks-per-node=1"):
        plan_processes(LaunchRequest(), "cpu", _job(SLURM_STEP_NUM_TASKS="16", SLURM_STEP_NUM_NODES="2"))
    plan = plan_processes(LaunchRequest(), "cpu", _job(SLURM_STEP_NUM_TASKS="2", SLURM_STEP_NUM_NODES="2"))
    assert plan.nnodes == 2


def test_broken_slurm_variables_are_named() -> None:
    with pytest.raises(SimrecError, match=r"SLURM variable SLURM_NODEID: expected a whole number .*, found 'first'"):
        slurm_allocation(_job(SLURM_NODEID="first"))
    no_list = _job()
    del no_list["SLURM_JOB_NODELIST"]
    with pytest.raises(SimrecError, match="SLURM_JOB_NODELIST is not"):
        slurm_allocation(no_list)
    with pytest.raises(SimrecError, match=r"SLURM_JOB_NODELIST: .*runs backwards"):
        slurm_allocation(_job(SLURM_JOB_NODELIST="gpu[08-07]"))


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [("SLURM_NODEID", "2abc", r"expected a whole number \(digits only\), found '2abc'"),
     ("SLURM_NODEID", "-1", r"expected a whole number \(digits only\), found '-1'"),
     ("SLURM_JOB_NUM_NODES", "-1", r"expected a whole number \(digits only\), found '-1'"),
     ("SLURM_JOB_NUM_NODES", "1" + "0" * 30, r"expected a number of at most 100,000, found '1000"),
     ("SLURM_JOB_NUM_NODES", "250000", r"expected a number of at most 100,000, found '250000'"),
     ("SLURM_GPUS_ON_NODE", "8 GPUs", r"expected a whole number"),
     ("SLURM_NTASKS_PER_NODE", "4(x2", r"expected a number of tasks such as 4 or 4\(x2\), found '4\(x2'"),
     ("SLURM_JOB_ID", "42a", r"expected a whole number \(digits only\), found '42a'")],
)  # fmt: skip
def test_slurm_integers_are_read_strictly(variable: str, value: str, problem: str) -> None:
    """Issue 22 #31: `2abc` was read as 2, `-1` was called "not a number", and a huge node count was blamed on the
    batch size."""
    with pytest.raises(SimrecError, match=rf"^this SLURM job: SLURM variable {variable}: {problem}"):
        slurm_allocation(_job(**{variable: value}))


def test_slurm_task_counts_in_slurm_notation() -> None:
    for tasks in ("2", "2(x2)", "2(x1),1"):
        allocation = slurm_allocation(_job(SLURM_NTASKS_PER_NODE=tasks), use_gpus=False)
        assert allocation is not None and allocation.nproc_per_node == SlurmValue(2, "SLURM_NTASKS_PER_NODE")


@pytest.mark.parametrize(
    "nodelist", ["bad!host", "node 1,node2", "-lead", "a" * 300, "n..1", "n[1-2]$x", "x" * 64 + ".example.org"]
)
def test_a_first_host_that_is_no_host_name_is_refused(nodelist: str) -> None:
    """Issue 22 #7: torchrun was started with it and failed with a traceback; #28: a long one is quoted short."""
    with pytest.raises(SimrecError, match=r"^the first host of SLURM_JOB_NODELIST: expected a host name") as error:
        slurm_allocation(_job(SLURM_JOB_NODELIST=nodelist))
    assert len(error.value.message) < 300


@pytest.mark.parametrize("host", ["gpu07", "10.1.2.3", "::1", "node-7.cluster.example.org", "login_1"])
def test_real_host_names_and_addresses_are_accepted(host: str) -> None:
    allocation = slurm_allocation(_job(SLURM_JOB_NODELIST=f"{host},other"))
    assert allocation is not None and allocation.master_addr == host
    assert plan_processes(LaunchRequest(nnodes=2, node_rank=1, master_addr=host), "cpu").master_addr == host


@pytest.mark.parametrize("address", ["bad host", "a" * 300, "node;rm -rf /", "[::1]"])
def test_a_master_addr_that_is_no_host_is_refused(address: str) -> None:
    """Issue 22 #7 for --master-addr."""
    with pytest.raises(SimrecError, match=r"^--master-addr: expected a host name .*, found '") as error:
        plan_processes(LaunchRequest(nnodes=2, node_rank=1, master_addr=address), "cpu")
    assert len(error.value.message) < 300
