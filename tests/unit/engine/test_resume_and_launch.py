"""Resume settings rules, checkpoint refusal and the process plan (no data or model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simrec_cli.engine.checkpoint import read_checkpoint
from simrec_cli.engine.launcher import LaunchRequest, plan_processes
from simrec_cli.engine.resume import checkpoint_in, merge_for_resume
from simrec_cli.errors import SimrecError
from simrec_cli.settings import load_settings
from tests.network import free_port


def test_resume_takes_safe_keys_and_refuses_the_rest(tmp_path: Path) -> None:
    stored = load_settings("synthetic-tiny", ["train.output_dir=runs/a"])
    requested = load_settings("synthetic-tiny", ["train.output_dir=runs/a", "train.epochs=30", "dataset.data_root=/x"])
    merged = merge_for_resume(stored, requested, tmp_path / "last.pth")
    assert merged.train.epochs == 30 and merged.dataset.data_root == Path("/x")
    changed = load_settings("synthetic-tiny", ["train.output_dir=runs/a", "train.batch_size=16"])
    with pytest.raises(SimrecError, match=r"train.batch_size is 8 in .*last.pth but 16 now"):
        merge_for_resume(stored, changed, tmp_path / "last.pth")


def test_checkpoint_refusals(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pth")
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(SimrecError, match="not a readable checkpoint"):
        read_checkpoint(text)
    original = tmp_path / "simrec_original.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, original)
    with pytest.raises(SimrecError, match=r"original SimREC checkpoint.*vl_pretrain_weight"):
        read_checkpoint(original)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(SimrecError, match="not a simrec checkpoint"):
        read_checkpoint(foreign)
    good = tmp_path / "good.pth"
    torch.save({"kind": "simrec-checkpoint", "format_version": 1}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(SimrecError, match="truncated"):
        read_checkpoint(truncated)


def test_checkpoint_in_run_directory(tmp_path: Path) -> None:
    with pytest.raises(SimrecError, match=r"holds no last\.pth"):
        checkpoint_in(tmp_path)
    (tmp_path / "last.pth").write_bytes(b"x")
    assert checkpoint_in(tmp_path) == tmp_path / "last.pth"


def test_process_plans() -> None:
    assert not plan_processes(LaunchRequest(), "cpu").needs_launcher
    plan = plan_processes(LaunchRequest(nproc=2), "cpu")
    assert plan.needs_launcher and plan.nproc_per_node == 2 and plan.world_size == 2
    assert plan_processes(LaunchRequest(max_restarts=1), "cpu").needs_launcher  # torchrun restarts even one process
    if not torch.cuda.is_available():
        with pytest.raises(SimrecError, match=r"--gpus 2 needs CUDA GPUs.*--device cpu --nproc N"):
            plan_processes(LaunchRequest(gpus=2), "auto")
    with pytest.raises(SimrecError, match="both given"):
        plan_processes(LaunchRequest(gpus=1, nproc=2), "cpu")
    with pytest.raises(SimrecError, match="node-rank"):
        plan_processes(LaunchRequest(nproc=1, nnodes=2, node_rank=2), "cpu")
    with pytest.raises(SimrecError, match="--max-restarts -1 is negative"):
        plan_processes(LaunchRequest(max_restarts=-1), "cpu")


def test_unknown_device_is_one_clear_error() -> None:
    from simrec_cli.engine.distributed import resolve_device

    with pytest.raises(SimrecError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    assert resolve_device("cpu").type == "cpu"


def test_atomic_writes_keep_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    from simrec_cli.storage.atomic import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def test_a_node_count_mismatch_leaves_the_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rank stopped by the node-count check must leave the group: one left joined aborts at exit (SIGABRT)."""
    import torch.distributed as dist

    from simrec_cli.engine import distributed

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv(distributed.EXPECTED_NODES_VARIABLE, "2")
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    monkeypatch.setattr(distributed, "all_gather_objects", lambda world, count: [count, count + 1])
    with pytest.raises(SimrecError, match="different --nnodes"), distributed.joined_world("cpu"):
        pytest.fail("the block must not run")
    assert not dist.is_initialized()
