"""REC/RES metrics computed once over all samples of a split (never averaged per batch or per rank)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from simrec_cli.engine.protocol import HIT_IOU, ORIGINAL, TIGHT_IOU, EvaluationProtocol


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two [N, 4] arrays of (x1, y1, x2, y2) boxes (continuous coordinates, no +1)."""
    left = np.maximum(a[:, 0], b[:, 0])
    top = np.maximum(a[:, 1], b[:, 1])
    right = np.minimum(a[:, 2], b[:, 2])
    bottom = np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    out = np.asarray(boxes, dtype=np.float64).copy()
    out[:, 2:] += out[:, :2]
    return out


@dataclass
class SampleResult:
    """One expression's outcome, keyed by its dataset index so distributed results can be merged exactly."""

    index: int
    image_id: object
    expression: str
    box: list[float]
    score: float
    gt_box: list[float]
    iou: float
    mask_intersection: int | None = None
    mask_union: int | None = None
    mask_rle: dict | None = None  # the predicted mask in original pixels (COCO RLE), kept for pictures


@dataclass
class SplitMetrics:
    """Box Acc@0.5/0.75 and mean IoU; for mask models mIoU, oIoU, mask precisions and the inconsistency error.

    `protocol` names the rules they were counted by (engine/protocol.py).
    """

    split: str
    count: int
    acc50: float
    acc75: float
    mean_iou: float
    protocol: str = ORIGINAL.name
    mask_miou: float | None = None
    mask_oiou: float | None = None
    mask_precision: dict[str, float] = field(default_factory=dict)
    inconsistency: float | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(
    split: str, results: list[SampleResult], timing_ms: dict[str, float], protocol: EvaluationProtocol = ORIGINAL
) -> SplitMetrics:
    """Metrics of a split from per-sample results (percentages, 0-100), hits counted by `protocol`."""
    ious = np.array([r.iou for r in results], dtype=np.float64)

    def percent(values: np.ndarray) -> float:
        return float(values.mean() * 100) if len(values) else 0.0

    box_hits = protocol.hits(ious, HIT_IOU)
    metrics = SplitMetrics(
        split=split,
        count=len(results),
        acc50=percent(box_hits),
        acc75=percent(protocol.hits(ious, TIGHT_IOU)),
        mean_iou=percent(ious),
        protocol=protocol.name,
        timing_ms=timing_ms,
    )
    if results and results[0].mask_union is not None:
        inter = np.array([r.mask_intersection for r in results], dtype=np.float64)
        union = np.array([r.mask_union for r in results], dtype=np.float64)
        mask_ious = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        metrics.mask_miou = percent(mask_ious)
        metrics.mask_oiou = float(inter.sum() / max(union.sum(), 1) * 100)
        metrics.mask_precision = {
            protocol.mask_key(t): percent(protocol.hits(mask_ious, t)) for t in protocol.mask_thresholds
        }
        metrics.inconsistency = percent(box_hits != protocol.hits(mask_ious, HIT_IOU))
    return metrics
