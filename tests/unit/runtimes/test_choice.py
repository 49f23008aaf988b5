"""How `--runtime auto` weighs measured speeds against set-up, and how its record is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from simrec_cli.runtimes.choice import SpeedRecord, cache_dir, fastest, measured_reason

SIGNATURE = {"model": {"name": "simrec"}, "input_shape": [416, 416], "tokens": 15, "vocabulary": 10_000}


def record(tmp_path: Path) -> SpeedRecord:
    return SpeedRecord(tmp_path / "r.json", {"torch": 0.100, "openvino": 0.050}, {"torch": 0.5, "openvino": 1.0})


@pytest.mark.parametrize(("rows", "openvino_setup_s", "expected"), [
    (1, 1.0, "torch"),  # torch is loaded already: 0.1 s against 1.05 s
    (100, 1.0, "openvino"),  # 10 s against 6 s
    (None, 1.0, "openvino"),  # a server: only the rate counts
    (100, 31.0, "torch"),  # converting the checkpoint first: 10 s against 36 s
    (1000, 31.0, "openvino"),  # 100 s against 81 s
])  # fmt: skip
def test_the_choice_weighs_set_up_against_the_expressions_to_answer(
    tmp_path: Path, rows: int | None, openvino_setup_s: float, expected: str
) -> None:
    setup = {"torch": 0.0, "openvino": openvino_setup_s}
    assert fastest(record(tmp_path), ["torch", "openvino"], rows, setup) == expected


def test_the_reason_gives_the_measured_figures(tmp_path: Path) -> None:
    reason = measured_reason(record(tmp_path), "openvino", ["torch", "openvino"], None)
    assert reason == "auto: fastest measured on this machine, 50 ms per image against torch 100 ms"
    assert "for 100 expressions, set-up included" in measured_reason(record(tmp_path), "torch", ["torch"], 100)
    tiny = SpeedRecord(tmp_path / "t.json", {"torch": 0.0131, "openvino": 0.0042})
    assert measured_reason(tiny, "torch", ["torch", "openvino"], 1).endswith(
        "1 expression, set-up included, 13 ms per image against openvino 4.2 ms"
    )


def test_a_record_is_kept_per_model_and_precision_and_a_damaged_one_is_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMREC_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    written = SpeedRecord.open(SIGNATURE, "bf16")
    written.row_seconds.update(torch=0.1, openvino=0.05)
    assert written.save() is None and written.path.parent == tmp_path / "cache" / "speed"
    assert SpeedRecord.open(SIGNATURE, "bf16").row_seconds == {"torch": 0.1, "openvino": 0.05}
    assert SpeedRecord.open(SIGNATURE, "fp32").row_seconds == {}
    assert SpeedRecord.open({**SIGNATURE, "input_shape": [256, 256]}, "bf16").row_seconds == {}
    written.path.write_text("{not json")
    assert SpeedRecord.open(SIGNATURE, "bf16").row_seconds == {}


def test_an_unwritable_cache_is_a_reason_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SIMREC_CACHE_DIR", str(blocker / "cache"))
    kept = SpeedRecord.open(SIGNATURE, "fp32")
    kept.row_seconds["torch"] = 0.1
    assert kept.save()
