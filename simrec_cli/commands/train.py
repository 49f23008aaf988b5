"""`simrec train`: one process, or many under torchrun, from a preset plus overrides."""

from __future__ import annotations

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
    PRESET_OPTION,
    guarded,
)


@guarded
def command(
    preset: str | None = PRESET_OPTION,
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
    """Train a model; the run directory gets config.yaml, log.txt, metrics.csv, last.pth, best.pth, plots.

    Examples:

      simrec train --preset synthetic-tiny dataset.data_root=data train.output_dir=runs/tiny

      simrec train --preset refcoco-scratch --gpus 4 train.batch_size=64
    """
    from simrec_cli.commands.run_training import train_here_or_relaunch
    from simrec_cli.engine.launcher import LaunchRequest
    from simrec_cli.settings import load_settings

    overrides = list(overrides or [])
    if device != "auto":
        overrides.append(f"train.device={device}")
    settings = load_settings(preset, overrides)
    request = LaunchRequest(gpus, nproc, nnodes, node_rank, master_addr, master_port, max_restarts)
    preset_args = ["--preset", str(preset)] if preset is not None else []
    train_here_or_relaunch(settings, request, ["train", *preset_args, *overrides])
