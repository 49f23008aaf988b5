"""Defaults the core and the CLI share, in a module that imports nothing heavy (the CLI starts without torch)."""

DEFAULT_BATCH_SIZE = 16  # expressions per forward pass
BENCHMARK_FORMATS = ("pytorch", "onnx", "openvino")  # `simrec benchmark --formats`
