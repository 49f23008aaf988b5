"""The `simrec` command: global flags and the list of verbs."""

from __future__ import annotations

import typer

from simrec_cli import __version__
from simrec_cli.commands import compare, config, eval, export, predict, prepare_data, resume, train
from simrec_cli.console import state

app = typer.Typer(
    name="simrec",
    help="Referring expression comprehension and segmentation: prepare data, train, evaluate, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"simrec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print results only: no progress or info lines."),
) -> None:
    """simrec: one command for SimREC and MCN."""
    state.debug = debug
    state.quiet = quiet


app.command("prepare-data")(prepare_data.command)
app.command("train")(train.command)
app.command("resume")(resume.command)
app.command("eval")(eval.command)
app.command("predict")(predict.command)
app.command("export")(export.command)
app.command("compare")(compare.command)
app.add_typer(config.config_app, name="config")
app.command("presets")(config.presets)


def main() -> None:
    """Entry point of the `simrec` console script."""
    app()
