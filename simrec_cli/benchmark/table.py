"""The benchmark's result as a table for the terminal, and as CSV (JSON is `BenchmarkResult.as_dict`)."""

from __future__ import annotations

import csv
import io

from simrec_cli.benchmark.runner import BenchmarkResult, BenchmarkRow

MISSING = "—"


def table_columns(batch: int) -> list[str]:
    return ["format", "runtime", "precision", "size MB", "Acc@0.5", "vs fp32", "IoU>=0.99 %", "gate", "ms batch 1",
            f"img/s batch {batch}", "note"]  # fmt: skip


def _cell(value: object, signed: bool = False) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:+.2f}" if signed else f"{value:.2f}" if value < 100 else f"{value:.1f}"
    return str(value)


def table_row(row: BenchmarkRow) -> list[str]:
    return [row.format, row.runtime, row.precision, _cell(row.size_mb), _cell(row.acc50), _cell(row.acc50_delta, True),
            _cell(row.agreement), _cell(row.gate), _cell(row.ms_batch1), _cell(row.images_per_s), row.note]  # fmt: skip


def machine_line(result: BenchmarkResult) -> str:
    """What the figures were measured on: the GPU's name, or the CPU, its speed flags and the threads."""
    machine = result.machine
    if "gpu" in machine:
        return f"GPU: {machine['gpu']}"
    flags = ", ".join(machine.get("cpu_flags", [])) or "none of the bf16/int8 flags"
    return f"CPU: {machine.get('cpu') or 'unknown'} ({flags}), {machine.get('threads')} threads"


def to_csv(result: BenchmarkResult) -> str:
    """One row per candidate with every figure, plus the machine (a spreadsheet's shape)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(BenchmarkRow.__dataclass_fields__)
    writer.writerow([*fields, "split", "expressions", "batch", "machine"])
    for row in result.rows:
        values = [getattr(row, name) for name in fields]
        writer.writerow(["" if value is None else value for value in values] +
                        [result.split, result.expressions, result.batch, machine_line(result)])  # fmt: skip
    return buffer.getvalue()
