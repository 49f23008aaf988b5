"""`simrec export`: write a checkpoint as an ONNX file or OpenVINO IR that runs without simrec."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import guarded
from simrec_cli.console import RichReporter
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.export.defaults import DEFAULT_OPSET, EXPORT_FORMATS, MIN_OPSET


@guarded
def command(
    checkpoint: Path = typer.Argument(..., help="A best.pth/last.pth written by `simrec train`.", show_default=False),
    export_format: str = typer.Option(
        "onnx", "--format", "-f", help="onnx (ONNX Runtime and others) or openvino (OpenVINO IR: .xml + .bin)."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="The .onnx or .xml file to write (default: the checkpoint's path with .onnx or .xml).",
    ),
    dynamic_batch: bool = typer.Option(
        False, "--dynamic-batch", help="ONNX: accept any batch size instead of 1 (OpenVINO IR always does)."
    ),
    opset: int = typer.Option(
        DEFAULT_OPSET, "--opset", min=MIN_OPSET, help=f"ONNX opset version, {MIN_OPSET} or newer."
    ),
    half: bool = typer.Option(
        False, "--half", help="ONNX: float16 weights and arithmetic inside (inputs and outputs stay float32)."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the model is traced: cpu or cuda."),
) -> None:
    """Export CHECKPOINT with its box decoding inside; writes the model and FILE.json (vocabulary, preprocessing).

    Inputs: `image` float32 [B, 3, H, W] (letterboxed RGB / 255) and `tokens` int64 [B, L]. Outputs: `boxes`
    [B, 5] (x1, y1, x2, y2, score in letterbox pixels) and, for mask models, `masks` [B, H, W]. The settings,
    vocabulary and preprocessing travel inside the file too: `simrec eval`, `predict` and `serve` take it as they
    take the checkpoint. An OpenVINO IR runs in f32 or bf16 as chosen when it loads (--precision).
    """
    if export_format not in EXPORT_FORMATS:
        raise SimrecError(
            f"unknown export format {quoted(export_format)}", f"use --format {' or '.join(EXPORT_FORMATS)}"
        )
    if export_format == "openvino" and half:
        raise SimrecError(
            "--half applies to ONNX files; an OpenVINO IR keeps float32 weights and runs in bf16 where the CPU "
            "has it (choose with --precision when running it)",
            "leave out --half",
        )
    require_checkpoint_file(checkpoint)  # before the seconds of importing torch

    from simrec_cli.export.onnx import MIN_BOX_IOU, export_onnx
    from simrec_cli.export.openvino import export_openvino

    reporter = RichReporter()
    if export_format == "onnx":
        result = export_onnx(
            checkpoint, output, opset=opset, dynamic_batch=dynamic_batch, half=half, device=device, reporter=reporter
        )
    else:
        result = export_openvino(checkpoint, output, opset=opset, device=device, reporter=reporter)
    written = [result.path, *([result.path.with_suffix(".bin")] if export_format == "openvino" else [])]
    reporter.info(f"wrote {', '.join(map(str, written))} and {result.metadata_path}")
    if result.min_box_iou is None:
        reporter.warning("onnxruntime is not installed, the file was not checked (pip install simrec[export])")
    elif result.min_box_iou >= MIN_BOX_IOU:
        reporter.info(f"{result.checked_by} check: boxes match PyTorch's (IoU >= {result.min_box_iou:.4f})")
    else:
        reporter.info(
            f"{result.checked_by} check: boxes match PyTorch's except where two candidate boxes score within "
            f"rounding of each other (lowest IoU {result.min_box_iou:.3f})"
        )
