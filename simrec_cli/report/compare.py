"""Runs side by side: results of each run's best checkpoint and the settings in which the runs differ.

A run is a run directory (`simrec train`'s output) or a checkpoint file. Its row holds the dataset, the best
epoch, Acc@0.5 of every split known for that checkpoint (the validation it was chosen by, and the splits of any
`simrec eval --report` written inside the run directory), the evaluation protocol those numbers were counted by
(engine/protocol.py; numbers of different protocols are not comparable, so they are named) and the parameter
count. The settings are flattened
to dotted keys (`train.batch_size`) and only those that differ are kept; `train.output_dir` is the run's name,
not a setting of the experiment, and is left out. A path that cannot be compared becomes one line in
`Comparison.problems`, and the others are still compared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.checkpoint import build_inference_model, checkpoint_settings, read_checkpoint
from simrec_cli.engine.protocol import UNNAMED
from simrec_cli.engine.rundir import read_metrics_rows
from simrec_cli.errors import SimrecError
from simrec_cli.model_files.loading import read_exported_metadata
from simrec_cli.runtimes.metadata import EXPORTED_SUFFIXES, ExportedFacts
from simrec_cli.schemas.reports import REPORT
from simrec_cli.settings import Settings, settings_to_dict

IGNORED_SETTINGS = frozenset({"train.output_dir"})
MISSING = "—"


@dataclass(frozen=True)
class RunSummary:
    """What the comparison shows of one run."""

    name: str
    checkpoint: Path
    run_dir: Path | None
    dataset: str
    best_epoch: int
    accuracies: dict[str, float]  # split -> Acc@0.5 (%)
    protocols: dict[str, str]  # split -> the evaluation protocol its accuracy was counted by
    parameters: int
    settings: dict[str, object]  # flattened, dotted keys
    curve: tuple[list[int], list[float]] | None = None  # epochs and val Acc@0.5 from metrics.csv


@dataclass
class Comparison:
    """The runs that could be read, one line per path that could not, and the settings that differ."""

    runs: list[RunSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def protocols(self) -> list[str]:
        """Every evaluation protocol behind the accuracies shown, in the order first seen."""
        return list(dict.fromkeys(name for run in self.runs for name in run.protocols.values()))

    @property
    def splits(self) -> list[str]:
        """Every split with a known accuracy, in the order first seen."""
        return list(dict.fromkeys(split for run in self.runs for split in run.accuracies))

    def differing_settings(self) -> dict[str, list[object]]:
        """Dotted key -> each run's value (MISSING where a run lacks the key), for keys whose values differ."""
        keys = dict.fromkeys(key for run in self.runs for key in run.settings if key not in IGNORED_SETTINGS)
        differing = {}
        for key in keys:
            values = [run.settings.get(key, MISSING) for run in self.runs]
            if any(value != values[0] for value in values[1:]):
                differing[key] = values
        return differing


