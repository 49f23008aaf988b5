"""`InputFormat`: the one way an external file (or value) is read, so every violation reads the same.

A format names what it reads ("REFER refs file"), how it is parsed (JSON, plain pickle, YAML), the schema its
data must meet, cross-entry rules (unique ids), how large the file may be, and the fix to suggest. `read(path)`
opens, bounds, parses and validates; `check(data, source)` validates data that came another way (a CSV row, an
environment, a checkpoint). Either returns the validated data or raises one `SimrecError`:

    <file>: <entry>, field <field>: expected <what the schema wants>, found <what the file holds>
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from simrec_cli.errors import SimrecError
from simrec_cli.schemas.files import MEBIBYTE, read_bytes
from simrec_cli.schemas.formats import Refused, Unreadable
from simrec_cli.schemas.violations import Locator, Violation, describe, plain, violations_of

T = TypeVar("T")
Rule = Callable[[Any], "Violation | None"]


class SchemaError(SimrecError):
    """A SimrecError for a schema violation that keeps the violation, for a caller that reports it in parts (the
    server's JSON error names the field and what was expected and found)."""

    def __init__(self, message: str, hint: str, violation: Violation) -> None:
        super().__init__(message, hint)
        self.violation = violation


@dataclass(frozen=True)
class InputFormat(Generic[T]):
    """One external format and its schema (see the module's docstring)."""

    name: str  # as a message names a file of this format: "{name} {path} ..."
    schema: Any  # anything pydantic validates: a model, a TypedDict, list[...]
    fix: str
    parse: Callable[[bytes], Any] | None = None  # None: data of this format comes parsed (see `check`)
    locate: Locator = plain
    rules: Sequence[Rule] = field(default_factory=tuple)
    max_bytes: int = 64 * MEBIBYTE

    @cached_property
    def _adapter(self) -> TypeAdapter[T]:
        return TypeAdapter(self.schema)

    def read(self, path: Path) -> T:
        """The validated content of `path`; any way the file can be wrong is one SimrecError naming it."""
        if self.parse is None:
            raise TypeError(f"{self.name} is checked, not read: it has no parser")
        raw = read_bytes(path, self.name, self.fix, self.max_bytes)
        try:
            data = self.parse(raw)
        except Refused as exc:
            raise SimrecError(f"refused to load {path}: {exc}; nothing in it ran", self.fix) from None
        except Unreadable as exc:
            raise SimrecError(f"{self.name} {path} {exc}", self.fix) from None
        return self.check(data, str(path))

    def check(self, data: Any, source: str) -> T:
        """`data` validated against the schema and the rules; `source` names where it came from in a message."""
        try:
            value = self._adapter.validate_python(data)
        except ValidationError as exc:
            raise self.violation(violations_of(exc)[0], data, source) from None
        except RecursionError:
            raise self.violation(Violation((), "data nested less deeply", data), data, source) from None
        for check in self.rules:
            broken = check(value)
            if broken is not None:
                raise self.violation(broken, data, source)
        return value

    def violation(self, violation: Violation, data: Any, source: str) -> SchemaError:
        """The one line for `violation` in `data` from `source`."""
        return SchemaError(f"{source}: {describe(violation, data, self.locate)}", self.fix, violation)


def unique(container: str, key: str, noun: str) -> Rule:
    """A rule: no two records of `data[container]` (of `data` itself when "") share `key`."""

    def check(data: Any) -> Violation | None:
        records = data if container == "" else data[container]
        first_at: dict[Any, int] = {}
        for index, record in enumerate(records):
            value = record[key]
            if value in first_at:
                location = (index, key) if container == "" else (container, index, key)
                return Violation(location, f"a {key} no other {noun} has ({noun} #{first_at[value]} has it)", value)
            first_at[value] = index
        return None

    return check
