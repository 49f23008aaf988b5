"""The single exception type for user mistakes.

The CLI turns a `SimrecError` into one red line (the message and the fix) and exit code 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class SimrecError(Exception):
    """A mistake the user can fix: a missing file, a bad setting, a wrong checkpoint.

    `message` names the thing that is wrong; `hint` says how to fix it.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
