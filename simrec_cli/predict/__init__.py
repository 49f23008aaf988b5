"""Answering referring expressions on images people actually have, and exporting the model to ONNX.

`predictor` runs a checkpoint on (image, expressions) requests, `sources` turns a file/folder/glob or a
pairs file into those requests, `images` reads any common image file into upright RGB, `drawing` and
`output` write the annotated pictures and masks, `export` writes an ONNX file with the decoding inside.
"""
