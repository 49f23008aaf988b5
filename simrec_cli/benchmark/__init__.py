"""`simrec benchmark`: every format and precision of one checkpoint on this machine, side by side.

Each candidate (PyTorch fp32 and bf16, ONNX in ONNX Runtime, OpenVINO IR in f32 and bf16) is exported, evaluated on
a split with the evaluator `simrec eval` uses, held to the accuracy gate against PyTorch fp32, and timed at batch 1
and batch N; a candidate whose runtime is not installed is a row saying how to install it.
"""
