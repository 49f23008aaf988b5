"""Exported models: a checkpoint written as a file another runtime runs (ONNX, OpenVINO IR).

Every exported file carries what is needed to use it: the settings, the vocabulary and the preprocessing (in
the file's own metadata and in a JSON file beside it), so `simrec eval`, `predict` and `serve` take it as they
take a checkpoint, and a program without simrec can use it by the recipe in docs/export.md.
"""
