"""`simrec import`: an original SimREC checkpoint as a self-contained simrec checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import ORIGINAL_OVERRIDES_ARGUMENT, guarded
from simrec_cli.console import RichReporter, console
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file

ORIGINAL_PRESET_OPTION = typer.Option(
    ...,
    "--preset",
    "-p",
    help="The preset the model was trained with (refcoco-scratch, mcn-refcoco-scratch, ... or a YAML file).",
    show_default=False,
)


@guarded
def command(
    checkpoint: Path = typer.Argument(
        ...,
        help="A checkpoint of the original SimREC toolbox (det_best_model.pth, last_checkpoint.pth, ...).",
        show_default=False,
    ),
    overrides: list[str] | None = ORIGINAL_OVERRIDES_ARGUMENT,
    preset: str = ORIGINAL_PRESET_OPTION,
    data_root: Path = typer.Option(
        ..., "--data-root", help="The prepared data whose annotations the model was trained with.", show_default=False
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="The dataset it was trained on (default: the preset's)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The simrec checkpoint to write.", show_default=False),
) -> None:
    """Convert an original SimREC checkpoint (v1 or v2, SimREC or MCN) into a simrec checkpoint that carries its
    settings, its vocabulary (rebuilt from the annotations as the original builds it) and where it came from.

    Examples:

      simrec import det_best_model.pth --preset refcoco-scratch --data-root data -o refcoco.pth

      simrec import mcn_best.pth --preset mcn-refcoco-scratch --data-root data -o mcn.pth
    """
    require_checkpoint_file(checkpoint)
    from simrec_cli.storage.outputs import OutputFile, Outputs

    Outputs(OutputFile(output, "checkpoint", "-o/--output"), reads=[checkpoint])  # checked before any work

    from simrec_cli.importing import import_original, import_settings, write_imported

    reporter = RichReporter()
    settings = import_settings(preset, overrides or [], data_root, dataset)
    imported = import_original(checkpoint, settings, settings_from=f"--preset {preset}", reporter=reporter)
    write_imported(imported, output)
    console.print(
        f"wrote {output}: {settings.model.name} ({settings.model.visual_backbone.name}) on {settings.dataset.name}, "
        f"{len(imported.vocabulary):,} words, from {checkpoint} ({imported.source.layout}, sha256 "
        f"{imported.source.sha256[:12]}...); evaluate it with `simrec eval {output}`",
        markup=False,
        highlight=False,
    )
