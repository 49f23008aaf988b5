"""Settings: presets, inheritance, overrides of every value type, and the error messages."""

from __future__ import annotations

from pathlib import Path
from typing import get_args, get_origin

import pytest
from pydantic import BaseModel

from simrec_cli.engine.protocol import ORIGINAL, PROTOCOLS
from simrec_cli.errors import SimrecError
from simrec_cli.settings import Settings, load_settings, packaged_presets, settings_from_dict, settings_to_dict
from simrec_cli.settings import train as train_settings
from simrec_cli.settings.train import EvaluationSettings

EXPECTED_PRESETS = {
    "refcoco-scratch",
    "refcoco+-scratch",
    "refcocog-scratch",
    "referit-scratch",
    "merge-pretrain",
    "refcoco-finetune",
    "mcn-refcoco-scratch",
    "synthetic-tiny",
}


def test_all_eight_presets_are_packaged_and_validate() -> None:
    assert set(packaged_presets()) == EXPECTED_PRESETS
    for name in EXPECTED_PRESETS:
        assert isinstance(load_settings(name), Settings)


def test_defaults_match_simrec_train_block() -> None:
    train = Settings().train
    assert (train.epochs, train.warmup_epochs) == (25, 3)
    assert (train.base_lr, train.warmup_lr, train.min_lr) == (1e-4, 1e-7, 1e-6)
    assert train.clip_grad_norm == 0.15
    assert train.seed == 123456
    assert train.ema.alpha == 0.9997 and train.ema.enabled
    assert train.multi_scale_training.img_scales[0] == (224, 224)
    assert train.multi_scale_training.img_scales[-1] == (608, 608)
    assert len(train.multi_scale_training.img_scales) == 13
    assert Settings().dataset.max_token_length == 15
    assert Settings().optim.betas == (0.9, 0.98) and Settings().optim.eps == 1e-9


def test_evaluation_protocols_are_the_engines_and_the_original_is_the_default() -> None:
    field = EvaluationSettings.model_fields["protocol"]
    assert set(get_args(field.annotation)) == set(PROTOCOLS)
    assert Settings().train.evaluation.protocol == ORIGINAL.name
    assert load_settings(None, ["train.evaluation.protocol=clipped"]).train.evaluation.protocol == "clipped"


def test_inheritance_overrides_only_what_the_child_sets() -> None:
    base = load_settings("refcoco-scratch")
    child = load_settings("refcocog-scratch")
    assert child.dataset.name == "refcocog"
    assert child.train.batch_size == base.train.batch_size == 32
    finetune = load_settings("refcoco-finetune")
    assert finetune.train.batch_size == 4
    assert finetune.train.vl_pretrain_weight == Path("./data/weights/SimREC_pretrain_merge.pth")
    assert finetune.model.visual_backbone.pretrained is False


def test_user_preset_file_with_base_and_relative_chain(tmp_path: Path) -> None:
    parent = tmp_path / "parent.yaml"
    parent.write_text("base: refcoco-scratch\ntrain:\n  epochs: 7\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: parent.yaml\ntrain:\n  batch_size: 16\n")
    settings = load_settings(child)
    assert (settings.train.epochs, settings.train.batch_size, settings.train.log_period) == (7, 16, 10)


