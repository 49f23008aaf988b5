"""Export defaults the CLI reads for its options, in a module that imports nothing heavy (the CLI starts without
torch)."""

DEFAULT_OPSET = 17  # ONNX opset: supported by onnxruntime >= 1.14 and TensorRT 8.6+
MIN_OPSET = 12  # the attention's einsum has no ONNX operator before opset 12
EXPORT_FORMATS = ("onnx", "openvino")  # `simrec export --format`
