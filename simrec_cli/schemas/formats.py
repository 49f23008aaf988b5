"""The parsers of the external formats (JSON, REFER's pickles, YAML), each bounded and each failing one way.

A parser turns bytes or text into plain Python data (dicts, lists, strings, numbers) or raises `Unreadable` with
what is wrong in words; `reading.py` adds the file's name. Whatever the input, nothing else escapes: not the
json module's RecursionError on deep nesting, not the ValueError of an integer with more digits than Python
converts, not a pickle that asks for code, not a YAML alias that expands a few lines into billions of values.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import sys
from typing import Any

import numpy as np
import yaml

from simrec_cli.errors import quoted

MAX_NESTING = 64  # levels of lists and mappings: the REFER files need 5, presets 4
MAX_YAML_VALUES = 100_000  # values a YAML document may hold once its aliases are expanded


class Unreadable(Exception):
    """The input is not in its format; the message says how, as a predicate of the file ("is not valid JSON")."""


# ------------------------------------------------------------------------------------------------------- JSON

_ESCAPED = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')


def json_nesting(raw: bytes) -> int:
    """How deep lists and mappings nest in the JSON text `raw`, found without parsing it.

    Escapes go first (so an escaped quote does not end a string), then everything but brackets and quotes, then
    the strings: what is left is the brackets, whose running balance is the depth. It all runs in C and numpy.
    """
    if b"\\" in raw:
        raw = _ESCAPED.sub(b"", raw)
    brackets = np.frombuffer(_STRING.sub(b"", raw.translate(None, _NOT_STRUCTURE)), dtype=np.uint8)
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1).astype(np.int32)
    return int(steps.cumsum().max(initial=0))


def parse_json(raw: bytes) -> Any:
    """JSON from UTF-8 bytes, its nesting checked first (NaN and Infinity are read; the schemas judge them)."""
    depth = json_nesting(raw)
    if depth > MAX_NESTING:
        raise Unreadable(f"nests lists and mappings {depth:,} levels deep, more than {MAX_NESTING}")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise Unreadable(f"is not UTF-8 text (byte {exc.start:,})") from exc
    except json.JSONDecodeError as exc:
        raise Unreadable(f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise Unreadable(f"holds a number of more than {sys.get_int_max_str_digits():,} digits") from exc
        raise Unreadable(f"is not valid JSON: {str(exc)[:120]}") from exc
    except (RecursionError, MemoryError) as exc:
        raise Unreadable(f"is not valid JSON: {type(exc).__name__}") from exc


# ----------------------------------------------------------------------------------------------------- pickle


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a class or function."""


class Refused(Unreadable):
    """The input asked for code to run; nothing ran."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that admits no class or function at all: a pickle needing one is refused, never executed."""

    def find_class(self, module: str, name: str) -> Any:
        raise _ForbiddenGlobal(f"it asks for {module}.{name}, and only plain data is accepted")


def _unpickle(raw: bytes, encoding: str) -> Any:
    return _PlainDataUnpickler(io.BytesIO(raw), fix_imports=True, encoding=encoding).load()


def parse_plain_pickle(raw: bytes) -> Any:
    """A (Python 2 or 3) pickle of plain containers, strings and numbers; anything else is refused unrun."""
    try:
        try:
            return _unpickle(raw, "utf-8")
        except UnicodeDecodeError:
            # Python 2 byte strings that are not UTF-8: latin-1 maps every byte, so nothing is lost.
            return _unpickle(raw, "latin-1")
    except _ForbiddenGlobal as exc:
        raise Refused(str(exc)) from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            MemoryError, RecursionError, OverflowError) as exc:  # fmt: skip
        raise Unreadable(f"is corrupt or truncated ({type(exc).__name__})") from exc


# ------------------------------------------------------------------------------------------------------- YAML

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _PlainYamlLoader(yaml.SafeLoader):
    """YAML's safe loader (plain data only), refusing a key given twice in one mapping (plain YAML keeps the
    last one silently) and a key that is not a plain value. Merge keys (`<<: *defaults`) work as in YAML 1.1:
    the mapping's own keys win over merged ones."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {quoted(key)} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], depth: int = 1) -> int:
    """How many values `node` holds with every alias expanded (aliases share nodes; each is counted once per use),
    refusing a document nested deeper than MAX_NESTING or holding more than MAX_YAML_VALUES values."""
    if depth > MAX_NESTING:
        line = node.start_mark.line + 1
        raise Unreadable(f"nests lists and mappings more than {MAX_NESTING} levels deep (line {line})")
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise Unreadable(f"has an alias at line {node.start_mark.line + 1} to a value that contains it")
    open_nodes.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_nodes, depth + 1)
        if total > MAX_YAML_VALUES:
            raise Unreadable(f"expands to more than {MAX_YAML_VALUES:,} values through its aliases")
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"has a YAML syntax error{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}"


def parse_yaml(text: str) -> Any:
    """Plain data from YAML text (one document), its size after alias expansion and its nesting bounded."""
    try:
        loader = _PlainYamlLoader(text)  # reads the text: a control character is refused here
    except yaml.YAMLError as exc:
        raise Unreadable(_yaml_problem(exc)) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise Unreadable(_yaml_problem(exc)) from exc
    except RecursionError as exc:
        raise Unreadable("nests lists and mappings too deeply") from exc
    except (ValueError, OverflowError) as exc:  # an integer of thousands of digits, a date out of range
        raise Unreadable(f"holds a value that cannot be read: {str(exc)[:120]}") from exc
    finally:
        loader.dispose()
