"""Evaluate a model file, a checkpoint or an exported model, in the runtime chosen for it: what `simrec eval` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simrec_cli.engine.distributed import World, processes_on_this_node
from simrec_cli.engine.evaluator import evaluate_split, evaluation_sets
from simrec_cli.engine.metrics import SampleResult, SplitMetrics
from simrec_cli.engine.protocol import protocol_named
from simrec_cli.model_files.loading import load_model
from simrec_cli.reporting import Reporter
from simrec_cli.runtimes.base import Runtime
from simrec_cli.settings import Settings


def evaluate_checkpoint(
    checkpoint: Path,
    *,
    world: World,
    reporter: Reporter,
    data_root: Path | None = None,
    dataset: str | None = None,
    splits: list[str] | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    keep_masks: bool = False,
    precision: str = "auto",
    runtime: str = "auto",
    protocol: str | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[list[SplitMetrics], dict[str, list[SampleResult]], Settings, Runtime]:
    """Evaluate a checkpoint or an exported model on every requested split (default: all evaluation splits of its
    dataset), in `runtime` (auto: the fastest this machine runs, see `simrec_cli.runtimes`).

    `protocol` names the evaluation protocol (engine/protocol.py); None takes the checkpoint's
    `train.evaluation.protocol`, which is the original SimREC's unless the run chose another. `payload` is the
    checkpoint already in memory (an original SimREC checkpoint imported on the fly), `checkpoint` then names it.

    The settings returned are the checkpoint's with the dataset that was evaluated (after --dataset,
    --data-root and --split), so whatever reads the results finds the same files. The model runs in `precision`
    (see `resolve_precision`); PyTorch runs eagerly: a compiled forward needs fixed shapes, and evaluation batches
    hold a varying number of images (each encoded once for all its expressions).
    """
    loaded = load_model(
        checkpoint, device=str(world.device), precision=precision, runtime=runtime, reporter=reporter, payload=payload
    )
    model, settings, vocabulary = loaded.runtime, loaded.settings, loaded.vocabulary
    rules = protocol_named(protocol or settings.train.evaluation.protocol)
    dataset_settings, split_sets = evaluation_sets(
        settings, vocabulary, model, data_root=data_root, dataset=dataset, splits=splits, reporter=reporter
    )
    loader = settings.train.data
    batch_size = batch_size or settings.train.evaluation.eval_batch_size
    metrics, predictions = [], {}
    for split, split_set in split_sets.items():
        split_metrics, results = evaluate_split(
            model,
            split_set,
            split=split,
            world=world,
            batch_size=batch_size,
            num_workers=loader.resolved_num_workers(processes_on_this_node()) if num_workers is None else num_workers,
            reporter=reporter,
            mask_threshold=settings.model.head.mask_threshold,
            keep_masks=keep_masks,
            protocol=rules,
        )
        metrics.append(split_metrics)
        predictions[split] = results
    evaluation = settings.train.evaluation.model_copy(update={"protocol": rules.name})
    train = settings.train.model_copy(update={"evaluation": evaluation})
    return metrics, predictions, settings.model_copy(update={"dataset": dataset_settings, "train": train}), model
