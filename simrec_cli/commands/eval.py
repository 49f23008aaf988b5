"""`simrec eval`: every evaluation split of a dataset from nothing but a checkpoint and the data."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer
from rich.table import Table

from simrec_cli.commands.common import (
    DEVICE_OPTION,
    GPUS_OPTION,
    HALF_OPTION,
    NPROC_OPTION,
    ORIGINAL_OVERRIDES_ARGUMENT,
    PRECISION_OPTION,
    RUNTIME_OPTION,
    chosen_precision,
    guarded,
    run_under_torchrun,
)
from simrec_cli.console import RichReporter, console, fitted_table, print_table
from simrec_cli.engine.checkpoint_paths import require_model_file
from simrec_cli.errors import SimrecError
from simrec_cli.report.folder import DEFAULT_HITS, DEFAULT_MISSES
from simrec_cli.reporting import NullReporter

if TYPE_CHECKING:
    from simrec_cli.engine.metrics import SampleResult, SplitMetrics
    from simrec_cli.engine.protocol import EvaluationProtocol
    from simrec_cli.storage.atomic import Writer


def _results_table(metrics: list[SplitMetrics]) -> Table:
    """One row per metric and one column per split: as narrow as the number of splits, whatever the metrics."""
    rows = [
        ["expressions", *(f"{m.count:,}" for m in metrics)],
        ["Acc@0.5", *(f"{m.acc50:.2f}" for m in metrics)],
        ["Acc@0.75", *(f"{m.acc75:.2f}" for m in metrics)],
        ["mean IoU", *(f"{m.mean_iou:.2f}" for m in metrics)],
    ]
    if metrics and metrics[0].mask_miou is not None:
        rows += [
            ["mask mIoU", *(f"{m.mask_miou:.2f}" for m in metrics)],
            ["mask oIoU", *(f"{m.mask_oiou:.2f}" for m in metrics)],
            *(
                [f"mask P@{key}", *(f"{m.mask_precision[key]:.2f}" for m in metrics)]
                for key in metrics[0].mask_precision
            ),
            ["IE (box/mask)", *(f"{m.inconsistency:.2f}" for m in metrics)],
        ]
    return fitted_table("", ["metric", *(m.split for m in metrics)], rows, left=["metric"])


def _predictions_writer(predictions: dict[str, list[SampleResult]], protocol: EvaluationProtocol) -> Writer:
    """One JSON line per expression, naming the protocol its IoU and hit were counted by."""

    def write(handle: IO[str]) -> None:
        for split, results in predictions.items():
            for result in results:
                line = {"split": split, "protocol": protocol.name, **asdict(result), "hit": protocol.hit(result.iou)}
                handle.write(json.dumps(line, default=str, allow_nan=False) + "\n")

    return write


def _imported_in_memory(
    checkpoint: Path, preset: str | None, overrides: list[str], data_root: Path | None, dataset: str | None
) -> dict | None:
    """With --preset, CHECKPOINT is an original SimREC checkpoint: imported here, in memory (None without)."""
    if preset is None:
        if overrides:
            raise SimrecError(
                f"settings overrides ({overrides[0]}, ...) apply only to an original SimREC checkpoint given with "
                "--preset; a simrec checkpoint carries its settings",
                "drop them, or use --protocol, --dataset and --data-root",
            )
        return None
    from simrec_cli.importing import import_original, import_settings

    settings = import_settings(preset, overrides, data_root, dataset)
    return import_original(checkpoint, settings, settings_from=f"--preset {preset}", reporter=NullReporter()).payload


@guarded
def command(
    checkpoint: Path = typer.Argument(
        ...,
        help="A best.pth or last.pth written by `simrec train`, an .onnx/.xml written by `simrec export`, or with "
        "--preset an original SimREC checkpoint.",
    ),
    overrides: list[str] | None = ORIGINAL_OVERRIDES_ARGUMENT,
    preset: str | None = typer.Option(
        None,
        "--preset",
        "-p",
        help="CHECKPOINT is an original SimREC checkpoint trained with this preset: evaluate it as it is, with the "
        "vocabulary rebuilt from the annotations (`simrec import` writes the same as a file).",
    ),
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: the run's)."),
    dataset: str | None = typer.Option(None, "--dataset", help="Evaluate on another dataset than trained on."),
    split: list[str] | None = typer.Option(None, "--split", help="Split(s) to evaluate (default: all of them)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Evaluation batch size."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Data loader worker processes."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    save_predictions: Path | None = typer.Option(
        None, "--save-predictions", help="Write one JSON line per expression (box, score, IoU)."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write an error analysis here: index.html (pictures in images/) and report.json."
    ),
    gallery_misses: int | None = typer.Option(
        None, "--gallery-misses", min=0, help=f"--report: worst misses drawn per split \\[default: {DEFAULT_MISSES}]."
    ),
    gallery_hits: int | None = typer.Option(
        None, "--gallery-hits", min=0, help=f"--report: typical hits drawn per split \\[default: {DEFAULT_HITS}]."
    ),
    protocol: str | None = typer.Option(
        None,
        "--protocol",
        help="original: the original SimREC's (boxes not clipped, hit = IoU > 0.5, mask pixels > 0); clipped: boxes "
        "clipped to the image, IoU >= 0.5, mask pixels > 0.5 \\[default: the checkpoint's "
        "train.evaluation.protocol, original unless the run chose clipped].",
        show_default=False,
    ),
    device: str = DEVICE_OPTION,
    precision: str = PRECISION_OPTION,
    runtime: str = RUNTIME_OPTION,
    half: bool = HALF_OPTION,
    gpus: int | None = GPUS_OPTION,
    nproc: int | None = NPROC_OPTION,
) -> None:
    """Evaluate a checkpoint or an exported model: Acc@0.5, Acc@0.75, mean IoU (and mask metrics) per split, plus
    speed. An exported file is evaluated as deployed, in its runtime, with the same metrics.

    Examples:

      simrec eval runs/train/best.pth

      simrec eval runs/train/best.pth --data-root /data --split testA --split testB --json metrics.json

      simrec eval runs/train/best.pth --report runs/train/report

      simrec eval det_best_model.pth --preset refcoco-scratch --data-root data

      simrec eval runs/train/best.xml --runtime openvino --precision bf16
    """
    require_model_file(checkpoint)  # before the seconds of importing torch
    for option, value in (("--gallery-misses", gallery_misses), ("--gallery-hits", gallery_hits)):
        if value is not None and report is None:
            raise SimrecError(f"{option} sets the pictures of a report, and no --report was given",
                              f"add --report FOLDER, or leave {option} out")  # fmt: skip

    from simrec_cli.report.folder import report_output
    from simrec_cli.storage.outputs import OutputFile, Outputs

    json_target = OutputFile(json_file, "metrics file", "--json") if json_file is not None else None
    predictions_target = (
        OutputFile(save_predictions, "predictions file", "--save-predictions") if save_predictions is not None else None
    )
    report_target = report_output(report) if report is not None else None
    preset_file = [Path(preset)] if preset is not None else []
    outputs = Outputs(json_target, predictions_target, report_target, reads=[checkpoint, *preset_file])  # checked now

    from simrec_cli.data.prepared import dataset_files
    from simrec_cli.engine.distributed import joined_world, launched_by_torchrun
    from simrec_cli.engine.launcher import LaunchRequest, plan_processes
    from simrec_cli.engine.protocol import protocol_named
    from simrec_cli.model_files.evaluation import evaluate_checkpoint

    precision = chosen_precision(precision, half)
    if protocol is not None:
        protocol_named(protocol)  # an unknown name is refused before any work
    plan = plan_processes(LaunchRequest(gpus=gpus, nproc=nproc), device)
    if plan.needs_launcher and not launched_by_torchrun():
        args = [
            "eval",
            str(checkpoint),
            *(overrides or []),
            "--device",
            device,
            "--precision",
            precision,
            "--runtime",
            runtime,
        ]
        for name, value in [
            ("--data-root", data_root),
            ("--dataset", dataset),
            ("--batch-size", batch_size),
            ("--workers", workers),
            ("--json", json_file),
            ("--save-predictions", save_predictions),
            ("--report", report),
            ("--gallery-misses", gallery_misses),
            ("--gallery-hits", gallery_hits),
            ("--protocol", protocol),
            ("--preset", preset),
        ]:
            if value is not None:
                args += [name, str(value)]
        for item in split or []:
            args += ["--split", item]  # fmt: skip
        run_under_torchrun(plan, args)
    payload = _imported_in_memory(checkpoint, preset, list(overrides or []), data_root, dataset)
    with joined_world(device) as world:
        metrics, predictions, settings, model = evaluate_checkpoint(
            checkpoint, world=world, reporter=RichReporter() if world.is_main else NullReporter(), data_root=data_root,
            dataset=dataset, splits=split, batch_size=batch_size, num_workers=workers, keep_masks=report is not None,
            precision=precision, runtime=runtime, protocol=protocol, payload=payload,
        )  # fmt: skip
    if not world.is_main:
        return
    rules = protocol_named(settings.train.evaluation.protocol)
    console.print(
        f"{checkpoint}: IoU of boxes (and masks) in original image pixels; protocol {rules.name}: {rules.description}",
        markup=False,
    )
    print_table(_results_table(metrics))
    timing = metrics[-1].timing_ms
    console.print(
        f"speed per image: preprocess {timing['preprocess']:.1f} ms, inference {timing['inference']:.1f} ms, "
        f"postprocess {timing['postprocess']:.1f} ms on {world.device} x{world.size}, "
        f"batch {batch_size or settings.train.evaluation.eval_batch_size}"
    )
    console.print(model.describe(), markup=False)
    outputs.add_reads(*dataset_files(settings.dataset))  # known now: the data the evaluation read
    with outputs:  # all together, after the evaluation: a failure leaves every output as it was
        if json_target is not None:
            metrics_json = {"checkpoint": str(checkpoint), "protocol": rules.as_dict(),
                            "splits": [m.as_dict() for m in metrics]}  # fmt: skip
            outputs.write_json(json_target, metrics_json)
        if predictions_target is not None:
            outputs.write(predictions_target, _predictions_writer(predictions, rules))
        if report_target is not None:
            from simrec_cli.report.writer import write_report

            write_report(checkpoint, metrics, predictions, settings, outputs.folder(report_target),
                         misses=DEFAULT_MISSES if gallery_misses is None else gallery_misses,
                         hits=DEFAULT_HITS if gallery_hits is None else gallery_hits)  # fmt: skip
    if report is not None:
        RichReporter().info(f"report written to {report / 'index.html'}")
