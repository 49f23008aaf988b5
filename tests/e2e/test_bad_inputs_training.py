"""Bad-input catalogue, training faults: what goes wrong once training has inputs to work on.

A loss that turns NaN, an image that cannot be decoded mid-epoch, weights to start from that are missing or
foreign, a checkpoint to resume from that is damaged, and a start that fails in every process under torchrun.
A fault after the run started may leave the run's log, settings and TensorBoard file, never a checkpoint or a
temporary file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch

from tests.e2e.bad_inputs import (
    Places,
    Row,
    RunsCode,
    changes,
    judge,
    own_anns,
    own_data,
    prepared_copy,
    replace_image,
    run_cli,
    snapshot,
    write_file,
)
from tests.e2e.conftest import TINY

Args = Callable[[Places], Sequence[object]]
STARTED_RUN = ("run", "run/run.json", "run/log.txt", "run/config.yaml", "run/events.out.tfevents.*")


def _train(*extra: object, data: Callable[[Places], Path] = lambda p: p.data) -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={data(p)}",
                      f"train.output_dir={p.tmp / 'run'}", *TINY, *extra]  # fmt: skip


def _first_train_image(p: Places) -> str:
    return f"{int(json.loads(own_anns(p).read_text())['train'][0]['iid']):06d}.jpg"


def _corrupt_train_image(p: Places) -> None:
    prepared_copy()(p)
    replace_image(p, _first_train_image(p), b"\xff\xd8\xff garbage, not a JPEG")


PAYLOAD = "payload.pth"
REFUSED = "when loaded; nothing in it ran (save only the weights"


def _payload_weights(p: Places) -> None:
    torch.save({"state_dict": {"fc.weight": RunsCode(p.tmp / "ran")}}, p.tmp / PAYLOAD)


def _run_with_damaged_last(p: Places) -> None:
    """A run directory of simrec's (its run.json) whose last.pth is damaged."""
    write_file("run/run.json", json.dumps({"format": "simrec-run-v1"}))(p)
    write_file("run/last.pth", b"PK\x03\x04 damaged")(p)


def _foreign_weights(p: Places) -> None:
    torch.save({"state_dict": {"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}}, p.tmp / "foreign.pth")


TRAINING = [
    Row("train loss becomes nan", _train("train.data.std=[1e-38,1e-38,1e-38]"), "epoch 1, step 1",
        says="last.pth was left as it was", may_create=STARTED_RUN),
    Row("train image corrupt mid-epoch", _train(data=own_data), _first_train_image, _corrupt_train_image,
        says="cannot be decoded", may_create=STARTED_RUN),
    Row("train start weights missing", lambda p: [*_train()(p), f"train.vl_pretrain_weight={p.tmp / 'nowhere.pth'}"],
        "nowhere.pth", says="does not exist"),
    # Issue 22 #17: a 500-character message quoting torch's advice, given only after the data and model were built.
    # The data root is missing too: the weights are named first, so they are checked before the data is read.
    Row("train start weights with a pickle payload", lambda p: [*_train()(p), f"dataset.data_root={p.tmp / 'none'}",
        f"train.vl_pretrain_weight={p.tmp / PAYLOAD}"], PAYLOAD, _payload_weights, says=REFUSED),
    Row("train start backbone weights with a pickle payload", lambda p: [*_train()(p),
        "model.visual_backbone.pretrained=true", f"model.visual_backbone.pretrained_weight_path={p.tmp / PAYLOAD}"],
        PAYLOAD, _payload_weights, says=REFUSED),
    Row("train start weights are text", lambda p: [*_train()(p), f"train.vl_pretrain_weight={p.tmp / 'w.pth'}"],
        "w.pth", write_file("w.pth", "not weights")),
    Row("train start weights of another model", lambda p: [*_train()(p),
        f"train.vl_pretrain_weight={p.tmp / 'foreign.pth'}"], "foreign.pth", _foreign_weights, says="refusing"),
    Row("train resume_path missing", lambda p: [*_train()(p), f"train.resume_path={p.tmp / 'gone.pth'}"],
        "gone.pth", says="does not exist"),
    Row("train auto-resume from a damaged last.pth", _train("train.auto_resume.enabled=true"), "last.pth",
        _run_with_damaged_last, says="not a readable checkpoint"),
    Row("train under torchrun without data", lambda p: [*_train()(p), f"dataset.data_root={p.tmp / 'none'}",
        "--nproc", "2"], "prepare-data", process=True),
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in TRAINING])
def test_training_fault(row: Row, places: Places) -> None:
    judge(row, places)  # a fault mid-run may leave the run's log and settings, never a checkpoint (see STARTED_RUN)


@pytest.mark.parametrize("verb", ["resume", "train"])
def test_a_finished_run_started_again_is_left_as_it_was(places: Places, verb: str) -> None:
    """`resume` of a run that trained all its epochs, or `train` into it again (which resumes it), says there is
    nothing to do and changes nothing in it: no new log lines, settings or TensorBoard file."""
    run = places.tmp / "run"
    shutil.copytree(places.run, run)
    args = ["resume", run, "--device", "cpu"] if verb == "resume" else _train("train.auto_resume.enabled=true")(places)
    before = snapshot(run)
    outcome = run_cli(args, places.tmp)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "nothing to do" in outcome.output and "Traceback" not in outcome.output
    assert changes(before, snapshot(run)) == []
