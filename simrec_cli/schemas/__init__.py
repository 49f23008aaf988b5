"""Typed schemas of every external input, and the one way each is read.

A user's files (REFER, annotations, vocabulary, objects, masks, pairs, presets, word vectors) and the values a
job's environment sets (SLURM) are read through an `InputFormat` (reading.py): the file is checked to be a
regular file of bounded size, parsed by a bounded parser (formats.py), and validated against a strict schema.
Whatever the input, the result is the data, or one `SimrecError` line naming the file, the entry, the field,
what was expected and what was found (violations.py).
"""
