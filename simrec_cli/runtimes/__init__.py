"""Where a trained model runs: PyTorch (eager or compiled), ONNX Runtime or OpenVINO, behind one interface.

A `Runtime` is called like the eval model, `runtime(images, tokens, image_index=None) -> {"boxes", "masks"}`, on
images normalized the way it asks (`input_mean`/`input_std`), so eval's evaluator, predict's predictor and the
server use every runtime the same way. `load_model` (model_files/loading.py) opens a checkpoint or an exported file
in the runtime asked for, or, with `auto`, the fastest one this machine runs (runtimes/choice.py), and says why.
ONNX Runtime and OpenVINO are imported only when a file is run with them.
"""
