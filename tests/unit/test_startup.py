"""Start-up cost guards: what a command imports, checked in a fresh interpreter (no timing involved).

A module imported at the top of the wrong file costs every `simrec` call its import time (torchvision alone is
more than a second); these tests fail when such an import comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def modules_after(code: str) -> set[str]:
    """The names in sys.modules after running `code` in a new interpreter (which must print nothing else)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def run_cli(*args: str) -> str:
    """Code that runs `simrec ARGS` in-process and swallows its exit, for `modules_after`."""
    return (
        "import contextlib, io\n"
        "from simrec_cli.cli import main\n"
        f"sys.argv = ['simrec', *{list(args)!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )


def test_help_imports_neither_the_settings_nor_numpy_nor_torch() -> None:
    loaded = modules_after(run_cli("--help"))
    assert {"simrec_cli.commands.train", "simrec_cli.commands.predict"} <= loaded  # every verb's help was read
    assert not {"pydantic", "simrec_cli.settings", "numpy", "torch"} & loaded


def test_a_verb_imports_only_its_own_command_module() -> None:
    loaded = modules_after(run_cli("presets"))
    commands = {name for name in loaded if name.startswith("simrec_cli.commands.")}
    assert "simrec_cli.commands.config" in commands
    for other in ("predict", "train", "eval", "export", "prepare_data", "resume"):
        assert f"simrec_cli.commands.{other}" not in commands
    assert "torch" not in loaded


# Libraries of training, data preparation, export and compilation: none is needed to answer with a checkpoint.
UNUSED_BY_INFERENCE = ("torchvision", "albumentations", "tensorboard", "matplotlib", "scipy", "torchao", "onnx")
COMPILER_MODULES = ("torch._dynamo", "torch._inductor")


def test_the_predict_path_leaves_training_and_data_libraries_unimported() -> None:
    loaded = modules_after(
        "import simrec_cli.commands.predict\n"
        "import simrec_cli.predict.predictor\n"
        "import simrec_cli.engine.loading\n"
        "import simrec_cli.models.inference"
    )
    assert "torch" in loaded  # the check below is only meaningful once the model code is imported
    assert not [name for name in loaded if name.split(".")[0] in (*UNUSED_BY_INFERENCE, "pycocotools")]
    assert not set(COMPILER_MODULES) & loaded


def test_the_eval_path_imports_no_augmentation_or_training_library() -> None:
    loaded = modules_after("import simrec_cli.commands.eval\nimport simrec_cli.model_files.evaluation")
    assert "simrec_cli.data.dataset" in loaded
    assert not [name for name in loaded if name.split(".")[0] in UNUSED_BY_INFERENCE]
    assert not set(COMPILER_MODULES) & loaded


def test_a_missing_checkpoint_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"not read: the checkpoint is checked first")
    missing = tmp_path / "missing.pth"
    for args in (
        ("predict", str(image), "the dog", "--checkpoint", str(missing)),
        ("eval", str(missing)),
        ("export", str(missing)),
    ):
        assert "torch" not in modules_after(run_cli(*args)), args
