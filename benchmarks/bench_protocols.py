"""What each difference between the evaluation protocols does to a checkpoint's numbers; prints one JSON object.

    python benchmarks/bench_protocols.py CHECKPOINT [--data-root DIR] [--split val --split test]
    python benchmarks/bench_protocols.py det_best_model.pth --preset refcoco-scratch --data-root data [a.b=c ...]

The model runs once per variant in PyTorch fp32 on the CPU through simrec's evaluator. The variants: `original` (the
original SimREC's evaluation: boxes not clipped, hit = IoU > 0.5, mask pixels > 0), each of its three rules
changed alone (`boxes clipped`, `hit at >=`, `mask pixels > 0.5`, the last for mask models only), and `clipped`
(all three changed). For each split and variant: Acc@0.5, Acc@0.75, mean IoU (and mask mIoU / oIoU), their
difference from `original` in points, and how many expressions the variant changes (a box moved by more than
0.5 px, an IoU by more than 1e-6, a hit). The CPU's flags are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from simrec_cli.engine.distributed import joined_world
from simrec_cli.engine.evaluator import evaluate_split, evaluation_sets
from simrec_cli.engine.metrics import SampleResult, SplitMetrics
from simrec_cli.engine.protocol import CLIPPED, ORIGINAL, EvaluationProtocol
from simrec_cli.model_files.loading import load_model
from simrec_cli.models.precision import cpu_flags
from simrec_cli.reporting import NullReporter

METRICS = ("acc50", "acc75", "mean_iou", "mask_miou", "mask_oiou")


def variants(masks: bool) -> list[EvaluationProtocol]:
    """The original protocol, each of its rules changed alone, and the clipped protocol."""
    alone = [replace(ORIGINAL, name="boxes clipped", clip_boxes=True),
             replace(ORIGINAL, name="hit at >=", strict=False)]  # fmt: skip
    if masks:
        alone.append(replace(ORIGINAL, name="mask pixels > 0.5", mask_cutoff=CLIPPED.mask_cutoff))
    return [ORIGINAL, *alone, CLIPPED]


def changed(base: list[SampleResult], other: list[SampleResult], rules: EvaluationProtocol) -> dict[str, int]:
    """How many expressions `other` counts differently from `base` (the original protocol)."""
    boxes = np.abs(np.array([r.box for r in base]) - np.array([r.box for r in other])).max(axis=1)
    ious = np.array([r.iou for r in base]), np.array([r.iou for r in other])
    return {
        "boxes_moved": int((boxes > 0.5).sum()),
        "ious_changed": int((np.abs(ious[0] - ious[1]) > 1e-6).sum()),
        "hits_changed": int((ORIGINAL.hits(ious[0]) != rules.hits(ious[1])).sum()),
    }


def summary(metrics: SplitMetrics, base: SplitMetrics | None) -> dict:
    row = {key: round(value, 3) for key in METRICS if (value := getattr(metrics, key)) is not None}
    if base is not None:
        row["points_vs_original"] = {key: round(value - getattr(base, key), 3) for key, value in row.items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("overrides", nargs="*", help="with --preset: dotted overrides of the preset")
    parser.add_argument("--preset", help="CHECKPOINT is an original SimREC checkpoint trained with this preset")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--dataset")
    parser.add_argument("--split", action="append", dest="splits")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_intermixed_args()

    payload = None
    if args.preset:
        from simrec_cli.importing import import_original, import_settings

        settings = import_settings(args.preset, args.overrides, args.data_root, args.dataset)
        payload = import_original(args.checkpoint, settings).payload
    with joined_world("cpu") as world:
        loaded = load_model(args.checkpoint, device="cpu", precision="fp32", runtime="torch", payload=payload)
        model, settings = loaded.runtime, loaded.settings
        _, split_sets = evaluation_sets(settings, loaded.vocabulary, model, data_root=args.data_root,
                                        dataset=args.dataset, splits=args.splits, reporter=NullReporter())  # fmt: skip
        splits = {}
        for split, dataset in split_sets.items():
            rows, base_metrics, base_results = {}, None, None
            for rules in variants(model.has_mask_head):
                metrics, results = evaluate_split(
                    model, dataset, split=split, world=world, batch_size=args.batch_size, num_workers=0,
                    reporter=NullReporter(), mask_threshold=settings.model.head.mask_threshold, protocol=rules,
                )  # fmt: skip
                rows[rules.name] = summary(metrics, base_metrics)
                if base_results is None:
                    base_metrics, base_results = metrics, results
                else:
                    rows[rules.name]["expressions_changed"] = changed(base_results, results, rules)
            splits[split] = {"expressions": len(dataset), "variants": rows}
    print(json.dumps({
        "checkpoint": str(args.checkpoint),
        "model": settings.model.name,
        "input_shape": list(settings.dataset.input_shape),
        "dataset": settings.dataset.name,
        "precision": "fp32",
        "cpu_flags": sorted(cpu_flags()),
        "splits": splits,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
