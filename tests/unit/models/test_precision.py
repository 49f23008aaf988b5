"""`auto` picks bf16 only where the hardware runs it natively; impossible requests are one clear error."""

from __future__ import annotations

import pytest
import torch

from simrec_cli.commands.common import chosen_precision
from simrec_cli.errors import SimrecError
from simrec_cli.models import precision
from simrec_cli.models.precision import resolve_precision

CPU = torch.device("cpu")


@pytest.fixture
def cpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    monkeypatch.setattr(precision, "_torch_cpu_probe", lambda name: False)


@pytest.fixture
def cpu_with_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16", "amx_int8"}))
    monkeypatch.setattr(precision, "_torch_cpu_probe", lambda name: False)  # the flags alone decide


def test_auto_is_fp32_where_bf16_would_be_emulated(cpu_without_bf16: None) -> None:
    choice = resolve_precision("auto", CPU)
    assert choice.name == "fp32" and choice.autocast_dtype is None
    assert "emulated" in choice.describe()


def test_auto_is_bf16_on_a_cpu_with_native_bf16(cpu_with_amx: None) -> None:
    choice = resolve_precision("auto", CPU)
    assert choice.name == "bf16" and choice.autocast_dtype is torch.bfloat16
    assert choice.describe().startswith("bf16 (auto:")


def test_auto_follows_torchs_probe_when_the_flags_are_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(precision, "_torch_cpu_probe", lambda name: name == "_is_amx_tile_supported")
    assert resolve_precision("auto", CPU).name == "bf16"


def test_explicit_precisions_are_kept(cpu_without_bf16: None) -> None:
    assert resolve_precision("bf16", CPU).name == "bf16"
    assert resolve_precision("fp32", CPU).describe() == "fp32 (as asked)"


def test_unknown_precision_names_the_choices() -> None:
    with pytest.raises(SimrecError, match="unknown precision 'int8'") as raised:
        resolve_precision("int8", CPU)
    assert "auto, fp32, bf16" in (raised.value.hint or "")


def test_half_is_an_alias_for_bf16() -> None:
    assert chosen_precision("auto", half=True) == "bf16"
    assert chosen_precision("bf16", half=True) == "bf16"
    assert chosen_precision("fp32", half=False) == "fp32"
    with pytest.raises(SimrecError, match="contradict"):
        chosen_precision("fp32", half=True)
