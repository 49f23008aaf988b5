"""`train.amp`: what each setting means on each device, `auto` deciding by the CPU's instructions."""

from __future__ import annotations

import pytest
import torch

from simrec_cli.engine import mixed_precision
from simrec_cli.engine.mixed_precision import training_precision
from simrec_cli.errors import SimrecError
from simrec_cli.settings import load_settings

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def amp(*overrides: str):  # type: ignore[no-untyped-def]
    return load_settings(None, list(overrides)).train.amp


@pytest.fixture
def cpu_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mixed_precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(mixed_precision, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16", "amx_bf16"}))


@pytest.fixture
def cpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mixed_precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(mixed_precision, "cpu_flags", lambda: frozenset({"avx2"}))


def test_fp32_is_the_default_whatever_the_cpu(cpu_with_amx: None) -> None:
    assert training_precision(amp(), CPU).describe() == "fp32 (train.amp.enabled=false)"


def test_auto_trains_in_bf16_on_a_cpu_with_native_bf16(cpu_with_amx: None) -> None:
    chosen = training_precision(amp("train.amp.enabled=auto"), CPU)
    assert chosen.dtype == torch.bfloat16 and not chosen.scales_gradients
    assert chosen.describe() == (
        "bf16 autocast (train.amp.enabled=auto: this CPU has amx_bf16, avx512_bf16; train.amp.enabled=false for fp32)"
    )


def test_auto_stays_fp32_where_bf16_is_emulated_and_on_gpus(cpu_without_bf16: None) -> None:
    auto = amp("train.amp.enabled=auto")
    assert training_precision(auto, CPU).describe() == "fp32 (train.amp.enabled=auto on this CPU has no native bf16)"
    on_gpu = training_precision(auto, GPU)
    assert on_gpu.dtype is None and "train.amp.enabled=true for AMP" in on_gpu.reason


def test_explicit_settings_win_over_the_hardware(cpu_with_amx: None) -> None:
    assert training_precision(amp("train.amp.enabled=false"), CPU).dtype is None
    half = training_precision(amp("train.amp.enabled=true", "train.amp.dtype=float16"), CPU)
    assert half.dtype == torch.float16 and half.scales_gradients
    assert training_precision(amp("train.amp.enabled=true", "train.amp.dtype=bfloat16"), GPU).dtype == torch.bfloat16


def test_other_values_are_refused() -> None:
    with pytest.raises(SimrecError, match=r"train\.amp\.enabled"):
        amp("train.amp.enabled=sometimes")
