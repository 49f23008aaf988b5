"""Relaunch the current `simrec` command under torchrun for several processes or nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch

from simrec_cli.engine.distributed import EXPECTED_NODES_VARIABLE
from simrec_cli.engine.slurm import SlurmValue, slurm_allocation
from simrec_cli.errors import ERRORS_DIR_ENV, SimrecError
from simrec_cli.schemas.slurm import HOST

DEFAULT_MASTER_ADDR = "127.0.0.1"
DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class LaunchRequest:
    """The launch flags as given on the command line; None where a flag was left out."""

    gpus: int | None = None
    nproc: int | None = None
    nnodes: int | None = None
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int | None = None
    max_restarts: int = 0


@dataclass(frozen=True)
class LaunchPlan:
    """How many processes per node, how the nodes meet, and how often torchrun may restart failed workers."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = DEFAULT_MASTER_ADDR
    master_port: int = DEFAULT_MASTER_PORT
    max_restarts: int = 0
    rendezvous_timeout: int = 300

    @property
    def needs_launcher(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1 or self.max_restarts > 0

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


def _check_gpus(count: int, device: str, where: str) -> None:
    """`where` (the flag or SLURM variable that asked for `count` GPU processes) must fit the visible GPUs."""
    if device == "cpu" or not torch.cuda.is_available():
        raise SimrecError(
            f"{where} needs CUDA GPUs and none is available", "on CPU run several processes with --device cpu --nproc N"
        )
    if count > torch.cuda.device_count():
        raise SimrecError(f"{where} but only {torch.cuda.device_count()} GPU(s) are visible")


def _agree(flag: int | None, flag_name: str, value: SlurmValue | None, fix: str) -> int | None:
    """The flag, or SLURM's value; both given and different is a mistake the user must settle."""
    if value is None:
        return flag
    if flag is not None and flag != value.value:
        raise SimrecError(f"{flag_name} {flag} but this SLURM job says {value}", fix)
    return int(value.value)


def plan_processes(
    request: LaunchRequest,
    device: str,
    environ: Mapping[str, str] | None = None,
    rendezvous_timeout: int = LaunchPlan.rendezvous_timeout,
) -> LaunchPlan:
    """Check the launch flags, fill what they leave out from SLURM's `environ` (if given), and make a plan.

    Flags win where SLURM only suggests (processes per node, master address and port). The node count and this
    node's rank are facts of the allocation: a flag that contradicts them is refused.
    """
    for flag, value in (("--gpus", request.gpus), ("--nproc", request.nproc), ("--nnodes", request.nnodes)):
        if value is not None and value < 1:  # 0 would otherwise fall back to one process without a word
            raise SimrecError(f"{flag} {value} is not a number of processes", f"give {flag} 1 or more")
    if request.gpus is not None and request.nproc is not None:
        raise SimrecError("--gpus and --nproc were both given", "use --gpus N on GPUs, --device cpu --nproc N on CPU")
    if request.master_port is not None and not 1 <= request.master_port <= 65535:
        raise SimrecError(f"--master-port {request.master_port} is not a TCP port", "give a free port, 1-65535")
    if request.master_addr is not None and not request.master_addr.strip():
        raise SimrecError("--master-addr is empty", "give the address of node 0, or leave the flag out")
    if request.master_addr is not None:
        HOST.check(request.master_addr.strip(), "--master-addr")
    if request.gpus is not None:
        _check_gpus(request.gpus, device, f"--gpus {request.gpus}")
    use_gpus = device != "cpu" and torch.cuda.is_available()
    slurm = slurm_allocation(environ, use_gpus=use_gpus) if environ is not None else None
    nnodes, node_rank = request.nnodes, request.node_rank
    count = request.gpus or request.nproc
    master_addr, master_port = request.master_addr, request.master_port
    # What the node-rank check names: the flag, or the SLURM variable the value came from.
    nodes_source, rank_source = "--nnodes", "--node-rank"
    if slurm is not None:
        nodes_source = nodes_source if nnodes is not None else slurm.nnodes.source
        rank_source = rank_source if node_rank is not None else slurm.node_rank.source
        nnodes = _agree(nnodes, "--nnodes", slurm.nnodes, "leave --nnodes out in a SLURM job, or ask sbatch for more")
        node_rank = _agree(node_rank, "--node-rank", slurm.node_rank,
                           "leave --node-rank out in a SLURM job: every srun task knows its node")  # fmt: skip
        if count is None and slurm.nproc_per_node is not None:
            count = int(slurm.nproc_per_node.value)
            if use_gpus and slurm.nproc_per_node.source == "SLURM_GPUS_ON_NODE":
                _check_gpus(count, device, str(slurm.nproc_per_node))
        master_addr = master_addr or slurm.master_addr
        master_port = master_port or slurm.master_port
    plan = LaunchPlan(
        nproc_per_node=count or 1,
        nnodes=nnodes or 1,
        node_rank=node_rank or 0,
        master_addr=master_addr or DEFAULT_MASTER_ADDR,
        master_port=master_port or DEFAULT_MASTER_PORT,
        max_restarts=request.max_restarts,
        rendezvous_timeout=rendezvous_timeout,
    )
    if not 0 <= plan.node_rank < plan.nnodes:
        raise SimrecError(
            f"{rank_source} {plan.node_rank} is not in [0, {nodes_source} {plan.nnodes})", "number the nodes from 0"
        )
    if plan.max_restarts < 0:
        raise SimrecError(f"--max-restarts {plan.max_restarts} is negative", "use 0 (no restarts) or more")
    return plan


def relaunch(
    plan: LaunchPlan, cli_args: Sequence[str], errors_dir: Path | None = None, keep_fds: Sequence[int] = ()
) -> int:
    """Run `python -m simrec_cli <cli_args>` under torchrun and return its exit code (130 when it was stopped).

    With `errors_dir`, the processes leave their user errors there (see ERRORS_DIR_ENV) instead of printing them,
    so the caller can report the first one once. `keep_fds` are handed to torchrun open (a lock's descriptor).
    """
    command = [sys.executable, "-m", "simrec_cli.engine.torchrun_main", f"--nproc-per-node={plan.nproc_per_node}",
               f"--max-restarts={plan.max_restarts}"]  # fmt: skip
    if plan.nnodes == 1:
        command += ["--standalone"]
    else:
        command += [
            f"--nnodes={plan.nnodes}",
            f"--node-rank={plan.node_rank}",
            f"--master-addr={plan.master_addr}",
            f"--master-port={plan.master_port}",
            f"--rdzv-conf=timeout={plan.rendezvous_timeout}",
        ]
    command += ["-m", "simrec_cli", *cli_args]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        EXPECTED_NODES_VARIABLE: str(plan.nnodes),
        **({ERRORS_DIR_ENV: str(errors_dir)} if errors_dir is not None else {}),
    }
    # torchrun gets its own session, so Ctrl-C and `kill` reach it once, through this process: torchrun then stops
    # its workers with SIGTERM and waits for them, and no worker outlives this command.
    process = subprocess.Popen(command, env=env, start_new_session=True, pass_fds=tuple(keep_fds))

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
