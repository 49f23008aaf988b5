"""One line for a schema violation: the file, the entry (index or id), the field, what was expected and found.

pydantic reports a violation as a location (`('annotations', 3, 'bbox')`), an error type and the value found.
`Violation` holds the same in the project's words; `Locator`s turn the location into the entry and the field as
a reader of that file thinks of them ("annotation #3 (id 1234), field bbox"). Values are shown short: text and
numbers quoted (cut to a few dozen characters), lists and mappings by their size, never dumped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from simrec_cli.errors import quoted

Location = tuple[str | int, ...]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Violation:
    """Where in a file's data a rule is broken, what the rule expects and what the data holds there."""

    location: Location
    expected: str
    found: Any = MISSING
    kind: str = ""  # pydantic's error type, or the code a check raised it with (see requests.py)


SHOWN_ITEMS = 8  # a short list of numbers or words is shown whole: [10, 20, nan, 40]


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 20)


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def shown(value: Any) -> str:
    """A found value as a message shows it: short, never a dump of a huge or deeply nested input."""
    if value is MISSING:
        return "nothing"
    if isinstance(getattr(value, "shown_as", None), str):  # a value that says in words what it is ("a file")
        return str(value.shown_as)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bytes):
        return quoted(value)
    if isinstance(value, Mapping):
        keys = [quoted(key, 20) for key in itertools.islice(value, 3) if isinstance(key, str)]
        named = f" (keys {', '.join(keys)}{', ...' if len(value) > 3 else ''})" if keys else ""
        return f"a mapping of {_count(len(value), 'entry', 'entries')}{named}" if value else "an empty mapping"
    if isinstance(value, list | tuple) and 0 < len(value) <= SHOWN_ITEMS and all(_scalar(item) for item in value):
        return quoted(list(value))
    if isinstance(value, list | tuple):
        return f"a list of {_count(len(value), 'item', 'items')}" if value else "an empty list"
    return f"a {type(value).__name__}"


_EXPECTED: dict[str, str | Callable[[dict[str, Any]], str]] = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "string_too_short": lambda c: f"text of at least {c['min_length']} character{'s' * (c['min_length'] != 1)}",
    "string_too_long": lambda c: f"at most {c['max_length']:,} characters",
    "too_short": lambda c: f"at least {c['min_length']} item{'s' * (c['min_length'] != 1)}",
    "too_long": lambda c: f"at most {c['max_length']:,} items",
    "greater_than": lambda c: f"a number above {c['gt']}",
    "greater_than_equal": lambda c: f"a number of {c['ge']} or more",
    "less_than": lambda c: f"a number below {c['lt']}",
    "less_than_equal": lambda c: f"a number of at most {c['le']:,}",
    "literal_error": lambda c: f"{c['expected']}",
    "extra_forbidden": "no field of this name",
    "invalid_key": "a key that is text",
    "recursion_loop": "a value that does not contain itself",
}


def _expected(error: ErrorDetails) -> str:
    """What the rule behind one pydantic error expects, in words."""
    kind = error["type"]
    context = dict(error.get("ctx") or {})
    if "expected" in context:  # raised by the project's own checks (see types.py and requests.py)
        return str(context["expected"])
    if kind == "value_error":
        return str(context.get("error") or error["msg"]).removeprefix("Value error, ")
    rule = _EXPECTED.get(kind)
    if callable(rule):
        try:
            return rule(context)
        except (KeyError, ValueError, TypeError):
            return error["msg"]
    return rule or error["msg"]


def violations_of(exc: ValidationError) -> list[Violation]:
    """pydantic's errors as Violations, locations without the names pydantic gives union members."""
    found: list[Violation] = []
    for error in exc.errors(include_url=False):
        location = tuple(part for part in error["loc"] if isinstance(part, int) or "[" not in part)
        value = MISSING if error["type"] == "missing" else error.get("input", MISSING)
        found.append(Violation(location, _expected(error), value, error["type"]))
    return found


# A locator turns a location into (the entry, the field): ('annotations', 3, 'bbox') -> ('annotation #3 (id 7)',
# 'bbox'). It gets the data, to name an entry by its id.
Locator = Callable[[Any, Location], tuple[str, str]]


def field_path(location: Sequence[str | int]) -> str:
    """`sentences`, 0, `sent` -> `sentences[0].sent`; a key that is no plain name is quoted: `images['a b']`."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{quoted(part, 40)}]"
    return text


def _step(data: Any, part: str | int) -> Any:
    try:
        return data[part]
    except (KeyError, IndexError, TypeError):
        return MISSING


def entry_name(noun: str, index: str | int, item: Any, id_keys: Sequence[str]) -> str:
    """`annotation #3 (id 1234)`: the entry's position, and its id where it has one."""
    name = f"{noun} #{index}" if isinstance(index, int) else f"{noun} {quoted(index, 40)}"
    if isinstance(item, Mapping):
        for key in id_keys:
            value = item.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool):
                return f"{name} ({key} {quoted(value, 40) if isinstance(value, str) else value})"
    return name


def records(nouns: Mapping[str, str], id_keys: Sequence[str] = ("id",)) -> Locator:
    """A locator for data whose fields hold lists (or mappings) of records: `nouns` names a record of each such
    field (the key "" is the top level itself, for a file that is one list)."""

    def locate(data: Any, location: Location) -> tuple[str, str]:
        for start in (0, 1):
            container = "" if start == 0 else location[0] if location else None
            if container in nouns and len(location) > start:
                holder = data if start == 0 else _step(data, location[0])
                index = location[start]
                entry = entry_name(nouns[str(container)], index, _step(holder, index), id_keys)
                return entry, field_path(location[start + 1 :])
        return "", field_path(location)

    return locate


def plain(data: Any, location: Location) -> tuple[str, str]:
    """The default locator: no entries, only a field path."""
    return "", field_path(location)


def describe(violation: Violation, data: Any, locate: Locator) -> str:
    """'entry, field F: expected E, found V' (the parts that apply), for the message after the file's name."""
    entry, field = locate(data, violation.location)
    if violation.found is MISSING and field:
        return f"{entry + ' ' if entry else ''}lacks the field {field}"
    where = ", ".join(part for part in (entry, f"field {field}" if field else "") if part)
    rule = f"expected {violation.expected}, found {shown(violation.found)}"
    return f"{where}: {rule}" if where else rule
