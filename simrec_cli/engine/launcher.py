"""Relaunch the current `simrec` command under torchrun for several processes or nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

import torch

from simrec_cli.errors import SimrecError


@dataclass(frozen=True)
class LaunchPlan:
    """How many processes per node and how the nodes meet."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def needs_launcher(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1


def plan_processes(gpus: int | None, nproc: int | None, device: str, nnodes: int, node_rank: int,
                   master_addr: str, master_port: int) -> LaunchPlan:  # fmt: skip
    """Check the `--gpus/--nproc/--nnodes` combination and turn it into a plan."""
    if gpus is not None and nproc is not None:
        raise SimrecError("--gpus and --nproc were both given", "use --gpus N on GPUs, --device cpu --nproc N on CPU")
    if gpus is not None:
        if device == "cpu" or not torch.cuda.is_available():
            raise SimrecError(
                f"--gpus {gpus} needs CUDA GPUs and none is available",
                "on CPU run several processes with --device cpu --nproc N",
            )
        if gpus > torch.cuda.device_count():
            raise SimrecError(f"--gpus {gpus} but only {torch.cuda.device_count()} GPU(s) are visible")
    count = gpus or nproc or 1
    if count < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise SimrecError("process counts must be >= 1 and --node-rank in [0, --nnodes)")
    return LaunchPlan(count, nnodes, node_rank, master_addr, master_port)


def relaunch(plan: LaunchPlan, cli_args: Sequence[str]) -> int:
    """Run `python -m simrec_cli <cli_args>` under torchrun and return its exit code (130 when it was stopped)."""
    command = [sys.executable, "-m", "simrec_cli.engine.torchrun_main", f"--nproc-per-node={plan.nproc_per_node}"]
    if plan.nnodes == 1:
        command += ["--standalone"]
    else:
        command += [
            f"--nnodes={plan.nnodes}",
            f"--node-rank={plan.node_rank}",
            f"--master-addr={plan.master_addr}",
            f"--master-port={plan.master_port}",
        ]
    command += ["-m", "simrec_cli", *cli_args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # torchrun gets its own session, so Ctrl-C and `kill` reach it once, through this process: torchrun then stops
    # its workers with SIGTERM and waits for them, and no worker outlives this command.
    process = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
