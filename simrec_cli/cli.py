"""The `simrec` command: global flags and the list of verbs.

A verb's module is imported only when that verb runs (or when `--help` lists them all), so `simrec predict`
does not pay for importing the training, data preparation or export commands. To add a verb, add one line to
`VERBS`: its name and where its function (or, for a verb with sub-verbs, its Typer app) lives.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

from simrec_cli import __version__
from simrec_cli.console import state

# verb -> "module:attribute"; the attribute is a command function or a typer.Typer with sub-verbs.
VERBS: dict[str, str] = {
    "prepare-data": "simrec_cli.commands.prepare_data:command",
    "train": "simrec_cli.commands.train:command",
    "resume": "simrec_cli.commands.resume:command",
    "eval": "simrec_cli.commands.eval:command",
    "predict": "simrec_cli.commands.predict:command",
    "export": "simrec_cli.commands.export:command",
    "import": "simrec_cli.commands.import_checkpoint:command",
    "compare": "simrec_cli.commands.compare:command",
    "benchmark": "simrec_cli.commands.benchmark:command",
    "serve": "simrec_cli.commands.serve:command",
    "presets": "simrec_cli.commands.config:presets",
    "config": "simrec_cli.commands.config:config_app",
}


def load_verb(name: str, target: str) -> Any:
    """The click command for verb `name`, built from the object `target` ("module:attribute") names."""
    module_name, attribute = target.split(":")
    found = getattr(importlib.import_module(module_name), attribute)
    if isinstance(found, typer.Typer):
        command: Any = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyVerbs(MutableMapping):
    """The group's name -> command table: every verb is listed, but its module is imported on first lookup."""

    def __init__(self, loaded: MutableMapping[str, Any], verbs: dict[str, str]) -> None:
        self._loaded = dict(loaded)
        self._verbs = dict(verbs)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in self._verbs:
                raise KeyError(name)
            self._loaded[name] = load_verb(name, self._verbs[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._verbs.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._verbs
        yield from (name for name in self._loaded if name not in self._verbs)

    def __len__(self) -> int:
        return len(set(self._verbs) | set(self._loaded))


class LazyGroup(TyperGroup):
    """Typer's group with the verbs of `VERBS` looked up lazily (listing order = `VERBS` order)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyVerbs(self.commands, VERBS)


app = typer.Typer(
    name="simrec",
    cls=LazyGroup,
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


def main() -> None:
    """Entry point of the `simrec` console script."""
    app()
