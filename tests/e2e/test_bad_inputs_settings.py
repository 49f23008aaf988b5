"""Bad-input catalogue, settings: overrides, preset files, and the options of the verbs that start work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.e2e.bad_inputs import Places, Row, judge
from tests.e2e.conftest import TINY

Args = Callable[[Places], Sequence[object]]


def _show(*overrides: str) -> Args:
    return lambda p: ["config", "show", "--preset", "synthetic-tiny", *overrides]


def _override(key_value: str, names: str, says: str = "") -> Row:
    return Row(f"override {key_value}", _show(key_value), names, says=says)


def _preset_file(text: str | bytes, name: str = "preset.yaml") -> Callable[[Places], None]:
    def write(p: Places) -> None:
        path = p.tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return write


def _with_preset(name: str = "preset.yaml") -> Args:
    return lambda p: ["config", "show", "--preset", p.tmp / name]


def _train(*extra: object, device: str = "cpu") -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", device, f"dataset.data_root={p.data}",
                      f"train.output_dir={p.tmp / 'run'}", *TINY, *extra]  # fmt: skip


OVERRIDES = [
    _override("train.batch_sise=4", "train.batch_size", "unknown setting"),
    _override("noequals", "noequals", "KEY=VALUE"),
    _override("=3", "=3", "KEY=VALUE"),
    _override("foo.bar=1", "foo.bar", "unknown setting"),
    _override("train.batch_size=abc", "train.batch_size"),
    _override("train.batch_size=0", "train.batch_size"),
    _override("train.epochs=-1", "train.epochs"),
    _override("train.base_lr=.inf", "train.base_lr", "finite"),
    _override("train.base_lr=.nan", "train.base_lr", "finite"),
    _override("train.clip_grad_norm=-.inf", "train.clip_grad_norm"),
    _override("train.data.mean=[0,.inf,0]", "train.data.mean", "finite"),
    _override("optim.eps=.nan", "optim.eps", "finite"),
    _override("train.ema.alpha=1e400", "train.ema.alpha", "finite"),  # YAML reads 1e400 as inf
    _override("dataset.input_shape=[415,415]", "input_shape", "multiple of 32"),
    _override("dataset.input_shape=[64]", "dataset.input_shape"),
    _override("train.warmup_epochs=30", "train.warmup_epochs"),
    _override("train.min_lr=1", "train.min_lr"),
    _override("dataset.eval_splits=[testC]", "testC"),
    _override("dataset.eval_splits=[val,val]", "dataset", "given twice"),
    _override("dataset.name=imagenet", "dataset.name"),
    _override("model.name=yolo", "model.name"),
    _override("optim.name=rmsprop", "optim.name"),
    _override("train.scheduler.name=bogus", "train.scheduler.name"),
    _override("train.epochs=[1", "train.epochs", "not valid YAML"),
    _override("train.sync_bn.enabled=maybe", "train.sync_bn.enabled"),
    _override("dataset.max_token_length=0", "dataset.max_token_length"),
    _override("train.batch_size=true", "train.batch_size", "not true or false"),  # pydantic would read it as 1
    _override("train.data.mean=[0.5,false,0.5]", "train.data.mean", "not true or false"),
    _override("train.checkpoint_every_steps=-1", "train.checkpoint_every_steps"),
    _override("train.checkpoint_every_steps=2.5", "train.checkpoint_every_steps"),
    _override("train.checkpoint_every_steps=.inf", "train.checkpoint_every_steps", "finite"),
    _override("dataset.input_shape=[-64,-64]", "dataset.input_shape", "positive multiple of 32"),
    _override("train.batch_size=", "train.batch_size"),
    _override("train.batch_size.x=1", "train.batch_size.x", "unknown setting"),
]

PRESETS = [
    Row(
        "preset name misspelt",
        lambda p: ["config", "show", "--preset", "synthetic-tiyn"],
        "synthetic-tiyn",
        says="did you mean synthetic-tiny",
    ),
    Row(
        "preset path is a folder", lambda p: ["config", "show", "--preset", p.tmp], lambda p: p.tmp, says="is a folder"
    ),
    Row(
        "preset yaml syntax error",
        _with_preset(),
        "preset.yaml",
        _preset_file("train:\n  batch_size: [1, 2\n"),
        says="YAML syntax error at line",
    ),
    Row("preset is a list", _with_preset(), "preset.yaml", _preset_file("- train\n- eval\n"), says="mapping"),
    Row("preset unknown key", _with_preset(), "train.batch_size", _preset_file("train:\n  batch_sise: 4\n")),
    Row(
        "preset non-finite float",
        _with_preset(),
        "train.base_lr",
        _preset_file("train:\n  base_lr: .inf\n"),
        says="finite",
    ),
    Row(
        "preset not utf-8", _with_preset(), "preset.yaml", _preset_file(b"train:\n  seed: \xff\xfe\n"), says="not UTF-8"
    ),
    Row("preset base missing", _with_preset(), "no-such-base", _preset_file("base: no-such-base\n")),
    Row(
        "preset key given twice",
        _with_preset(),
        "preset.yaml",
        _preset_file("train:\n  epochs: 4\n  epochs: 40\n"),
        says="'epochs' appears twice",
    ),
    Row(
        "preset section given twice",
        _with_preset(),
        "preset.yaml",
        _preset_file("train: {epochs: 4}\ntrain: {batch_size: 8}\n"),
        says="'train' appears twice",
    ),
    Row(
        "preset is a device file",
        lambda p: ["config", "show", "--preset", "/dev/null"],
        "/dev/null",
        says="not a regular file",
    ),
    Row(
        "preset inherits itself",
        _with_preset(),
        "preset.yaml",
        _preset_file("base: preset.yaml\n"),
        says="inherits from itself",
    ),
]

STARTS = [
    Row("train sync_bn on cpu", _train("train.sync_bn.enabled=true"), "train.sync_bn.enabled"),
    Row("train --gpus without cuda", _train("--gpus", "2"), "--gpus"),
    Row("train --nproc 0", _train("--nproc", "0"), "--nproc"),
    Row("train --device tpu", _train(device="tpu"), "train.device"),
    Row("train batch not divisible by processes", _train("--nproc", "2", "train.batch_size=3"),
        "train.batch_size=3"),
    Row("train output_dir is a file", _train(), lambda p: p.tmp / "run",
        lambda p: (p.tmp / "run").write_text("a file"), says="train.output_dir"),
    Row("train output_dir below a file", lambda p: [*_train()(p), f"train.output_dir={p.tmp / 'file' / 'run'}"],
        lambda p: p.tmp / "file", lambda p: (p.tmp / "file").write_text("a file"), says="is a file"),
    Row("train output_dir read-only", lambda p: [*_train()(p), f"train.output_dir={p.read_only / 'run'}"],
        "train.output_dir", needs_read_only=True, says="read-only"),
    Row("train batch larger than the split", _train("train.batch_size=4000"), "train.batch_size"),
    Row("train output_dir name too long", lambda p: [*_train()(p), f"train.output_dir={p.tmp / ('x' * 300)}"],
        "train.output_dir", says="File name too long"),
    Row("train missing word vectors file", _train("dataset.use_glove=true", "dataset.word_vectors=missing.txt"),
        "missing.txt"),
    Row("train output_dir holds a line break", lambda p: [*_train()(p), f"train.output_dir={p.tmp / 'a'}\nb"],
        "train.output_dir", says="holds a line break"),  # YAML read it as 'a b': a run in another folder, exit 0
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in OVERRIDES + PRESETS + STARTS])
def test_bad_setting(row: Row, places: Places) -> None:
    judge(row, places)


def test_a_failed_start_leaves_no_run_directory(places: Places, tmp_path: Path) -> None:
    """The run directory is removed again when the start fails after it was made (here: missing vectors)."""
    run_dir = tmp_path / "runs" / "deep" / "run"
    row = Row("fails after the run directory", lambda p: [*_train()(p), f"train.output_dir={run_dir}",
              "dataset.use_glove=true", "dataset.word_vectors=nowhere.txt"], "nowhere.txt")  # fmt: skip
    judge(row, places)
    assert not (tmp_path / "runs").exists()
