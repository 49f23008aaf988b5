"""Pieces every command shares: the error guard and the settings options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from simrec_cli.console import error_console, state
from simrec_cli.errors import SimrecError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

PRESET_OPTION = typer.Option(
    None, "--preset", "-p", help="Packaged preset name (see `simrec presets`) or path to a YAML file."
)
OVERRIDES_ARGUMENT = typer.Argument(
    None, help="Dotted overrides, e.g. train.batch_size=64 train.sync_bn.enabled=true", show_default=False
)


def report_error(error: SimrecError) -> None:
    """Print a user error as one red line: what is wrong, then how to fix it."""
    hint = f" [dim]({error.hint})[/]" if error.hint else ""
    error_console.print(f"[bold red]error:[/] {error.message}{hint}", soft_wrap=True)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command so user errors become one line and exit code 2 (tracebacks only with --debug)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SimrecError as error:
            if state.debug:
                raise
            report_error(error)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            if state.debug:
                raise
            error_console.print("[bold red]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
