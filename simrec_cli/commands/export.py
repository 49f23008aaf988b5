"""`simrec export`: write a checkpoint as an ONNX file that runs without simrec."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import guarded
from simrec_cli.console import RichReporter
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file
from simrec_cli.errors import SimrecError
from simrec_cli.predict.defaults import DEFAULT_OPSET, MIN_OPSET


@guarded
def command(
    checkpoint: Path = typer.Argument(..., help="A best.pth/last.pth written by `simrec train`.", show_default=False),
    export_format: str = typer.Option("onnx", "--format", "-f", help="Target format (onnx)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The .onnx file to write (default: the checkpoint's path with .onnx)."
    ),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Accept any batch size instead of 1."),
    opset: int = typer.Option(
        DEFAULT_OPSET, "--opset", min=MIN_OPSET, help=f"ONNX opset version, {MIN_OPSET} or newer."
    ),
    half: bool = typer.Option(
        False, "--half", help="float16 weights and arithmetic inside (inputs and outputs stay float32)."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the model is traced: cpu or cuda."),
) -> None:
    """Export CHECKPOINT with its box decoding inside; writes FILE.onnx and FILE.json (vocabulary, preprocessing).

    Inputs: `image` float32 [B, 3, H, W] (letterboxed RGB / 255) and `tokens` int64 [B, L]. Outputs: `boxes`
    [B, 5] (x1, y1, x2, y2, score in letterbox pixels) and, for mask models, `masks` [B, H, W].
    """
    if export_format != "onnx":
        raise SimrecError(f"unknown export format '{export_format}'", "use --format onnx")
    require_checkpoint_file(checkpoint)  # before the seconds of importing torch

    from simrec_cli.predict.export import MIN_BOX_IOU, export_onnx

    reporter = RichReporter()
    result = export_onnx(
        checkpoint, output, opset=opset, dynamic_batch=dynamic_batch, half=half, device=device, reporter=reporter
    )
    reporter.info(f"wrote {result.onnx_path} and {result.metadata_path}")
    if result.min_box_iou is None:
        reporter.warning("onnxruntime is not installed, the file was not checked (pip install simrec[export])")
    elif result.min_box_iou >= MIN_BOX_IOU:
        reporter.info(f"onnxruntime check: boxes match PyTorch's (IoU >= {result.min_box_iou:.4f})")
    else:
        reporter.info(
            f"onnxruntime check: boxes match PyTorch's but where two candidates score the same to float16 precision "
            f"(lowest IoU {result.min_box_iou:.3f})"
        )
