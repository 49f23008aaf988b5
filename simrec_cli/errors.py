"""The single exception type for user mistakes, and the exit statuses of every `simrec` process.

The CLI turns a `SimrecError` into one red line (the message and the fix) and exit code 2; any other
exception is a bug and keeps its traceback. The exit statuses live here, in the lowest layer, so the
commands, the engine's torchrun entry and scripts that call simrec all read the same numbers.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # the command ran, but some of its items (e.g. pictures to predict on) failed
EXIT_USER_ERROR = 2  # bad input or settings: one line says what and how to fix it
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)

# Under torchrun, each process leaves its user error as a file in this folder instead of printing it, and the
# `simrec` process that started torchrun prints the first one: one line, however many processes failed.
ERRORS_DIR_ENV = "SIMREC_ERRORS_DIR"

QUOTE_LIMIT = 60  # characters of a user's value that a message quotes
LIST_LIMIT = 10  # items of a user's list that a message shows


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


def _repr(value: object) -> str:
    """repr, or a description where repr fails: an int of more digits than Python turns into text, a container
    nested deeper than repr goes."""
    try:
        return repr(value)
    except ValueError:
        return f"<an integer of about {value.bit_length() * 0.30103:,.0f} digits>" if isinstance(value, int) else "<?>"
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as a message shows it: repr, cut to about `limit` characters so a huge input cannot flood stderr."""
    text = _repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters as text"
    return f"{text[:limit]}... ({size})"


# Line breaks and other control characters, as the escapes a message shows instead (a path may hold any of them).
_CONTROL_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def one_line(text: str) -> str:
    """`text` with its line breaks and other control characters written as escapes (\\n, \\x1b): a path or value
    that holds them cannot split a message into several lines or move the terminal's cursor."""
    return text.translate(_CONTROL_ESCAPES)


def listed(items: list[str], limit: int = LIST_LIMIT) -> str:
    """Items joined by commas, the first `limit` of them, then how many more."""
    shown = ", ".join(quoted(item) if len(item) > QUOTE_LIMIT else item for item in items[:limit])
    return shown + (f" (+{len(items) - limit:,} more)" if len(items) > limit else "")