@pytest.mark.parametrize(
    ("override", "getter", "expected"),
    [
        ("train.sync_bn.enabled=true", lambda s: s.train.sync_bn.enabled, True),
        ("train.batch_size=64", lambda s: s.train.batch_size, 64),
        ("train.base_lr=3e-4", lambda s: s.train.base_lr, 3e-4),
        ("dataset.name=refcoco+", lambda s: s.dataset.name, "refcoco+"),
        ("train.output_dir=/tmp/run", lambda s: s.train.output_dir, Path("/tmp/run")),
        ("train.resume_path=", lambda s: s.train.resume_path, None),
        ("dataset.input_shape=[320,320]", lambda s: s.dataset.input_shape, (320, 320)),
        (
            "train.multi_scale_training.img_scales=[[320,320],[416,416]]",
            lambda s: s.train.multi_scale_training.img_scales,
            [(320, 320), (416, 416)],
        ),
        ("train.ema={enabled: false}", lambda s: s.train.ema.enabled, False),
        ("dataset.name=refclef", lambda s: s.dataset.name, "referit"),
    ],
)
def test_override_value_types(override: str, getter, expected) -> None:
    assert getter(load_settings("refcoco-scratch", [override])) == expected


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["train.sync_bn.enabeld=true"], "train.sync_bn.enabled"),
        (["train.batch_size=abc"], "train.batch_size"),
        (["dataset.input_shape=[415,415]"], "multiple of 32"),
        (["train.multi_scale_training.img_scales=[[300,300]]"], "multiple of 32"),
        (["train.warmup_epochs=30"], "shorter than train.epochs"),
        (["train.min_lr=1"], "must not exceed train.base_lr"),
        (["dataset.eval_splits=[testC]"], "split 'testC' does not exist in refcoco"),
        (["dataset.name=refcocog", "dataset.val_split=testA"], "split 'testA'"),
        (["model.language_encoder.num_heads=7"], "divisible by num_heads"),
        (["noequals"], "is not KEY=VALUE"),
        (["train.evaluation.protocol=loose"], "train.evaluation.protocol"),
    ],
)
def test_bad_settings_raise_one_clear_error(overrides: list[str], fragment: str) -> None:
    with pytest.raises(SimrecError) as excinfo:
        load_settings("refcoco-scratch", overrides)
    assert fragment in str(excinfo.value)


