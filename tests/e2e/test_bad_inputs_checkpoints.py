"""Bad-input catalogue, checkpoints: every kind of wrong file, given to each verb that reads a checkpoint.

Text, random bytes, an empty or truncated file, pickles that would run code (torch's zip format, its legacy
format, a plain pickle), bare weights, a foreign dict, a newer format, weights that do not fit their
settings, missing entries, NaN weights, settings that do not validate, a folder and a missing path: each is
refused by predict, eval, export and resume with one line naming the file, and no code from it runs.
"""

from __future__ import annotations

import gzip
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.e2e.bad_inputs import Places, Row, RunsCode, judge

BAD = "bad.pth"


def _real(p: Places) -> dict:
    return torch.load(p.checkpoint, weights_only=True)


def _save(p: Places, payload: object, **options: object) -> None:
    torch.save(payload, p.tmp / BAD, **options)


def _edited(edit: Callable[[dict], object]) -> Callable[[Places], None]:
    def write(p: Places) -> None:
        payload = _real(p)
        edit(payload)
        _save(p, payload)

    return write


def _wider(payload: dict) -> None:
    """Settings that describe a wider language encoder than the weights hold."""
    encoder = payload["settings"]["model"]["language_encoder"]
    encoder["hidden_size"] *= 2


def _nan_weights(payload: dict) -> None:
    name = next(key for key, value in payload["model"].items() if value.is_floating_point())
    payload["model"][name] = torch.full_like(payload["model"][name], float("nan"))
    if payload.get("ema"):
        payload["ema"]["weights"][name] = payload["model"][name]


KINDS: dict[str, tuple[Callable[[Places], object], str]] = {  # how to write it, what the error line says
    "text": (lambda p: (p.tmp / BAD).write_text("this is not a checkpoint\n"), "not a readable checkpoint"),
    "random bytes": (lambda p: (p.tmp / BAD).write_bytes(random.Random(0).randbytes(4096)), "not a readable"),
    "empty": (lambda p: (p.tmp / BAD).write_bytes(b""), "not a readable checkpoint"),
    "truncated": (lambda p: (p.tmp / BAD).write_bytes(p.checkpoint.read_bytes()[:50_000]), "not a readable"),
    "pickle payload in zip format": (lambda p: _save(p, {"kind": RunsCode(p.tmp / "ran")}), "would call"),
    "pickle payload in legacy format": (
        lambda p: _save(p, {"kind": RunsCode(p.tmp / "ran")}, _use_new_zipfile_serialization=False),
        "would call",
    ),
    "plain pickle payload": (
        lambda p: (p.tmp / BAD).write_bytes(pickle.dumps({"model": RunsCode(p.tmp / "ran")}, protocol=2)),
        "would call",
    ),
    "gzip of a checkpoint": (
        lambda p: (p.tmp / BAD).write_bytes(gzip.compress(p.checkpoint.read_bytes())),
        "not a readable",
    ),
    "bare weights": (lambda p: _save(p, {"state_dict": _real(p)["model"]}), "bare model weights"),
    "foreign dict": (lambda p: _save(p, {"weights": torch.zeros(3), "epoch": 3}), "not a simrec checkpoint"),
    "newer format": (_edited(lambda c: c.update(format_version=99)), "newer simrec"),
    "weights wider than settings": (_edited(_wider), "with another shape"),
    "vocabulary missing": (_edited(lambda c: c.pop("vocabulary")), "lacks vocabulary"),
    "vocabulary empty": (_edited(lambda c: c.update(vocabulary=[])), "a vocabulary must start with"),
    "epoch not a count": (_edited(lambda c: c.update(epoch="two")), "its epoch is 'two', not a count"),
    "weights hold nan": (_edited(_nan_weights), "NaN or infinity"),
    "settings invalid": (_edited(lambda c: c["settings"]["train"].update(batch_size=-4)), "train.batch_size"),
    "folder": (lambda p: (p.tmp / BAD).mkdir(), "is a folder"),
    "missing": (lambda p: None, "does not exist"),
}

VERBS: dict[str, Callable[[Places, Path], list[object]]] = {
    "predict": lambda p, path: [
        "predict",
        p.image,
        "the red circle",
        "--checkpoint",
        path,
        "--no-save",
        "--device",
        "cpu",
    ],
    "eval": lambda p, path: ["eval", path, "--device", "cpu"],
    "export": lambda p, path: ["export", path, "-o", path.with_name("model.onnx")],
    "resume": lambda p, path: ["resume", path, "--device", "cpu"],
}


def _in_a_run(write: Callable[[Places], object]) -> Callable[[Places], None]:
    """`write`, in a folder marked as a simrec run (resume continues only in one), so the checkpoint is judged."""

    def prepare(p: Places) -> None:
        (p.tmp / "run.json").write_text('{"format": "simrec-run-v1"}')
        write(p)

    return prepare


def _row(verb: str, kind: str) -> Row:
    write, says = KINDS[kind]
    if (verb, kind) == ("resume", "folder"):
        says = "holds no last.pth"
    prepare = _in_a_run(write) if verb == "resume" else write
    return Row(f"{verb} {kind}", lambda p: VERBS[verb](p, p.tmp / BAD), lambda p: p.tmp / BAD, prepare, says=says)


ROWS = [_row(verb, kind) for verb in VERBS for kind in KINDS]


@pytest.mark.parametrize("row", [row.param() for row in ROWS])
def test_bad_checkpoint(row: Row, places: Places) -> None:
    judge(row, places)
    assert not (places.tmp / "ran").exists()  # no code from the file ran
