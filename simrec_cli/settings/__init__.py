"""Typed, validated settings in SimREC's four namespaces, loaded from presets plus dotted overrides."""

from simrec_cli.settings.dataset import DATASET_LAYOUT, DatasetSettings, evaluation_splits
from simrec_cli.settings.loader import (
    apply_overrides,
    load_preset_dict,
    load_settings,
    packaged_presets,
    preset_description,
    settings_from_dict,
    settings_to_dict,
    settings_to_yaml,
    valid_keys,
)
from simrec_cli.settings.model import ModelSettings
from simrec_cli.settings.optim import OptimSettings
from simrec_cli.settings.root import Settings
from simrec_cli.settings.train import TrainSettings

__all__ = [
    "DATASET_LAYOUT",
    "DatasetSettings",
    "ModelSettings",
    "OptimSettings",
    "Settings",
    "TrainSettings",
    "apply_overrides",
    "evaluation_splits",
    "load_preset_dict",
    "load_settings",
    "packaged_presets",
    "preset_description",
    "settings_from_dict",
    "settings_to_dict",
    "settings_to_yaml",
    "valid_keys",
]
