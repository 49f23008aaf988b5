"""Exact evaluation: per-sample results gathered with their indices, sampler padding dropped.

The numbers are the same for any number of processes and any batch size, because every metric is computed
once, on rank 0's merged list of per-expression results, in original image pixels.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pydantic import ValidationError
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from simrec_cli.data.dataset import Batch, RefDataset
from simrec_cli.data.letterbox import LetterboxInfo, boxes_to_original, mask_to_original
from simrec_cli.data.masks import rle_to_json
from simrec_cli.data.text import Vocabulary
from simrec_cli.engine.distributed import World, all_gather_objects
from simrec_cli.engine.metrics import SampleResult, SplitMetrics, box_iou_xyxy, summarize, xywh_to_xyxy
from simrec_cli.engine.protocol import ORIGINAL, EvaluationProtocol
from simrec_cli.models.inference import InferenceModel, autocast
from simrec_cli.reporting import Reporter
from simrec_cli.runtimes.base import Runtime
from simrec_cli.settings import DatasetSettings, Settings
from simrec_cli.settings.loader import validation_error


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_batches(loader: DataLoader, timing: dict[str, float]) -> Iterator[Batch]:
    """Yield batches while adding the time spent waiting for each one to timing['preprocess']."""
    iterator = iter(loader)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        timing["preprocess"] += time.perf_counter() - start
        yield batch


def _sample_results(
    batch: Batch,
    outputs: dict[str, torch.Tensor],
    dataset: RefDataset,
    mask_threshold: float,
    keep_masks: bool,
    protocol: EvaluationProtocol,
) -> list[SampleResult]:
    """Each expression's box and mask in original pixels and their IoUs, mapped back as `protocol` says."""
    boxes = outputs["boxes"].float().cpu().numpy()
    infos = [LetterboxInfo.from_array(row) for row in batch.infos.cpu().numpy()]
    predicted = np.asarray(boxes_to_original(boxes[:, :4].astype(np.float64), infos, clip=protocol.clip_boxes))
    truth = xywh_to_xyxy(batch.gt_boxes.cpu().numpy())
    ious = box_iou_xyxy(predicted, truth)
    masks = outputs.get("masks")
    results = []
    for row, index in enumerate(batch.indices.tolist()):
        result = SampleResult(
            index=index,
            image_id=batch.image_ids[row],
            expression=batch.sentences[row],
            box=[round(float(v), 2) for v in predicted[row]],
            score=float(boxes[row, 4]),
            gt_box=[float(v) for v in truth[row]],
            iou=float(ious[row]),
        )
        if masks is not None:
            predicted_mask = masks[row].float().cpu().numpy() > mask_threshold
            original = mask_to_original(predicted_mask, infos[row], cutoff=protocol.mask_cutoff)
            target = dataset.original_mask(index)
            result.mask_intersection = int(np.logical_and(original, target).sum())
            result.mask_union = int(np.logical_or(original, target).sum())
            if keep_masks:
                result.mask_rle = rle_to_json(mask_utils.encode(np.asfortranarray(original.astype(np.uint8))))
        results.append(result)
    return results


@torch.inference_mode()
def evaluate_split(
    model: nn.Module | InferenceModel | Runtime,
    dataset: RefDataset,
    *,
    split: str,
    world: World,
    batch_size: int,
    num_workers: int,
    reporter: Reporter,
    amp_dtype: torch.dtype | None = None,
    mask_threshold: float = 0.35,
    keep_masks: bool = False,
    protocol: EvaluationProtocol = ORIGINAL,
) -> tuple[SplitMetrics, list[SampleResult]]:
    """Evaluate one split on this rank's shard and merge every rank's results (rank order irrelevant).

    `protocol` says how boxes and masks are mapped back and what counts as a hit. `keep_masks` keeps each
    predicted mask (as RLE) in its result, for pictures drawn afterwards. `model` is a
    training model (run in `amp_dtype`), an `InferenceModel` or a `Runtime`, which bring their own precision.
    """
    if isinstance(model, nn.Module):
        model.eval()
    device = world.device
    sampler = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=False, drop_last=False)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=dataset.collate,
        pin_memory=device.type == "cuda",
    )
    timing = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
    local: list[SampleResult] = []
    for batch in reporter.track(_timed_batches(loader, timing), len(loader), f"eval {split}"):
        start = time.perf_counter()
        batch = batch.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            outputs = model(batch.images, batch.tokens, image_index=batch.image_index)
        _synchronize(device)
        middle = time.perf_counter()
        local.extend(_sample_results(batch, outputs, dataset, mask_threshold, keep_masks, protocol))
        timing["inference"] += middle - start
        timing["postprocess"] += time.perf_counter() - middle
    gathered = all_gather_objects(world, (local, timing))
    merged = {result.index: result for part, _ in gathered for result in part}
    results = [merged[index] for index in sorted(merged)]
    if len(results) != len(dataset):
        raise RuntimeError(f"evaluation of {split} collected {len(results)} of {len(dataset)} samples")
    per_image = {
        key: 1000 * sum(part_timing[key] for _, part_timing in gathered) / max(1, len(results)) for key in timing
    }
    return summarize(split, results, per_image, protocol), results


def evaluation_sets(
    settings: Settings,
    vocabulary: Vocabulary,
    model: Runtime,
    *,
    data_root: Path | None = None,
    dataset: str | None = None,
    splits: list[str] | None = None,
    reporter: Reporter,
) -> tuple[DatasetSettings, dict[str, RefDataset]]:
    """The dataset settings after --dataset, --data-root and --split, and each split read for `model` (its images
    normalized the way it asks). Every split is read, and so checked, before the first is evaluated."""
    data = settings.dataset.model_dump()
    if dataset is not None and dataset != settings.dataset.name:
        data.update(name=dataset, ann_path=None, image_path=None, mask_path=None, eval_splits=None)
    if data_root is not None:
        data["data_root"] = data_root
    if splits:
        data["eval_splits"] = splits
    try:
        dataset_settings = DatasetSettings.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "eval options", "check --split, --dataset and --data-root") from exc
    options = {"training": False, "load_masks": model.has_mask_head, "mean": model.input_mean,
               "std": model.input_std, "reporter": reporter}  # fmt: skip
    split_sets = {split: RefDataset(dataset_settings, split, vocabulary, **options)
                  for split in dataset_settings.resolved_eval_splits()}  # fmt: skip
    return dataset_settings, split_sets
