"""`simrec config show` and `simrec presets`: look at settings without running anything."""

from __future__ import annotations

import typer
from rich.table import Table

from simrec_cli.commands.common import OVERRIDES_ARGUMENT, PRESET_OPTION, guarded
from simrec_cli.console import console

config_app = typer.Typer(help="Inspect the resolved settings.", no_args_is_help=True)


@config_app.command("show")
@guarded
def show(preset: str | None = PRESET_OPTION, overrides: list[str] | None = OVERRIDES_ARGUMENT) -> None:
    """Print the fully resolved settings as YAML.

    Example: simrec config show --preset refcoco-scratch train.sync_bn.enabled=true train.batch_size=64
    """
    from simrec_cli.settings import load_settings, settings_to_yaml

    settings = load_settings(preset, overrides or [])
    console.print(settings_to_yaml(settings), end="", markup=False, soft_wrap=True)


@guarded
def presets() -> None:
    """List the packaged presets with a one-line description each.

    Example: simrec presets
    """
    from simrec_cli.settings import packaged_presets, preset_description

    table = Table(title="simrec presets")
    table.add_column("preset", style="bold cyan", no_wrap=True)
    table.add_column("description")
    for name, path in packaged_presets().items():
        table.add_row(name, preset_description(path))
    console.print(table)
