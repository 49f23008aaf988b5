"""Finding and checking checkpoint files without importing torch.

Commands call these before they import the model code, so a wrong path is reported at once instead of after
the seconds that importing torch takes.
"""

from __future__ import annotations

from pathlib import Path

from simrec_cli.errors import SimrecError


def require_checkpoint_file(path: Path) -> Path:
    """`path` if it is a file; otherwise the error that names it."""
    path = Path(path)
    if path.is_dir():
        raise SimrecError(f"checkpoint {path} is a folder", f"give the path of a file in it, e.g. {path / 'best.pth'}")
    if not path.is_file():
        raise SimrecError(f"checkpoint {path} does not exist", "give the path of a last.pth or best.pth")
    return path


def require_model_file(path: Path) -> Path:
    """`path` if it is a checkpoint or an exported model that can be opened (an OpenVINO .xml with its .bin)."""
    path = Path(path)
    if path.suffix.lower() not in (".onnx", ".xml"):
        return require_checkpoint_file(path)
    if path.is_dir() or not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise SimrecError(f"model {path} {state}", "give an .onnx or .xml written by simrec export, or a checkpoint")
    weights = path.with_suffix(".bin")
    if path.suffix.lower() == ".xml" and not weights.is_file():
        raise SimrecError(f"{path} has no weights beside it ({weights.name} is missing)", "export the model again")
    return path


def newest_checkpoint(runs_root: Path = Path("runs")) -> Path:
    """The most recently written `best.pth` under `runs_root`, for `simrec predict` without --checkpoint."""
    candidates = [path for path in runs_root.glob("**/best.pth") if path.is_file()]
    if not candidates:
        raise SimrecError(
            f"no --checkpoint given and no best.pth found under {runs_root}/",
            "train one (simrec train --preset synthetic-tiny) or pass --checkpoint PATH",
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)
