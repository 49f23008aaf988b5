"""Start-up cost of the `simrec` command, printed as JSON: how long a user waits for one answer.

Each figure is the median wall time of `--runs` fresh processes (run round-robin, so a busy moment of a shared
machine spreads over all of them):
- `import_torch_s`: `python -c "import torch"`, the floor every command that runs a model pays;
- `import_predictor_s`: `python -c "import simrec_cli.predict.predictor"` (torch plus the model code);
- `help_s`: `simrec --help`;
- `predict_s`: `simrec predict IMAGE EXPRESSION --checkpoint CKPT` from the command to the printed box, picture
  written (a new output folder per run);
- `missing_checkpoint_s`: the same command with a checkpoint path that does not exist (exit status 2).

`answer_first_ms` / `answer_warm_ms` time one answer inside a process that has loaded the predictor: the first
call (which also sets up the compute kernels) and the median of later calls (read, letterbox, forward,
un-letterbox; no picture). The goal is `predict_s <= 1.4 x (import_torch_s + answer_warm_ms)`.

On a shared machine wall times swing with the other processes; `cpu_s` gives each command's median CPU time
(user + system of the process and its threads), which moves much less.

    python benchmarks/bench_startup.py [--checkpoint runs/demo/best.pth]
        [--image data-demo/images/synthetic/demo.jpg] [--expression "the big red circle"] [--runs 7]
        [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_model import cpu_description

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.4

ANSWER_TIMING = """
import json, statistics, sys, time
from pathlib import Path
from simrec_cli.predict.predictor import Predictor, predict_requests
from simrec_cli.predict.sources import requests_from_source
predictor = Predictor.load(Path(sys.argv[1]), device="cpu", precision=sys.argv[4])
requests = requests_from_source(sys.argv[2], [sys.argv[3]])
times = []
for _ in range(21):
    started = time.perf_counter()
    box = list(predict_requests(predictor, requests))[0].box
    times.append(time.perf_counter() - started)
print(json.dumps({"first_ms": 1000 * times[0], "warm_ms": 1000 * statistics.median(times[1:]), "box": box,
                  "precision": predictor.precision.name}))
"""


def simrec_command() -> list[str]:
    """The installed `simrec` script beside this interpreter, else `python -m simrec_cli`."""
    script = Path(sys.executable).with_name("simrec")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "simrec_cli"]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1", "COLUMNS": "120"}


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], expect_status: int = 0) -> tuple[float, float]:
    """Wall and CPU seconds from starting `command` to its exit; a wrong exit status stops the benchmark."""
    cpu = children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), check=False)
    seconds = time.perf_counter() - started
    if result.returncode != expect_status:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}, expected {expect_status}:\n{result.stderr}")
    return seconds, children_cpu_seconds() - cpu


def answer_timing(checkpoint: Path, image: Path, expression: str, precision: str) -> dict:
    command = [sys.executable, "-c", ANSWER_TIMING, str(checkpoint), str(image), expression, precision]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), check=True)
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/best.pth"))
    parser.add_argument("--image", type=Path, default=Path("data-demo/images/synthetic/demo.jpg"))
    parser.add_argument("--expression", default="the big red circle")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--precision", default="auto", help="passed to predict (auto: what the command picks)")
    args = parser.parse_args()
    for path in (args.checkpoint, args.image):
        if not path.is_file():
            raise SystemExit(f"{path} does not exist: run `make demo` first, or pass --checkpoint and --image")

    simrec = simrec_command()
    image, checkpoint = str(args.image), str(args.checkpoint)
    with tempfile.TemporaryDirectory() as folder:
        outputs = iter(Path(folder) / f"predict{run}" for run in range(args.runs))
        predict = [*simrec, "predict", image, args.expression, "--checkpoint", checkpoint]
        predict += ["--precision", args.precision]
        commands = {
            "import_torch_s": lambda: timed([sys.executable, "-c", "import torch"]),
            "import_predictor_s": lambda: timed([sys.executable, "-c", "import simrec_cli.predict.predictor"]),
            "help_s": lambda: timed([*simrec, "--help"]),
            "predict_s": lambda: timed([*predict, "-o", str(next(outputs))]),
            "missing_checkpoint_s": lambda: timed(
                [*simrec, "predict", image, args.expression, "--checkpoint", str(Path(folder) / "missing.pth")],
                expect_status=2,
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu_samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, run in commands.items():
                wall, cpu = run()
                samples[name].append(wall)
                cpu_samples[name].append(cpu)
    answers = [answer_timing(args.checkpoint, args.image, args.expression, args.precision) for _ in range(3)]
    median = {name: statistics.median(values) for name, values in samples.items()}
    answer_warm_s = statistics.median(answer["warm_ms"] for answer in answers) / 1000
    floor = median["import_torch_s"] + answer_warm_s
    result = {
        **cpu_description(),
        "cpu_count": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "checkpoint": str(args.checkpoint),
        "precision": answers[0]["precision"],
        "runs": args.runs,
        **{name: round(value, 3) for name, value in median.items()},
        "answer_first_ms": round(statistics.median(answer["first_ms"] for answer in answers), 1),
        "answer_warm_ms": round(answer_warm_s * 1000, 1),
        "predict_over_torch_plus_answer": round(median["predict_s"] / floor, 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": median["predict_s"] <= GOAL_RATIO * floor,
        "cpu_s": {name: round(statistics.median(values), 3) for name, values in cpu_samples.items()},
        "samples_s": {name: [round(value, 3) for value in values] for name, values in samples.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
