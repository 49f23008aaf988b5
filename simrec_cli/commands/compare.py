"""`simrec compare`: runs side by side, as the table of an ablation study."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from simrec_cli.commands.common import guarded
from simrec_cli.console import console, error_console, fitted_table, print_table
from simrec_cli.errors import EXIT_SOME_FAILED, SimrecError, one_line


@guarded
def command(
    runs: list[Path] = typer.Argument(
        ..., help="Run directories (their best.pth), checkpoint files or exported files (.onnx, OpenVINO .xml)."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables (for a paper or a README)."),
    csv_output: bool = typer.Option(False, "--csv", help="Print CSV: one row per run, differing settings as columns."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the val Acc@0.5 curves of all runs to this PNG."),
) -> None:
    """Compare runs: best epoch, Acc@0.5 per split, its evaluation protocol, parameters, and every setting in which
    they differ.

    Acc@0.5 of the validation split comes from each best checkpoint; other splits appear once
    `simrec eval RUN/best.pth --report RUN/SOMEWHERE` has written a report inside the run directory. An exported
    file's accuracies are those of its own reports (`simrec eval RUN/best.xml --report RUN/openvino`): the model as
    deployed, beside the checkpoint it came from.
    A path that cannot be read is named in one line (exit status 1) and the others are still compared.

    Examples:

      simrec compare runs/baseline runs/no-ema runs/giou

      simrec compare runs/* --markdown --plot curves.png
    """
    from simrec_cli.report.compare import compare_runs, plot_curves, result_rows, setting_rows, to_csv, to_markdown

    if markdown and csv_output:
        raise SimrecError("--markdown and --csv both print the table", "choose one of them")
    from simrec_cli.storage.outputs import OutputFile, Outputs

    plot_target = OutputFile(plot, "plot", "--plot") if plot is not None else None
    outputs = Outputs(plot_target)  # first: a folder (such as "" or "."), a device or a FIFO is named as such
    if plot is not None and plot.suffix.lower() != ".png":
        raise SimrecError(f"--plot {plot} must end in .png", f"write it to {plot.with_suffix('.png')}")
    comparison = compare_runs(runs)
    for problem in comparison.problems:
        error_console.print(f"[yellow]skipped:[/] {escape(one_line(problem))}", highlight=False, soft_wrap=True)
    if not comparison.runs:
        raise SimrecError("none of the paths could be compared", "give run directories or checkpoints (best.pth)")
    if len(comparison.protocols) > 1:
        error_console.print(
            f"[yellow]note:[/] the accuracies were counted under different evaluation protocols "
            f"({', '.join(comparison.protocols)}) and are not comparable; evaluate every run with the same "
            "`simrec eval --protocol` (into a report inside its run directory)",
            highlight=False,
            soft_wrap=True,
        )
    if markdown:
        console.print(to_markdown(comparison), end="", markup=False, soft_wrap=True)
    elif csv_output:
        console.print(to_csv(comparison), end="", markup=False, soft_wrap=True)
    else:
        header, rows = result_rows(comparison)
        print_table(fitted_table("runs", header, rows, cut=["run"], left=["dataset", "protocol"]))
        header, rows = setting_rows(comparison)
        if rows:
            print_table(fitted_table("settings that differ", header, rows, cut=header))
        else:
            console.print("The runs have the same settings.")
    if plot_target is not None:
        png, missing = plot_curves(comparison)
        with outputs:
            outputs.write(plot_target, lambda handle: handle.write(png), binary=True)
        for name in missing:
            error_console.print(
                f"[yellow]no curve:[/] {name} has no readable metrics.csv with val Acc@0.5",
                highlight=False,
                soft_wrap=True,
            )
        error_console.print(f"curves written to {plot}", markup=False, highlight=False, soft_wrap=True)
    if comparison.problems:
        raise typer.Exit(EXIT_SOME_FAILED)
