"""The settings reference page, read from the pydantic models and the packaged presets.

Every key with its type, default, allowed values or bounds and description; then, per packaged preset, the keys it
sets to something other than the default. A key without a description stops the generator: the page would
otherwise have a hole where a user looks for the meaning of a setting.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tools.docs.markdown import cell, code, page, prose, table

BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", "≥"), (annotated_types.Lt, "lt", "<"),
          (annotated_types.Le, "le", "≤"))  # fmt: skip


class UndocumentedSetting(Exception):
    """A settings key has no `Field(description=...)`."""


def type_name(annotation: Any) -> str:
    """A short, YAML-minded name for a field's type: `int`, `path or null`, `[int, int]`, `list of str`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Annotated:  # a constrained member of a union, such as `Annotated[int, Field(ge=0)] | Literal[...]`
        return type_name(args[0])
    if origin is Literal:
        kinds = sorted({type(arg).__name__ for arg in args})
        return " or ".join("str" if kind == "str" else kind for kind in kinds)
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(type_name(arg) for arg in args))
    if origin is tuple:
        return "[" + ", ".join(type_name(arg) for arg in args) + "]"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if inspect.isclass(annotation) and annotation.__name__ in ("Path", "PosixPath"):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def literal_values(annotation: Any) -> list[Any]:
    """Every Literal value the annotation admits, at any depth (`bool | Literal["auto"]` gives `auto`)."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [value for arg in get_args(annotation) for value in literal_values(arg)]


def allowed(field: FieldInfo) -> str:
    """The field's allowed values (its Literal choices) or bounds (its Gt/Ge/Lt/Le constraints), as a cell."""
    choices = literal_values(field.annotation)
    if choices and bool in get_args(field.annotation):
        choices = [True, False, *choices]
    members = [arg for arg in get_args(field.annotation) if get_origin(arg) is Annotated]
    inner = [item for member in members for item in get_args(member)[1:]]  # pydantic's Field(...) holds its bounds
    constraints = [*field.metadata, *(bound for item in inner for bound in getattr(item, "metadata", [item]))]
    bounds = [
        f"{symbol} {getattr(item, attribute)}"
        for item in constraints
        for kind, attribute, symbol in BOUNDS
        if isinstance(item, kind)
    ]
    return ", ".join([*([cell(", ".join(bounds))] if bounds else []), *(shown(choice) for choice in choices)])


def shown(value: Any) -> str:
    """A default or a preset's value as it is written in an override or a preset (YAML's flow style)."""
    return code(yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("\n...\n").strip())


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def blocks(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel], list[tuple[str, FieldInfo]]]]:
    """(dotted name, model, its leaf fields) for `model` and every block nested in it, in declaration order."""
    leaves = []
    nested = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            nested.append((f"{prefix}.{name}", annotation))
        else:
            leaves.append((name, field))
    yield prefix, model, leaves
    for name, child in nested:
        yield from blocks(child, name)


def preset_changes() -> dict[str, dict[str, Any]]:
    """Per packaged preset, the keys (dotted) whose resolved value differs from the default, with that value."""
    from simrec_cli.settings import Settings, load_settings, packaged_presets, settings_to_dict

    defaults = flatten(settings_to_dict(Settings()))
    changes = {}
    for name in packaged_presets():
        resolved = flatten(settings_to_dict(load_settings(name)))
        changes[name] = {key: value for key, value in resolved.items() if value != defaults.get(key)}
    return changes


def preset_anchor(name: str) -> str:
    return "preset-" + "".join(char if char.isalnum() else "-" for char in name)


def key_section(key: str, field: FieldInfo, default: Any, presets: list[str]) -> list[str]:
    """One setting: a heading of its own (so search and links land on it), its description, then its facts."""
    if not field.description:
        raise UndocumentedSetting(f"setting {key} has no description: add Field(description=...) to its model")
    facts = [cell(type_name(field.annotation)), f"default {shown(default)}"]
    limits = allowed(field)
    if limits:
        facts.append(f"allowed {limits}")
    if presets:
        facts.append("set by " + ", ".join(f"[{preset}](#{preset_anchor(preset)})" for preset in presets))
    return [f"### `{key}` {{ #{key} }}", "", prose(field.description), "", " · ".join(facts), ""]


def block_section(name: str, model: type[BaseModel], leaves: list[tuple[str, FieldInfo]], defaults: dict[str, Any],
                  changed_by: dict[str, list[str]]) -> list[str]:  # fmt: skip
    """A settings block (`train.ema`): its docstring, then each of its keys."""
    lines = [f"## `{name}`", ""]
    doc = inspect.getdoc(model)
    if doc:
        lines.extend([prose(doc), ""])
    for leaf, field in leaves:
        key = f"{name}.{leaf}"
        lines.extend(key_section(key, field, defaults.get(key), changed_by.get(key, [])))
    return lines


def presets_section(changes: dict[str, dict[str, Any]]) -> list[str]:
    from simrec_cli.settings import packaged_presets, preset_description

    lines = [
        "## Presets",
        "",
        "The packaged presets (`simrec presets`, `--preset NAME`) and every setting each one resolves to a value "
        "other than the default, its `base:` preset's settings included.",
        "",
    ]
    for name, path in packaged_presets().items():
        base = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("base")
        lines.extend([f"### `{name}` {{ #{preset_anchor(name)} }}", "", cell(preset_description(path)), ""])
        if base:
            lines.extend([f"Inherits from [`{base}`](#{preset_anchor(str(base))}).", ""])
        rows = [[f"[{code(key)}](#{key})", shown(value)] for key, value in changes[name].items()]
        lines.extend([*table(["Key", "Value"], rows), ""])
    return lines


def settings_reference() -> str:
    from simrec_cli.settings import Settings, settings_to_dict

    defaults = flatten(settings_to_dict(Settings()))
    changes = preset_changes()
    changed_by: dict[str, list[str]] = {}
    for preset, keys in changes.items():
        for key in keys:
            changed_by.setdefault(key, []).append(preset)
    body: list[str] = []
    for namespace, field in Settings.model_fields.items():
        assert field.annotation is not None
        for name, model, leaves in blocks(field.annotation, namespace):
            body.extend(block_section(name, model, leaves, defaults, changed_by))
    body.extend(presets_section(changes))
    intro = (
        "Every setting, in SimREC's four namespaces. A preset (`--preset`) sets some of them; any can be overridden "
        "on the command line as `KEY=VALUE` (the value is read as YAML), e.g. `train.batch_size=64`. "
        "`simrec config show` prints the resolved settings of a preset and overrides. "
        "An unknown key or a value outside the allowed ones is refused before any work starts."
    )
    return page("Settings", "the pydantic models in simrec_cli/settings/ and presets/", intro, body)