def test_missing_preset_and_yaml_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"preset 'refcoco-scrach' not found.*refcoco-scratch"):
        load_settings("refcoco-scrach")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  batch_size: [1, 2\n")
    with pytest.raises(SimrecError, match=r"preset .*broken\.yaml has a YAML syntax error at line \d+"):
        load_settings(broken)


@pytest.mark.parametrize(
    ("base", "found"),
    [("[refcoco-scratch]", "\\['refcoco-scratch'\\]"), ("5", "5"), ("{name: x}", "a mapping of 1 entry"),
     ("true", "true"), ("null", "null"), ("''", "''")],
)  # fmt: skip
def test_a_base_that_is_not_a_name_is_one_line(tmp_path: Path, base: str, found: str) -> None:
    """Issue 22 #8: a list, number, mapping or boolean as `base:` was a traceback."""
    preset = tmp_path / "p.yaml"
    preset.write_text(f"base: {base}\ntrain:\n  epochs: 3\n")
    with pytest.raises(SimrecError, match=rf"p\.yaml: field base: expected .*, found {found}"):
        load_settings(preset)


def test_a_relative_base_that_is_a_folder_is_named_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 #18: it was reported as "not found"."""
    (tmp_path / "presets" / "common").mkdir(parents=True)
    child = tmp_path / "presets" / "child.yaml"
    child.write_text("base: common\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SimrecError, match=r"preset .*presets/common is a folder, not a file") as error:
        load_settings(child)
    assert "not a folder" in (error.value.hint or "")


def test_symbolic_link_loops_are_named_as_such(tmp_path: Path) -> None:
    """Issue 22 #19: a preset or a `base:` that is a link to itself was reported as missing."""
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(SimrecError, match=r"preset .*loop\.yaml is a symbolic link loop"):
        load_settings(loop)
    child = tmp_path / "child.yaml"
    child.write_text("base: loop.yaml\n")
    with pytest.raises(SimrecError, match=r"preset .*loop\.yaml is a symbolic link loop"):
        load_settings(child)


def test_yaml_merge_keys_and_anchors_work_in_a_preset(tmp_path: Path) -> None:
    """Issue 22 #33: a merge key (`<<`) was reported as a YAML syntax error."""
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "base: synthetic-tiny\n"
        "train:\n"
        "  ema: &off {enabled: false}\n"
        "  sync_bn: *off\n"
        "  <<: {batch_size: 6, epochs: 3}\n"
        "  epochs: 5\n"
    )
    settings = load_settings(preset)
    assert (settings.train.batch_size, settings.train.epochs) == (6, 5)  # the mapping's own key wins
    assert not settings.train.ema.enabled and not settings.train.sync_bn.enabled


def test_unknown_key_inside_preset_file_suggests(tmp_path: Path) -> None:
    preset = tmp_path / "typo.yaml"
    preset.write_text("train:\n  bach_size: 4\n")
    with pytest.raises(SimrecError, match=r"unknown setting 'train\.bach_size'.*train\.batch_size"):
        load_settings(preset)


def test_inheritance_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(SimrecError, match="inherits from itself"):
        load_settings(tmp_path / "a.yaml")


def test_round_trip_through_plain_dict() -> None:
    settings = load_settings("mcn-refcoco-scratch", ["train.batch_size=16"])
    assert settings_from_dict(settings_to_dict(settings)) == settings


def test_world_size_check() -> None:
    settings = load_settings("refcoco-scratch")
    settings.check_world_size(4)
    with pytest.raises(SimrecError, match="not divisible by 3 processes"):
        settings.check_world_size(3)


def test_resolved_paths_follow_data_root() -> None:
    dataset = load_settings("referit-scratch", ["dataset.data_root=/d"]).dataset
    assert dataset.resolved_ann_path() == Path("/d/anns/refclef.json")
    assert dataset.resolved_image_path() == Path("/d/images/refclef")
    assert dataset.resolved_eval_splits() == ["val", "test"]
    assert load_settings("refcoco-scratch").dataset.resolved_eval_splits() == ["val", "testA", "testB"]


def _float_settings(model: type = Settings, prefix: str = "") -> list[tuple[str, object]]:
    """Every dotted float setting with a value of its shape: a float, or a list of floats for tuple fields."""
    found: list[tuple[str, object]] = []
    for name, field in model.model_fields.items():
        annotation, path = field.annotation, f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(_float_settings(annotation, f"{path}."))
        elif annotation is float:
            found.append((path, None))
        elif get_origin(annotation) is tuple and all(arg is float for arg in get_args(annotation)):
            found.append((path, len(get_args(annotation))))
    return found


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_every_float_setting_must_be_finite(value: str) -> None:
    settings = _float_settings()
    assert len(settings) >= 15 and ("train.base_lr", None) in settings
    for key, length in settings:
        raw = value if length is None else "[" + ",".join([value] * length) + "]"
        with pytest.raises(SimrecError) as excinfo:
            load_settings(None, [f"{key}={raw}"])
        assert key in str(excinfo.value) and "finite" in str(excinfo.value), (key, str(excinfo.value))


@pytest.mark.parametrize(("cores", "processes", "expected"), [(2, 1, 2), (64, 1, 8), (16, 8, 2), (4, 8, 0)])
def test_loader_workers_follow_the_cores_unless_set(
    monkeypatch: pytest.MonkeyPatch, cores: int, processes: int, expected: int
) -> None:
    """auto gives each process of a node its share of the usable cores, at most SimREC's 8; a number is kept."""
    monkeypatch.setattr(train_settings, "usable_cores", lambda: cores)
    for preset in ("mcn-refcoco-scratch", "refcoco-scratch"):  # no preset fixes the count but synthetic-tiny (0)
        assert load_settings(preset).train.data.resolved_num_workers(processes) == expected
    assert load_settings("synthetic-tiny").train.data.resolved_num_workers(processes) == 0
    assert load_settings(None, ["train.data.num_workers=12"]).train.data.resolved_num_workers(processes) == 12
    with pytest.raises(SimrecError, match="num_workers"):
        load_settings(None, ["train.data.num_workers=many"])
