"""File plumbing shared by the data modules: atomic writes, readable JSON errors, writable-folder checks.

Every output is written to a temporary file in the target folder and renamed into place, so an interrupted
run leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from simrec_cli.errors import SimrecError


def ensure_writable_dir(folder: Path, what: str) -> None:
    """Create `folder` and prove it accepts files, so a bad output path fails before any work is done."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise SimrecError(
            f"cannot write the {what} to {folder}: {exc.strerror or exc}",
            "choose a writable folder (e.g. --output-dir) or fix its permissions",
        ) from exc


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _temporary_beside(path: Path, mode: str) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed only after a clean write
        mode, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            yield handle
        os.chmod(handle.name, 0o666 & ~_current_umask())  # mkstemp makes 0600; keep the usual file mode
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def atomic_write(path: Path, write: Callable[[IO[Any]], None], binary: bool = False) -> None:
    """Run `write` on a temporary file beside `path`, then rename it over `path`."""
    try:
        with _temporary_beside(path, "wb" if binary else "w") as handle:
            write(handle)
    except OSError as exc:
        raise SimrecError(f"cannot write {path}: {exc.strerror or exc}", "check the folder's permissions") from exc


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as compact JSON. `json.dumps` encodes in C; `json.dump` would run Python's encoder and
    write each of millions of small pieces through the temporary file's wrapper, about 8x slower."""
    atomic_write(path, lambda handle: handle.write(json.dumps(data, separators=(",", ":"))))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array), binary=True)


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, turning a missing or malformed file into one line that names it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise SimrecError(f"{what} file {path} does not exist", "check the path") from exc
    except OSError as exc:
        raise SimrecError(f"cannot read {what} file {path}: {exc.strerror}", "check its permissions") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimrecError(f"{what} file {path} is not valid JSON: {exc}", "re-create or re-download it") from exc


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a fully written folder into place, removing the previous one only after the swap."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    if old.exists():
        shutil.rmtree(old)
