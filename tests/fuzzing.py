"""The fuzzers' shared parts: Hypothesis profiles, strategies for hostile data, and the property every reader keeps.

The property: whatever the input, a reader returns its result or raises one `SimrecError` whose message is one
line of bounded length; any other exception (a traceback for the user) fails the test.

Two profiles bound the examples: `fast` for `make test` (a few dozen per property, seconds in all) and
`thorough` for `make test-all` and CI (the Makefile sets SIMREC_HYPOTHESIS_PROFILE=thorough). `fast` draws new
examples on every run, to keep exploring; `thorough` draws the same ones every time (derandomized), so that CI
judges the code and not the luck of a draw. A property that costs more per example (a whole prepare-data) asks for
a share of the profile's count with `examples(share)`.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from simrec_cli.errors import SimrecError

PROFILE_ENV = "SIMREC_HYPOTHESIS_PROFILE"
MAX_MESSAGE = 1500  # characters of message and hint together: a line that says what and where, never a dump
T = TypeVar("T")

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("fast", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=200, derandomize=True, **_COMMON)
settings.load_profile(os.environ.get(PROFILE_ENV, "fast"))


def examples(share: float) -> settings:
    """Settings for a costly property: `share` of the loaded profile's examples (at least 5)."""
    return settings(max_examples=max(5, int(settings.default.max_examples * share)))


def result_or_one_error(call: Callable[[], T]) -> T | SimrecError:
    """What `call` returns, or the SimrecError it raises, checked to be one short line; anything else propagates
    (and fails the property)."""
    try:
        return call()
    except SimrecError as error:
        text = str(error)
        assert "\n" not in text and "\r" not in text, text[:2000]
        assert len(text) <= MAX_MESSAGE, f"{len(text)} characters: {text[:2000]}"
        return error


# ------------------------------------------------------------------------------------------------ strategies

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(4300, 4400).map(lambda digits: 10**digits),  # more digits than Python turns into text
    st.floats(),  # NaN and infinities included
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
YAML_TOKENS = st.sampled_from(
    ["[", "]", "{", "}", ":", ": ", "- ", "\n", "\n  ", "&a ", "*a", "<<: ", "!!python/object:os.system", "!!binary ",
     "~", ".inf", ".nan", "1e400", "0x1F", "0o17", "2024-01-31", "12:30:45", "'", '"', "#", "|", ">", "? ", "base: ",
     "train:", "epochs: ", "batch_size: ", "1" * 5000, "%YAML 1.1\n", "---\n", "...\n", "\t", "\x00", "\ud800", "é"]
)  # fmt: skip
YAML_TEXT = st.lists(st.one_of(YAML_TOKENS, st.text(max_size=8)), max_size=16).map("".join)


def json_text(value: Any) -> str:
    """`value` as JSON text, its huge integers written out in full (json.dumps refuses them by default)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """The path to every node of a JSON-like value (the root is `()`)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _apply(document: Any, path: tuple, action: str, replacement: Any) -> Any:
    changed = copy.deepcopy(document)
    if not path:
        return replacement
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    else:
        parent[last] = replacement
    return changed


def mutations(document: Any) -> st.SearchStrategy[Any]:
    """`document` with one node replaced by hostile data, deleted or (in a list) repeated: deep inputs that pass
    most of a schema and break it in one place."""
    return st.builds(
        _apply,
        st.just(document),
        st.sampled_from(_paths(document)),
        st.sampled_from(["replace", "replace", "delete", "duplicate"]),
        JSON_VALUES,
    )


def with_flipped_bytes(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` with a few bytes changed, cut short, or with bytes added: a damaged copy of a valid file."""
    edits = st.lists(st.tuples(st.integers(0, max(0, len(data) - 1)), st.integers(0, 255)), max_size=4)
    return st.builds(_edit_bytes, st.just(data), edits, st.integers(0, len(data)), st.binary(max_size=8))


def _edit_bytes(data: bytes, edits: list[tuple[int, int]], keep: int, tail: bytes) -> bytes:
    changed = bytearray(data)
    for position, value in edits:
        if position < len(changed):
            changed[position] = value
    return bytes(changed[:keep]) + tail
