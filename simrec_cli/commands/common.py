"""Pieces every command shares: the error guard, the shared options and the torchrun relaunch.

Command modules import the heavy core (torch, the models, the data pipeline) inside their functions, so
`simrec --help` and `simrec config show` start instantly.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.markup import escape

from simrec_cli.commands.signals import sigterm_as_interrupt
from simrec_cli.console import error_console, state
from simrec_cli.errors import ERRORS_DIR_ENV, EXIT_INTERRUPTED, EXIT_USER_ERROR, SimrecError, one_line
from simrec_cli.interruption import errors_after_a_stop_are_the_stop
from simrec_cli.storage.atomic import remove_unfinished_temporaries

if TYPE_CHECKING:
    from simrec_cli.engine.launcher import LaunchPlan

P = ParamSpec("P")
R = TypeVar("R")

PRESET_OPTION = typer.Option(
    None, "--preset", "-p", help="Packaged preset name (see `simrec presets`) or path to a YAML file."
)
OVERRIDES_ARGUMENT = typer.Argument(
    None, help="Dotted overrides, e.g. train.batch_size=64 train.sync_bn.enabled=true", show_default=False
)
ORIGINAL_OVERRIDES_ARGUMENT = typer.Argument(
    None,
    help="Dotted overrides of the preset for an original SimREC checkpoint, where its config differed, e.g. "
    "model.language_encoder.depth=3 dataset.ann_path=anns/refcoco.json",
    show_default=False,
)


def report_error(error: SimrecError) -> None:
    """Print a user error as one red line: what is wrong, then how to fix it."""
    hint = f" [dim]({escape(one_line(error.hint))})[/]" if error.hint else ""
    error_console.print(f"[bold red]error:[/] {escape(one_line(error.message))}{hint}", soft_wrap=True)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command so user errors become one line and exit code 2 (tracebacks only with --debug).

    A file-system error on a named path that the command did not foresee (a file name too long for the file
    system, a symbolic link loop) is also the user's to fix: one line naming the path, exit code 2.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with sigterm_as_interrupt(), errors_after_a_stop_are_the_stop():
                return command(*args, **kwargs)
        except (SimrecError, OSError) as error:
            if state.debug or (isinstance(error, OSError) and error.filename is None):
                raise
            failure = error if isinstance(error, SimrecError) else _path_failure(error)
            if not _leave_for_launcher(failure):
                report_error(failure)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            remove_unfinished_temporaries()
            if state.debug:
                raise
            if os.environ.get("RANK", "0") == "0":  # under torchrun, one line for all ranks
                error_console.print("[bold red]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


DEVICE_OPTION = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda.")
PRECISION_OPTION = typer.Option(
    "auto",
    "--precision",
    help="auto, fp32 or bf16. auto: bf16 where the CPU has avx512_bf16/AMX or the GPU supports it, else fp32.",
)
RUNTIME_OPTION = typer.Option(
    "auto",
    "--runtime",
    help="auto, torch, onnxruntime or openvino. auto: the fastest this machine runs for the file (measured once per "
    "model and machine, then remembered); torch runs checkpoints, onnxruntime .onnx files, openvino all three kinds.",
)
HALF_OPTION = typer.Option(False, "--half", help="Same as --precision bf16 (kept for old scripts).", hidden=True)
GPUS_OPTION = typer.Option(None, "--gpus", help="Number of GPUs on this node; N > 1 relaunches under torchrun.")
NPROC_OPTION = typer.Option(None, "--nproc", help="Number of CPU processes (gloo), e.g. --device cpu --nproc 2.")
NNODES_OPTION = typer.Option(
    None, "--nnodes", help="Number of nodes for multi-node training \\[default: 1, or the SLURM job's]."
)
NODE_RANK_OPTION = typer.Option(
    None, "--node-rank", help="Rank of this node, 0 .. nnodes-1 \\[default: 0, or SLURM_NODEID]."
)
MASTER_ADDR_OPTION = typer.Option(
    None, "--master-addr", help="Address of node 0 \\[default: 127.0.0.1, or the first host of the SLURM job]."
)
MASTER_PORT_OPTION = typer.Option(
    None, "--master-port", help="Free TCP port on node 0 \\[default: 29500; under SLURM 20000 + job id mod 10000]."
)
MAX_RESTARTS_OPTION = typer.Option(
    0, "--max-restarts", help="Times torchrun restarts the workers after one fails; they resume from last.pth."
)


def chosen_precision(precision: str, half: bool) -> str:
    """--half is the old spelling of --precision bf16; both at once must agree."""
    if not half:
        return precision
    if precision not in ("auto", "bf16"):
        raise SimrecError(f"--half and --precision {precision} contradict each other", "give only --precision")
    return "bf16"


def global_flags() -> list[str]:
    """The flags given before the verb, so a relaunched process behaves the same."""
    return [*(["--debug"] if state.debug else []), *(["--quiet"] if state.quiet else [])]


def run_under_torchrun(plan: LaunchPlan, verb_args: list[str], keep_fds: tuple[int, ...] = ()) -> None:
    """Start the processes of `plan` running `simrec <verb_args>` and exit with their status.

    A user error is printed once, here, whichever and however many processes met it. `keep_fds` stay open in
    torchrun (the run lock's descriptor, so the lock lives as long as torchrun does).
    """
    from simrec_cli.engine.launcher import relaunch

    with tempfile.TemporaryDirectory(prefix="simrec-errors-") as folder:
        code = relaunch(plan, [*global_flags(), *verb_args], errors_dir=Path(folder), keep_fds=keep_fds)
        reported = sorted(Path(folder).iterdir())
        if reported:
            report_error(SimrecError(**json.loads(reported[0].read_text())))
            code = EXIT_USER_ERROR
    raise typer.Exit(code)


def _path_failure(error: OSError) -> SimrecError:
    from simrec_cli.storage.failures import path_failure

    return path_failure(error)


def _leave_for_launcher(error: SimrecError) -> bool:
    """Under `run_under_torchrun`, write the error where the launcher reads it (True), instead of printing it."""
    folder = os.environ.get(ERRORS_DIR_ENV)
    if not folder:
        return False
    name = f"{time.monotonic_ns():020d}-rank{os.environ.get('RANK', '0')}.json"
    with contextlib.suppress(OSError):
        (Path(folder) / name).write_text(json.dumps({"message": error.message, "hint": error.hint}))
        return True
    return False