def flatten(settings: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted keys; lists stay values (`train.multi_scale_training.img_scales`)."""
    flat: dict[str, object] = {}
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _checkpoint_of(path: Path) -> tuple[Path, Path | None]:
    """The checkpoint to read for `path` and the run directory it belongs to (None for a loose file)."""
    if path.is_dir():
        checkpoint = path / "best.pth"
        if not checkpoint.is_file():
            reason = "no finished epoch yet" if (path / "config.yaml").is_file() else "not a run directory"
            raise SimrecError(f"{path}: no best.pth ({reason})")
        return checkpoint, path
    if not path.exists():
        raise SimrecError(f"{path} does not exist")
    parent = path.parent
    is_run = (parent / "metrics.csv").is_file() or (parent / "config.yaml").is_file()
    return path, parent if is_run else None


def _report_accuracies(run_dir: Path, checkpoint: Path) -> dict[str, tuple[float, str]]:
    """Acc@0.5 and its protocol per split from reports of this checkpoint written inside the run directory."""
    found: dict[str, tuple[float, str]] = {}
    for report_file in sorted(run_dir.glob("*/report.json")):
        try:
            report = REPORT.read(report_file)
        except SimrecError:
            continue  # a damaged or foreign report adds nothing
        if Path(report["checkpoint_resolved"]) != checkpoint.resolve():
            continue
        for split in report["splits"]:
            metrics = split["metrics"]
            found.setdefault(split["split"], (metrics["acc50"], metrics.get("protocol", UNNAMED)))
    return found


def _curve(run_dir: Path | None) -> tuple[list[int], list[float]] | None:
    """Val Acc@0.5 per epoch from the run's metrics.csv; None without one (or with a damaged one: no curve)."""
    path = run_dir / "metrics.csv" if run_dir else None
    if path is None or not path.is_file():
        return None
    try:
        rows = [row for row in read_metrics_rows(path) if row.get("val_acc50")]
    except SimrecError:
        return None
    if not rows:
        return None
    return [int(row["epoch"]) for row in rows], [float(row["val_acc50"]) for row in rows]


def _checkpoint_facts(checkpoint: Path) -> tuple[Settings, Vocabulary, int, dict[str, tuple[float, str]]]:
    """Settings, vocabulary, best epoch and the validation accuracy stored in a checkpoint."""
    payload = read_checkpoint(checkpoint)
    settings = checkpoint_settings(payload, checkpoint)
    metrics = payload.get("metrics") or {}
    known: dict[str, tuple[float, str]] = {}
    if "acc50" in metrics:  # measured by training's validation, under the run's protocol
        known[settings.dataset.val_split] = (float(metrics["acc50"]), str(metrics.get("protocol", UNNAMED)))
    vocabulary = Vocabulary.from_list(list(payload["vocabulary"]))
    return settings, vocabulary, int(payload.get("best_epoch") or payload.get("epoch") or 0), known


def _exported_facts(path: Path) -> tuple[Settings, Vocabulary, int, dict[str, tuple[float, str]]]:
    """The same of an exported file, from its metadata: its accuracy is only what a report of it measured (the
    checkpoint's validation figure belongs to the checkpoint, not to the file as it runs)."""
    metadata = read_exported_metadata(path)
    facts = ExportedFacts.from_metadata(metadata, path)
    return facts.settings, facts.vocabulary, int(metadata.get("epoch") or 0), {}


def load_run(path: Path) -> RunSummary:
    """Read one run directory, checkpoint or exported file (.onnx, OpenVINO .xml); a path that is none of these
    raises SimrecError naming it."""
    checkpoint, run_dir = _checkpoint_of(path)
    exported = checkpoint.suffix.lower() in EXPORTED_SUFFIXES
    settings, vocabulary, best_epoch, known = (_exported_facts if exported else _checkpoint_facts)(checkpoint)
    if run_dir is not None:
        known.update({k: v for k, v in _report_accuracies(run_dir, checkpoint).items() if k not in known})
    model = build_inference_model(settings, vocabulary)
    if run_dir is None:
        name = str(checkpoint)
    else:
        name = run_dir.name if checkpoint.name == "best.pth" else f"{run_dir.name}/{checkpoint.name}"
    return RunSummary(
        name=name,
        checkpoint=checkpoint,
        run_dir=run_dir,
        dataset=settings.dataset.name,
        best_epoch=best_epoch,
        accuracies={split: accuracy for split, (accuracy, _) in known.items()},
        protocols={split: protocol for split, (_, protocol) in known.items()},
        parameters=sum(parameter.numel() for parameter in model.parameters()),
        settings=flatten(settings_to_dict(settings)),
        curve=_curve(run_dir),
    )


def _unique_names(runs: list[RunSummary], paths: Sequence[Path]) -> list[RunSummary]:
    """Runs whose names clash (two `best.pth` of folders with one name) are named by the path given."""
    names = [run.name for run in runs]
    return [
        run if names.count(run.name) == 1 else RunSummary(**{**run.__dict__, "name": str(path)})
        for run, path in zip(runs, paths, strict=True)
    ]


def compare_runs(paths: Sequence[Path]) -> Comparison:
    """Read every path; those that fail are listed in `problems`, the rest compared."""
    comparison = Comparison()
    read_paths = []
    for path in paths:
        try:
            comparison.runs.append(load_run(Path(path)))
            read_paths.append(Path(path))
        except SimrecError as error:
            comparison.problems.append(str(error))
    comparison.runs = _unique_names(comparison.runs, read_paths)
    return comparison


def format_value(value: object) -> str:
    """A setting's value as one short line (YAML-like: lists in brackets, None as null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def result_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The first table: header and one row per run."""
    header = ["run", "dataset", "best epoch", *(f"{split} Acc@0.5" for split in comparison.splits), "protocol",
              "parameters"]  # fmt: skip
    rows = [
        [run.name, run.dataset, str(run.best_epoch),
         *(f"{run.accuracies[s]:.2f}" if s in run.accuracies else MISSING for s in comparison.splits),
         ", ".join(dict.fromkeys(run.protocols.values())) or MISSING, f"{run.parameters:,}"]
        for run in comparison.runs
    ]  # fmt: skip
    return header, rows


def setting_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The second table: one row per differing setting, one column per run."""
    header = ["setting", *(run.name for run in comparison.runs)]
    rows = [
        [key, *(format_value(value) for value in values)] for key, values in comparison.differing_settings().items()
    ]
    return header, rows


def _markdown_cell(cell: str) -> str:
    """A cell that stays one cell on one line: a pipe in a run's name would end the cell, a line break (or any
    other control character, such as a terminal escape) the row; they are written escaped, as Python would."""
    return "".join(
        "\\|" if char == "|" else char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in cell
    )


def _markdown_table(header: list[str], rows: list[list[str]], numeric_from: int) -> str:
    align = ["---" if index < numeric_from else "---:" for index in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(_markdown_cell(cell) for cell in line) + " |" for line in lines)


def to_markdown(comparison: Comparison) -> str:
    """Both tables as Markdown pipe tables, ready for a paper's draft or a README."""
    text = _markdown_table(*result_rows(comparison), numeric_from=2)
    header, rows = setting_rows(comparison)
    if rows:
        text += "\n\n" + _markdown_table(header, rows, numeric_from=len(header))
    return text + "\n"


def to_csv(comparison: Comparison) -> str:
    """One row per run: the results, then the differing settings as columns (a spreadsheet's shape)."""
    header, rows = result_rows(comparison)
    differing = comparison.differing_settings()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*header, *differing])
    for index, row in enumerate(rows):
        plain = [cell.replace(",", "") if cell and cell[0].isdigit() else cell for cell in row]
        writer.writerow([*plain, *(format_value(values[index]) for values in differing.values())])
    return buffer.getvalue()


def plot_curves(comparison: Comparison) -> tuple[bytes, list[str]]:
    """Every run's val Acc@0.5 per epoch overlaid in one PNG, and the names of the runs without a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    missing = []
    for run in comparison.runs:
        if run.curve is None:
            missing.append(run.name)
            continue
        axis.plot(*run.curve, marker="o", markersize=3, label=run.name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("val Acc@0.5 (%)")
    axis.grid(alpha=0.3)
    if len(missing) < len(comparison.runs):
        axis.legend(fontsize=8)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    plt.close(figure)
    return png.getvalue(), missing
