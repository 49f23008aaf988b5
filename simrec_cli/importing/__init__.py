"""Checkpoints of the original SimREC toolbox turned into self-contained simrec checkpoints (`simrec import`).

`original` reads the files the original wrote (both of its layouts); `convert` adds the settings, rebuilds the
vocabulary as the original did, checks that everything fits, and records where it all came from.
"""

from simrec_cli.importing.convert import ImportedCheckpoint, import_original, import_settings, write_imported
from simrec_cli.importing.original import OriginalCheckpoint, read_original_checkpoint

__all__ = [
    "ImportedCheckpoint",
    "OriginalCheckpoint",
    "import_original",
    "import_settings",
    "read_original_checkpoint",
    "write_imported",
]
