"""The CLI as a user runs it: help, version, config show, presets, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from typer.testing import CliRunner

from simrec_cli import __version__
from simrec_cli.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_verb() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("prepare-data", "train", "eval", "resume", "predict", "export", "config", "presets"):
        assert verb in result.output


def test_help_shows_defaults_written_in_brackets() -> None:
    """Option help that names its default in square brackets keeps them (rich markup would swallow them)."""
    train = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    prepare = CliRunner().invoke(app, ["prepare-data", "--help"], env={"COLUMNS": "250"}).output
    assert "[default: 1, or the SLURM job's]" in train and "[default: 0, or SLURM_NODEID]" in train
    assert "[default: 2000]" in prepare and "[default: 160]" in prepare


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_config_show_prints_overrides_and_every_train_default() -> None:
    result = runner.invoke(
        app, ["config", "show", "--preset", "refcoco-scratch", "train.sync_bn.enabled=true", "train.batch_size=64"]
    )
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    train = resolved["train"]
    assert train["sync_bn"]["enabled"] is True and train["batch_size"] == 64
    expected_keys = {
        "output_dir", "warmup_epochs", "epochs", "base_lr", "warmup_lr", "min_lr", "batch_size", "evaluation",
        "log_period", "save_period", "data", "scheduler", "amp", "ddp", "ema", "sync_bn", "clip_grad_norm",
        "auto_resume", "resume_path", "vl_pretrain_weight", "multi_scale_training", "log_image", "seed",
    }  # fmt: skip
    assert expected_keys <= set(train)
    assert set(train["evaluation"]) == {"eval_batch_size", "sequential", "protocol"}
    assert {"pin_memory", "num_workers", "mean", "std"} <= set(train["data"])
    assert {"name", "decay_epochs", "lr_decay_rate"} <= set(train["scheduler"])
    assert {"enabled", "alpha", "buffer_ema"} <= set(train["ema"])
    assert {"enabled", "img_scales"} <= set(train["multi_scale_training"])
    assert set(resolved) == {"model", "dataset", "train", "optim"}


def test_presets_lists_all_eight() -> None:
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    for name in ("refcoco-scratch", "refcoco+-scratch", "refcocog-scratch", "referit-scratch", "merge-pretrain",
                 "refcoco-finetune", "mcn-refcoco-scratch", "synthetic-tiny"):  # fmt: skip
        assert name in result.output


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "simrec_cli", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def test_user_errors_are_one_line_exit_2_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    cases = [
        (["train.sync_bn.enabeld=true"], "train.sync_bn.enabled"),
        (["train.batch_size=abc"], "train.batch_size"),
        (["dataset.input_shape=[415,415]"], "415"),
    ]
    for overrides, fragment in cases:
        result = _run_cli("config", "show", "--preset", "refcoco-scratch", *overrides, cwd=tmp_path)
        assert result.returncode == 2
        assert fragment in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for preset, fragment in [("no-such-preset", "no-such-preset"), (str(broken), "YAML syntax error")]:
        result = _run_cli("config", "show", "--preset", preset, cwd=tmp_path)
        assert result.returncode == 2 and fragment in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_error_lines_keep_square_brackets(tmp_path: Path) -> None:
    result = _run_cli("config", "show", "--preset", "[my]-preset", cwd=tmp_path)
    assert result.returncode == 2 and "preset '[my]-preset' not found" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _run_cli("--debug", "config", "show", "--preset", "no-such-preset", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_wheel_ships_presets_usable_from_any_directory(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("simrec-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    # the repository keeps the presets at its top; the wheel ships every one of them inside the package
    in_repository = sorted(path.name for path in (REPO / "presets").glob("*.yaml"))
    assert len(in_repository) == 8 and not (REPO / "simrec_cli" / "presets").exists()
    assert sorted(name.removeprefix("simrec_cli/presets/") for name in names if "/presets/" in name) == in_repository
    page = {f"simrec_cli/serve/page/{name}" for name in ("index.html", "app.js", "style.css", "docs.html")}
    assert page <= set(names)  # the served page's files
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "COLUMNS": "200"}

    def installed_simrec(*argv: str) -> subprocess.CompletedProcess:
        """`simrec ARGV` from the unpacked wheel, in a folder that holds no presets; prints the package's path."""
        script = (
            "import simrec_cli, sys; print(simrec_cli.__file__); from simrec_cli.cli import main; "
            f"sys.argv={['simrec', *argv]!r}; main()"
        )
        command = [sys.executable, "-c", script]
        return subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, env=env, check=False)

    result = installed_simrec("presets")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "site") in result.stdout.splitlines()[0]
    assert "synthetic-tiny" in result.stdout
    shown = installed_simrec("config", "show", "--preset", "refcoco-finetune")
    assert shown.returncode == 0, shown.stderr
    assert "vl_pretrain_weight" in shown.stdout  # a preset with `base:` resolved from the installed package
