"""Answering referring expressions on images people actually have.

`predictor` runs a checkpoint or an exported model on (image, expressions) requests, `sources` turns a
file/folder/glob or a pairs file into those requests, `images` reads any common image file into upright RGB, and
`output` writes the annotated pictures (drawn by `simrec_cli.drawing`) and masks.
"""
