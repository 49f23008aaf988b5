"""Inference on CPU keeps freed memory in the process, so a pass does not fault the last one's pages in again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from simrec_cli.models import inference
from simrec_cli.models.precision import PrecisionChoice

# Allocates and fills a 64 MiB tensor (above glibc's largest mmap threshold) twenty times, as a forward pass does
# with its large activations, and prints whether the setting took and the page faults of the last ten rounds (the
# heap settles over the first few).
ROUNDS = """
import resource, sys, torch
from simrec_cli.models.host_memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
faults = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(16 * 2**20).fill_(1.0)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, sum(faults[10:]))
"""
PAGES_PER_ROUND = 64 * 2**20 // 4096


def faults_of(mode: str, **environment: str) -> tuple[bool, int]:
    completed = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=120,
                               env={**os.environ, **environment}, check=True)  # fmt: skip
    applied, faults = completed.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_blocks_are_reused_without_faulting_again() -> None:
    assert faults_of("default") == (False, pytest.approx(10 * PAGES_PER_ROUND, rel=0.2))  # munmap, fault again
    applied, faults = faults_of("keep")
    assert applied and faults < PAGES_PER_ROUND // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_users_own_malloc_settings_win() -> None:
    applied, faults = faults_of("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert not applied and faults > 4 * PAGES_PER_ROUND
    assert faults_of("keep", GLIBC_TUNABLES="glibc.malloc.mmap_max=4")[0] is False


@pytest.mark.parametrize(("device", "kept"), [("cpu", True), ("meta", False)])
def test_only_an_inference_model_on_cpu_keeps_freed_memory(
    monkeypatch: pytest.MonkeyPatch, device: str, kept: bool
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(inference, "keep_freed_memory", lambda: calls.append(True) or True)
    inference.InferenceModel(nn.Identity(), torch.device(device), PrecisionChoice("fp32", "as asked"))
    assert calls == ([True] if kept else [])
