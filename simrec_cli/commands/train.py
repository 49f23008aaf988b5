"""`simrec train`."""

from __future__ import annotations

from simrec_cli.commands.common import guarded
from simrec_cli.errors import SimrecError


@guarded
def command() -> None:
    """Not built yet."""
    raise SimrecError("`simrec train` is not built yet in this version", "see the README for what works today")
