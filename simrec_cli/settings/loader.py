"""Presets (YAML with `base:` inheritance) plus dotted `KEY=VALUE` overrides, validated into `Settings`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.files import path_problem
from simrec_cli.schemas.formats import Unreadable, parse_yaml
from simrec_cli.schemas.preset import PRESET
from simrec_cli.schemas.violations import shown
from simrec_cli.settings.root import Settings

PRESET_SUFFIX = ".yaml"
META_KEYS = ("base", "description")


def presets_folder() -> Path:
    """Where the packaged presets are: inside an installed package, else at the top of a source checkout.

    The repository keeps them in its top-level `presets/`; the wheel ships them as `simrec_cli/presets`.
    """
    installed = resources.files("simrec_cli") / "presets"
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parents[2] / "presets"


def packaged_presets() -> dict[str, Path]:
    """Names and files of the packaged presets (works from an installed wheel, in any working folder)."""
    folder = presets_folder()
    if not folder.is_dir():
        return {}
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(PRESET_SUFFIX)
    }


def preset_description(path: Path) -> str:
    """The one-line `description:` of a preset file, or an empty string."""
    return PRESET.read(path).get("description", "")


def _find_preset(preset: str | Path, relative_to: Path | None = None) -> Path:
    """The file of a preset: a path (relative to the inheriting preset's folder first), else a packaged name.

    A path that exists but is no file (a folder, a symbolic link loop, a FIFO) is named with what it is, unless a
    packaged preset has that name.
    """
    candidate = Path(preset)
    places = [relative_to / candidate] if relative_to is not None and not candidate.is_absolute() else []
    unusable: list[str] = []
    for place in [*places, candidate]:
        if os.path.lexists(place):
            problem = path_problem(place)
            if problem is None:
                return place
            unusable.append(f"preset {place} {problem}")
    packaged = packaged_presets()
    name = str(preset)
    if name in packaged:
        return packaged[name]
    if name.endswith(PRESET_SUFFIX) and Path(name).stem in packaged and not candidate.parent.name:
        return packaged[Path(name).stem]
    if unusable:
        raise SimrecError(unusable[0], "give the path of a YAML file (a .yaml file, not a folder)")
    close = difflib.get_close_matches(name, list(packaged), n=3, cutoff=0.5)
    suggestion = f"did you mean {', '.join(close)}? " if close else ""
    raise SimrecError(
        f"preset {quoted(name)} not found",
        f"{suggestion}run `simrec presets` for the packaged ones, or give the path of a YAML file",
    )


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_preset_dict(preset: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The preset's settings with its `base:` chain merged in (meta keys removed)."""
    path = _find_preset(preset, _chain[-1].parent if _chain else None).resolve()
    if path in _chain:
        raise SimrecError(f"preset {path} inherits from itself through `base:`", "break the cycle")
    data = PRESET.read(path)
    base = data.get("base")
    merged: dict[str, Any] = load_preset_dict(base, (*_chain, path)) if base else {}
    own = {key: value for key, value in data.items() if key not in META_KEYS}
    return _deep_merge(merged, own)


def valid_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every dotted settings path, e.g. `train.sync_bn.enabled`."""
    keys = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        keys.append(path)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(valid_keys(annotation, f"{path}."))
    return keys


def unknown_key_error(key: str) -> SimrecError:
    close = difflib.get_close_matches(key, valid_keys(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "run `simrec config show` to list the settings"
    return SimrecError(f"unknown setting {quoted(key)}", hint)


LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")  # what YAML folds into a space inside a value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set each `dotted.key=value` (value parsed as YAML) into a copy of `data`."""
    result = _deep_merge({}, data)
    known = set(valid_keys())
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SimrecError(f"override {quoted(item)} is not KEY=VALUE", "write e.g. train.batch_size=64")
        if key not in known:
            raise unknown_key_error(key)
        if any(mark in raw.strip() for mark in LINE_BREAKS):
            raise SimrecError(f"override {key}: its value {quoted(raw)} holds a line break, which YAML reads as a "
                              "space (a folder 'a<newline>b' would become 'a b')",
                              "give the value on one line, or rename the file or folder")  # fmt: skip
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except Unreadable as exc:
            problem = f"override {key}: value {quoted(raw)} is not valid YAML: it {exc}"
            raise SimrecError(problem, "quote or fix it") from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return result


def validation_error(exc: ValidationError, source: str, fix: str = "fix the preset or the override") -> SimrecError:
    """Turn pydantic's report into one line naming the setting and what it expects (and `fix`, how to mend it)."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    if first["type"] == "extra_forbidden":
        error = unknown_key_error(key)
        return SimrecError(f"{error.message} in {source}", error.hint)
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    found = "" if isinstance(got, dict) or first["type"].startswith("value_error") else f" (got {shown(got)})"
    where = f"setting {key}" if key else "settings"
    return SimrecError(f"{where} in {source}: {message}{found}", fix)


def settings_from_dict(data: dict[str, Any], source: str = "settings") -> Settings:
    """Validate a plain dict (from a preset, a config.yaml or a checkpoint) into `Settings`."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from exc


def load_settings(preset: str | Path | None = None, overrides: Sequence[str] = ()) -> Settings:
    """Resolve a preset (packaged name or YAML path; None = SimREC defaults) and dotted overrides."""
    data = load_preset_dict(preset) if preset is not None else {}
    source = f"preset {preset}" if preset is not None else "defaults"
    if overrides:
        source += " + overrides"
    return settings_from_dict(apply_overrides(data, overrides), source)


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """Plain JSON/YAML-safe dict (paths as strings, tuples as lists) of the resolved settings."""
    return settings.model_dump(mode="json")


def settings_to_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings_to_dict(settings), sort_keys=False, default_flow_style=None)
