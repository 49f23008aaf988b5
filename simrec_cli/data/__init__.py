"""Data: REFER/SimREC annotations, prepare-data, the synthetic generator, words and vectors, the Dataset."""
