"""`simrec benchmark`: every export format and precision of a checkpoint, evaluated and timed on this machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from simrec_cli.commands.common import guarded
from simrec_cli.console import RichReporter, console, fitted_table, print_table
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.predict.defaults import BENCHMARK_FORMATS


@guarded
def command(
    checkpoint: Path = typer.Argument(..., help="A best.pth/last.pth written by `simrec train`.", show_default=False),
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: the run's)."),
    split: str = typer.Option("val", "--split", help="The split every candidate is evaluated on."),
    formats: list[str] | None = typer.Option(
        None, "--formats", help="Formats to benchmark: pytorch, onnx, openvino (repeat or comma-separate; default all)."
    ),
    batch: int = typer.Option(8, "--batch", min=1, help="Batch size of the throughput figure (img/s)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    csv_file: Path | None = typer.Option(None, "--csv", help="Also write the results to this CSV file."),
    keep: Path | None = typer.Option(None, "--keep", help="Keep the exported files in this folder (default: removed)."),
) -> None:
    """Export CHECKPOINT to every available format and precision, evaluate each on --split, and time it.

    One row per candidate: file size, Acc@0.5 and its difference from PyTorch fp32, the share of boxes that overlap
    fp32's with IoU >= 0.99, whether it keeps the accuracy gate (within 0.5 points, 97 % of boxes), milliseconds
    per image at batch 1 and images per second at --batch; the CPU's flags (or the GPU's name) are printed with it.
    A format whose runtime is not installed is a row saying how to install it.

    Example:

      simrec benchmark runs/demo/best.pth --data-root data-demo --json bench.json
    """
    parts = [part.strip() for item in formats or BENCHMARK_FORMATS for part in item.split(",")]
    chosen = tuple(dict.fromkeys(part for part in parts if part))
    unknown = [name for name in chosen if name not in BENCHMARK_FORMATS]
    if unknown:
        raise SimrecError(f"unknown format {quoted(unknown[0])} (--formats)", f"use {', '.join(BENCHMARK_FORMATS)}")
    require_checkpoint_file(checkpoint)  # before the seconds of importing torch

    from simrec_cli.benchmark.kept import kept_output, mark_kept
    from simrec_cli.storage.outputs import OutputFile, Outputs

    json_target = OutputFile(json_file, "benchmark results", "--json") if json_file is not None else None
    csv_target = OutputFile(csv_file, "benchmark results", "--csv") if csv_file is not None else None
    kept_target = kept_output(keep) if keep is not None else None
    outputs = Outputs(json_target, csv_target, kept_target, reads=[checkpoint])  # checked before any export

    from simrec_cli.benchmark.runner import run_benchmark
    from simrec_cli.benchmark.table import machine_line, table_columns, table_row, to_csv

    with outputs, tempfile.TemporaryDirectory(prefix="simrec-benchmark-") as scratch:
        kept = outputs.folder(kept_target) if kept_target is not None else None
        result = run_benchmark(checkpoint, workdir=kept.path if kept is not None else Path(scratch), kept_in=keep,
                               data_root=data_root, split=split, formats=chosen, batch=batch, device=device,
                               reporter=RichReporter())  # fmt: skip
        outputs.add_reads(*result.read_files)  # known now: the data the candidates were evaluated on
        title = f"{checkpoint}: {result.split}, {result.expressions} expressions"
        print_table(fitted_table(title, table_columns(batch), [table_row(row) for row in result.rows],
                                   cut=["note"], left=["format", "runtime", "precision", "note"]))  # fmt: skip
        console.print(machine_line(result), markup=False)
        if kept is not None:
            mark_kept(kept, checkpoint, result.as_dict())
        if json_target is not None:
            outputs.write_json(json_target, result.as_dict())
        if csv_target is not None:
            text = to_csv(result)
            outputs.write(csv_target, lambda handle: handle.write(text))
