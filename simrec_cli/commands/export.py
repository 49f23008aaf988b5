"""`simrec export`: write a checkpoint as an ONNX file that runs without simrec, or as an int8 model file."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import guarded
from simrec_cli.console import RichReporter
from simrec_cli.engine.checkpoint_paths import require_checkpoint_file
from simrec_cli.errors import SimrecError
from simrec_cli.predict.defaults import DEFAULT_OPSET


@guarded
def command(
    checkpoint: Path = typer.Argument(..., help="A best.pth/last.pth written by `simrec train`.", show_default=False),
    export_format: str = typer.Option(
        "onnx",
        "--format",
        "-f",
        help="onnx, or int8 (a quantized model for CPUs with VNNI/AMX that predict, eval and serve load).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The file to write (default: the checkpoint's path with .onnx or .int8.pt2)."
    ),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="int8: the data folder whose training images calibrate it (default: the run's)."
    ),
    calibration_samples: int = typer.Option(
        256, "--calibration-samples", min=1, help="int8: training samples that calibrate the activation ranges."
    ),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Accept any batch size instead of 1."),
    opset: int = typer.Option(DEFAULT_OPSET, "--opset", min=11, help="ONNX opset version."),
    half: bool = typer.Option(
        False, "--half", help="float16 weights and arithmetic inside (inputs and outputs stay float32)."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the model is traced: cpu or cuda."),
) -> None:
    """Export CHECKPOINT with its box decoding inside; writes FILE.onnx and FILE.json (vocabulary, preprocessing).

    Inputs: `image` float32 [B, 3, H, W] (letterboxed RGB / 255) and `tokens` int64 [B, L]. Outputs: `boxes`
    [B, 5] (x1, y1, x2, y2, score in letterbox pixels) and, for mask models, `masks` [B, H, W].

    With --format int8: static int8 quantization calibrated on the training images of the checkpoint's dataset;
    writes FILE.int8.pt2, which `simrec predict`, `eval` and `serve` take in place of the checkpoint.
    """
    if export_format not in ("onnx", "int8"):
        raise SimrecError(f"unknown export format '{export_format}'", "use --format onnx or --format int8")
    require_checkpoint_file(checkpoint)  # before the seconds of importing torch

    reporter = RichReporter()
    if export_format == "int8":
        from simrec_cli.engine.quantize import quantize_checkpoint

        quantized = quantize_checkpoint(
            checkpoint, output, data_root=data_root, samples=calibration_samples, reporter=reporter
        )
        reporter.info(
            f"wrote {quantized.path} (int8, calibrated on {quantized.calibration_samples} training samples "
            f"in {quantized.seconds:.0f} s)"
        )
        return
    from simrec_cli.predict.export import MIN_BOX_IOU, export_onnx

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
