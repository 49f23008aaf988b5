"""`simrec resume`: continue a run from its last checkpoint with the settings it was started with."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import (
    DEVICE_OPTION,
    GPUS_OPTION,
    MASTER_ADDR_OPTION,
    MASTER_PORT_OPTION,
    MAX_RESTARTS_OPTION,
    NNODES_OPTION,
    NODE_RANK_OPTION,
    NPROC_OPTION,
    OVERRIDES_ARGUMENT,
    guarded,
)


@guarded
def command(
    run: Path = typer.Argument(..., help="Run directory (uses its last.pth) or a checkpoint file."),
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    device: str = DEVICE_OPTION,
    gpus: int | None = GPUS_OPTION,
    nproc: int | None = NPROC_OPTION,
    nnodes: int | None = NNODES_OPTION,
    node_rank: int | None = NODE_RANK_OPTION,
    master_addr: str | None = MASTER_ADDR_OPTION,
    master_port: int | None = MASTER_PORT_OPTION,
    max_restarts: int = MAX_RESTARTS_OPTION,
) -> None:
    """Resume training where it stopped; only safe settings (e.g. train.epochs) may change.

    Examples:

      simrec resume runs/train3

      simrec resume runs/train3/last.pth train.epochs=40 --gpus 4
    """
    from simrec_cli.commands.run_training import train_here_or_relaunch
    from simrec_cli.engine.checkpoint import RESUME_ENTRIES, checkpoint_settings, read_checkpoint, require_entries
    from simrec_cli.engine.launcher import LaunchRequest
    from simrec_cli.engine.resume import checkpoint_in, merge_for_resume
    from simrec_cli.settings import apply_overrides, settings_from_dict, settings_to_dict

    checkpoint = checkpoint_in(run)
    payload = read_checkpoint(checkpoint)
    require_entries(payload, RESUME_ENTRIES, checkpoint)  # a checkpoint with nothing to resume, before its folder
    stored = checkpoint_settings(payload, checkpoint)
    overrides = list(overrides or [])
    if device != "auto":
        overrides.append(f"train.device={device}")
    if not any(item.startswith("train.output_dir=") for item in overrides):
        overrides.append(f"train.output_dir={checkpoint.parent}")
    requested = settings_from_dict(apply_overrides(settings_to_dict(stored), overrides), "resume overrides")
    settings = merge_for_resume(stored, requested, checkpoint)
    request = LaunchRequest(gpus, nproc, nnodes, node_rank, master_addr, master_port, max_restarts)
    train_here_or_relaunch(settings, request, ["resume", str(checkpoint), *overrides], resume=checkpoint)
