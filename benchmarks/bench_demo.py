"""Time to accuracy of the main job (`make demo`) on this machine; prints JSON.

    python benchmarks/bench_demo.py [--preset synthetic-tiny] [--keep-run DIR] [KEY=VALUE ...]

Runs the commands a user runs, as subprocesses in a temporary folder: `simrec prepare-data --dataset synthetic`,
`simrec train --preset synthetic-tiny` and `simrec eval` of its best.pth on val and test. Reports the wall time
of each, the time and val Acc@0.5 of every epoch (from metrics.csv), the minutes the run took to first reach
80, 90, 95 and 97 % val Acc@0.5 (null when it never did), the seed it trained with, and the load average when it
started (other work on the cores slows every figure). Overrides go to `simrec train`, e.g. `train.epochs=12`.
`--keep-run DIR` copies the run directory (best.pth included) there before the temporary folder goes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from simrec_cli.models.precision import cpu_flags

TARGETS = (80.0, 90.0, 95.0, 97.0)


def _simrec(*args: str) -> tuple[float, float]:
    """Run one `simrec` command quietly; its wall time and CPU time (user + system, all threads) in seconds.

    The CPU time tells whether other work on the machine slowed the run: alone on N cores, wall is about CPU / N.
    A failure stops the benchmark with its output.
    """
    started, cpu_before = time.perf_counter(), _children_cpu_seconds()
    result = subprocess.run([sys.executable, "-m", "simrec_cli", "-q", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"simrec {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started, _children_cpu_seconds() - cpu_before


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _minutes_to(target: float, epochs: list[dict]) -> float | None:
    elapsed = 0.0
    for epoch in epochs:
        elapsed += epoch["time_s"]
        if epoch["val_acc50"] >= target:
            return round(elapsed / 60, 2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic-tiny")
    parser.add_argument("--keep-run", type=Path, help="copy the run directory here at the end")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE settings passed to `simrec train`")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data, run = root / "data", root / "run"
        prepare_s, _ = _simrec("prepare-data", "--dataset", "synthetic", "--data-root", str(data))
        train_s, train_cpu_s = _simrec(
            "train", "--preset", args.preset, f"dataset.data_root={data}", f"train.output_dir={run}", *args.overrides
        )
        eval_s, _ = _simrec(
            "eval", str(run / "best.pth"), "--split", "val", "--split", "test", "--json", str(root / "m.json")
        )
        with open(run / "metrics.csv", newline="") as handle:
            epochs = [
                {"epoch": int(row["epoch"]), "time_s": float(row["time_s"]), "val_acc50": float(row["val_acc50"])}
                for row in csv.DictReader(handle)
            ]
        seed = yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"]
        splits = {entry["split"]: entry for entry in json.loads((root / "m.json").read_text())["splits"]}
        if args.keep_run:
            shutil.copytree(run, args.keep_run, dirs_exist_ok=True)
    print(
        json.dumps(
            {
                "preset": args.preset,
                "overrides": args.overrides,
                "seed": seed,
                "torch": torch.__version__,
                "cpus": os.cpu_count(),
                "cpu_flags": sorted(cpu_flags()),
                "load_average_at_start": [round(value, 2) for value in load_at_start],
                "prepare_data_s": round(prepare_s, 1),
                "train_s": round(train_s, 1),
                "train_minutes": round(train_s / 60, 2),
                "train_cpu_s": round(train_cpu_s, 1),
                "eval_s": round(eval_s, 1),
                "best_val_acc50": round(splits["val"]["acc50"], 2),
                "test_acc50": round(splits["test"]["acc50"], 2),
                "minutes_to_val_acc50": {str(target): _minutes_to(target, epochs) for target in TARGETS},
                "epochs": epochs,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
