"""What `train` and `resume` share once the process (or torchrun rank) is running."""

from __future__ import annotations

import os
from pathlib import Path

from simrec_cli.commands.common import run_under_torchrun
from simrec_cli.console import RichReporter, console, state
from simrec_cli.engine.distributed import joined_world, launched_by_torchrun
from simrec_cli.engine.launcher import LaunchRequest, plan_processes
from simrec_cli.engine.run_lock import lock_for_this_process
from simrec_cli.engine.rundir import BEST, check_run_dir, next_run_dir
from simrec_cli.engine.trainer import Trainer, TrainResult
from simrec_cli.settings import Settings


def train_here_or_relaunch(
    settings: Settings, request: LaunchRequest, verb_args: list[str], resume: Path | None = None
) -> None:
    """Train in this process, or start the processes `request` asks for, running `simrec <verb_args>`.

    The plan fills what the flags leave out from SLURM's environment; under torchrun the process just trains.
    The run directory is locked for the whole run (see `engine.run_lock`); without `train.output_dir`, a new
    `runs/train`, `runs/train2`, ... is claimed.
    """
    run_dir = settings.train.output_dir
    if run_dir is not None:
        check_run_dir(run_dir)
    plan = None
    if not launched_by_torchrun():
        plan = plan_processes(request, settings.train.device, os.environ, settings.train.ddp.rendezvous_timeout)
        if plan.needs_launcher:
            settings.check_world_size(plan.world_size)
    with lock_for_this_process(run_dir, plan.node_rank if plan is not None else 0) as lock:
        if run_dir is None:  # the lock claimed a numbered folder; a node without the lock only needs a name
            run_dir = lock.run_dir if lock is not None else next_run_dir(Path("runs"), "train")
            settings.train.output_dir = run_dir
            verb_args = [*verb_args, f"train.output_dir={run_dir}"]
        if plan is not None and plan.needs_launcher:
            run_under_torchrun(plan, verb_args, keep_fds=() if lock is None else (lock.descriptor,))
        print_training_summary(train_in_this_process(settings, resume=resume))


def train_in_this_process(settings: Settings, resume: Path | None = None) -> TrainResult | None:
    """Join the process group (if any), train, leave cleanly; returns the result on rank 0 only."""
    with joined_world(settings.train.device, settings.train.ddp.backend) as world:
        result = Trainer(settings, world, RichReporter(), resume=resume).run()
    return result if world.is_main else None


def print_training_summary(result: TrainResult | None) -> None:
    if result is None or state.quiet:
        return
    console.print(
        f"[bold green]done[/]: best val Acc@0.5 {result.best_acc50:.2f} at epoch {result.best_epoch}; "
        f"run directory {result.run_dir}"
    )
    console.print(f"evaluate it with: simrec eval {result.run_dir / BEST}")
