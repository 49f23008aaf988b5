"""`simrec export --format openvino`: the ONNX graph of export/onnx.py converted by OpenVINO's own converter.

The IR (`model.xml` with its weights in `model.bin`) takes any batch size and keeps float32 weights: the
precision it runs in (f32, or bf16 where the CPU has native bf16) is chosen when it is loaded. The metadata of
the ONNX graph (settings, vocabulary, preprocessing) travels inside the IR as rt_info, and beside it as JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

from simrec_cli.errors import SimrecError
from simrec_cli.export.defaults import DEFAULT_OPSET
from simrec_cli.export.onnx import (
    CHECK_BATCH,
    ExportResult,
    check_against_torch,
    check_opset,
    export_outputs,
    load_for_export,
)
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.runtimes.metadata import OPENVINO_FORMAT, metadata_strings
from simrec_cli.runtimes.openvino_runtime import OpenVinoRunner, import_openvino
from simrec_cli.storage.atomic import discard, temporary_dir_beside


def export_openvino(
    checkpoint: Path,
    output: Path | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
    reporter: Reporter | None = None,
) -> ExportResult:
    """Write CHECKPOINT as OpenVINO IR: `<output>.xml`, `.bin` and `.json` (default: beside it, `.xml`).

    The files are written under temporary names and renamed into place together (the .xml last), or none of them;
    nothing is written unless OpenVINO's f32 boxes match PyTorch's on a check input.
    """
    check_opset(opset)
    openvino = import_openvino("exporting to OpenVINO")
    reporter = reporter or NullReporter()
    output = output or Path(checkpoint).with_suffix(".xml")
    if output.suffix.lower() != ".xml":
        raise SimrecError(f"output {output} must end in .xml (the weights go beside it, in .bin)", "e.g. -o model.xml")
    outputs, (model_file, weights_file, metadata_file) = export_outputs(
        checkpoint, output, ("OpenVINO model", ".xml"), ("OpenVINO weights", ".bin"), ("metadata file", ".json")
    )
    traced = load_for_export(checkpoint, device, reporter)
    metadata = traced.metadata(OPENVINO_FORMAT, checkpoint, opset=opset, dynamic_batch=True, half=False)
    with outputs, outputs.writing(weights_file) as bin_temporary:  # committed: .bin, .json, then .xml
        staged = temporary_dir_beside(bin_temporary)  # OpenVINO writes model.xml and model.bin by name
        try:
            traced.to_onnx(staged / "model.onnx", opset, dynamic_batch=True)
            model = openvino.convert_model(str(staged / "model.onnx"))
            for key, value in metadata_strings(metadata).items():
                model.set_rt_info(value, ["framework", key])
            runner = OpenVinoRunner(model, "fp32")
            box_iou = check_against_torch(runner.run, traced, CHECK_BATCH, "try another --opset")
            openvino.save_model(model, str(staged / "model.xml"), compress_to_fp16=False)
            os.replace(staged / "model.bin", bin_temporary)
            outputs.write_json(metadata_file, metadata)
            with outputs.writing(model_file) as xml_temporary:
                os.replace(staged / "model.xml", xml_temporary)
        finally:
            discard(staged)
    return ExportResult(output, metadata_file.path, metadata, box_iou, "openvino")
