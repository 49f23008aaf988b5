"""Where a model fails: one split's per-expression results cut into buckets, and every miss classed.

Every function here works on `SplitSamples`, the results of a split as aligned arrays, so the whole analysis
of RefCOCO's val split (10,834 expressions) costs a fraction of a second. Buckets always cover every
expression (a category outside the top 20 goes to "other categories", an expression with spatial words of
several kinds to "several"), so each breakdown's counts add up to the split's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simrec_cli.data.objects import ImageObjects, object_image_key
from simrec_cli.data.synthetic import expression_kind
from simrec_cli.data.text import tokenize
from simrec_cli.engine.metrics import SampleResult, box_iou_xyxy, xywh_to_xyxy
from simrec_cli.engine.protocol import HIT_IOU, ORIGINAL, TIGHT_IOU, EvaluationProtocol

LOOSE_IOU = 0.1  # a miss at least this close to its target is the right object with a loose box
SMALL_AREA, LARGE_AREA = 32**2, 96**2  # COCO's object sizes, here by box area in original pixels
TOP_CATEGORIES = 20
HISTOGRAM_BINS = 20
SAME_BOX = 1e-3  # pixels: an object with the target's box is the target itself

SIZE_BUCKETS = ("small (< 32²)", "medium", "large (≥ 96²)")
LENGTH_BUCKETS = ("1-2 words", "3-4 words", "5-7 words", "8+ words")
DISTRACTOR_BUCKETS = ("0", "1", "2", "3+")
SPATIAL_WORDS = {
    "left/right": frozenset({"left", "right", "leftmost", "rightmost"}),
    "top/bottom": frozenset({"top", "bottom", "upper", "lower", "above", "below", "topmost", "bottommost"}),
    "middle/center": frozenset({"middle", "center", "centre", "central"}),
}
SPATIAL_BUCKETS = (*SPATIAL_WORDS, "several", "none")
KIND_BUCKETS = ("attribute", "extreme", "relation")
WRONG_OBJECT, LOOSE_BOX, BACKGROUND = "wrong object", "right object, loose box", "background"
MISS_CLASSES = (WRONG_OBJECT, LOOSE_BOX, BACKGROUND)
OTHER_CATEGORIES = "other categories"


@dataclass(frozen=True)
class SplitSamples:
    """A split's expressions as aligned arrays, in dataset order; boxes are x1, y1, x2, y2 in original pixels.

    `protocol` is the one the IoUs were measured under; it also says which of them are hits.
    """

    ious: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray
    targets: np.ndarray
    categories: np.ndarray
    image_keys: list[str]
    expressions: list[str]
    protocol: EvaluationProtocol = ORIGINAL

    def __len__(self) -> int:
        return len(self.ious)

    @property
    def hits(self) -> np.ndarray:
        return self.protocol.hits(self.ious, HIT_IOU)

    @classmethod
    def from_results(
        cls, results: Sequence[SampleResult], entries: Sequence[dict], protocol: EvaluationProtocol = ORIGINAL
    ) -> SplitSamples:
        """`entries[k]` is the annotation entry of `results[k]` (the one its dataset index points to)."""
        return cls(
            ious=np.array([result.iou for result in results], dtype=np.float64),
            scores=np.array([result.score for result in results], dtype=np.float64),
            predicted=np.array([result.box for result in results], dtype=np.float64).reshape(-1, 4),
            targets=xywh_to_xyxy(np.array([entry["bbox"] for entry in entries], dtype=np.float64).reshape(-1, 4)),
            categories=np.array([int(entry.get("cat_id", -1)) for entry in entries], dtype=np.int64),
            image_keys=[object_image_key(entry) for entry in entries],
            expressions=[result.expression for result in results],
            protocol=protocol,
        )


@dataclass(frozen=True)
class Bucket:
    """Count and box metrics (percentages) of the expressions in one bucket; metrics are None when it is empty."""

    name: str
    count: int
    acc50: float | None
    acc75: float | None
    mean_iou: float | None


@dataclass(frozen=True)
class Breakdown:
    """One way of cutting a split: a title, what a bucket means, and the buckets in display order."""

    key: str
    title: str
    note: str
    buckets: list[Bucket]


@dataclass(frozen=True)
class Taxonomy:
    """How many misses (no hit under the protocol) fall into each class of `MISS_CLASSES`."""

    misses: int
    counts: dict[str, int]

    def share(self, name: str) -> float:
        """Percentage of the misses in class `name` (0 when there are no misses)."""
        return 100.0 * self.counts[name] / self.misses if self.misses else 0.0


def buckets(
    labels: Sequence[str], ious: np.ndarray, order: Sequence[str], protocol: EvaluationProtocol = ORIGINAL
) -> list[Bucket]:
    """The metrics of each label in `order` (hits counted by `protocol`); every label must be one of them."""
    labels_array = np.asarray(labels, dtype=object)
    rows = []
    for name in order:
        selected = ious[labels_array == name]
        if len(selected):
            rows.append(
                Bucket(
                    name,
                    len(selected),
                    float(protocol.hits(selected, HIT_IOU).mean() * 100),
                    float(protocol.hits(selected, TIGHT_IOU).mean() * 100),
                    float(selected.mean() * 100),
                )
            )
        else:
            rows.append(Bucket(name, 0, None, None, None))
    return rows


def size_labels(targets: np.ndarray) -> list[str]:
    """COCO's small / medium / large by the target's box area in original pixels."""
    areas = (targets[:, 2] - targets[:, 0]) * (targets[:, 3] - targets[:, 1])
    index = (areas >= SMALL_AREA).astype(int) + (areas >= LARGE_AREA).astype(int)
    return [SIZE_BUCKETS[i] for i in index]


def length_labels(expressions: Sequence[str]) -> list[str]:
    """Expression length in words as the model reads them (the tokenizer's words)."""
    edges = np.array([3, 5, 8])
    return [LENGTH_BUCKETS[int(np.searchsorted(edges, len(tokenize(e)), side="right"))] for e in expressions]


def spatial_labels(expressions: Sequence[str]) -> list[str]:
    """Which kind of spatial word an expression uses: one kind, "several", or "none"."""
    labels = []
    for expression in expressions:
        words = set(tokenize(expression))
        kinds = [name for name, vocabulary in SPATIAL_WORDS.items() if words & vocabulary]
        labels.append(kinds[0] if len(kinds) == 1 else ("several" if kinds else "none"))
    return labels


def category_labels(
    categories: np.ndarray, names: dict[int, str], top: int = TOP_CATEGORIES
) -> tuple[list[str], list[str]]:
    """Labels (the category's name, or "other categories" outside the `top` most frequent) and their order."""
    counts = Counter(categories.tolist())
    frequent = [category for category, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]]

    def name(category: int) -> str:
        return "unknown" if category < 0 else names.get(category, f"category {category}")

    chosen = set(frequent)
    labels = [name(c) if c in chosen else OTHER_CATEGORIES for c in categories.tolist()]
    order = [name(c) for c in frequent] + ([OTHER_CATEGORIES] if len(counts) > top else [])
    return labels, order


class Scenes:
    """The other objects of each expression's image (everything but its target), as x1, y1, x2, y2 boxes."""

    def __init__(self, samples: SplitSamples, objects: ImageObjects) -> None:
        self.samples = samples
        self.objects = objects
        self._xyxy: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def others(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [K, 4] and categories [K] of the objects of row `row`'s image other than its target."""
        key = self.samples.image_keys[row]
        if key not in self._xyxy:
            boxes, categories = self.objects.of(key)
            self._xyxy[key] = (xywh_to_xyxy(boxes), categories)
        boxes, categories = self._xyxy[key]
        keep = ~(np.abs(boxes - self.samples.targets[row]) < SAME_BOX).all(axis=1)
        return boxes[keep], categories[keep]


def distractor_labels(scenes: Scenes) -> list[str]:
    """How many objects of the target's category share its image (0, 1, 2, 3+)."""
    labels = []
    for row, category in enumerate(scenes.samples.categories.tolist()):
        _, categories = scenes.others(row)
        labels.append(DISTRACTOR_BUCKETS[min(int((categories == category).sum()), 3)])
    return labels


def classify_misses(scenes: Scenes) -> list[str | None]:
    """Each expression's miss class (None for a hit), hits and covers as the samples' protocol counts them.

    "wrong object": the box covers another object of the image (a hit on it); "right object, loose box":
    IoU with the target at least 0.1, short of a hit, and no other object covered; "background": the rest.
    """
    samples = scenes.samples
    classes: list[str | None] = []
    for row, (iou, hit) in enumerate(zip(samples.ious.tolist(), samples.hits.tolist(), strict=True)):
        if hit:
            classes.append(None)
            continue
        boxes, _ = scenes.others(row)
        overlaps = box_iou_xyxy(np.repeat(samples.predicted[row : row + 1], len(boxes), axis=0), boxes)
        if len(boxes) and samples.protocol.hits(overlaps, HIT_IOU).any():
            classes.append(WRONG_OBJECT)
        elif iou >= LOOSE_IOU:
            classes.append(LOOSE_BOX)
        else:
            classes.append(BACKGROUND)
    return classes


def taxonomy(classes: Sequence[str | None]) -> Taxonomy:
    counts = Counter(name for name in classes if name is not None)
    return Taxonomy(sum(counts.values()), {name: counts.get(name, 0) for name in MISS_CLASSES})


def breakdowns(
    samples: SplitSamples, scenes: Scenes, category_names: dict[int, str], synthetic: bool
) -> list[Breakdown]:
    """Every breakdown of the report, in display order (the synthetic dataset adds its expression kinds)."""
    categories, category_order = category_labels(samples.categories, category_names)
    cuts = [
        ("size", "object size", "COCO's sizes by the box area in original pixels",
         size_labels(samples.targets), SIZE_BUCKETS),
        ("length", "expression length", "words after tokenization",
         length_labels(samples.expressions), LENGTH_BUCKETS),
        ("category", "category", f"the {TOP_CATEGORIES} most frequent", categories, category_order),
        ("distractors", "same-category objects", "other objects of the target's category in the image",
         distractor_labels(scenes), DISTRACTOR_BUCKETS),
        ("spatial", "spatial words", "left/right, top/bottom, middle/center in the expression",
         spatial_labels(samples.expressions), SPATIAL_BUCKETS),
    ]  # fmt: skip
    if synthetic:
        kinds = [expression_kind(expression) for expression in samples.expressions]
        cuts.append(("kind", "expression kind", "the rule that generated the expression", kinds, KIND_BUCKETS))
    return [
        Breakdown(key, title, note, buckets(labels, samples.ious, order, samples.protocol))
        for key, title, note, labels, order in cuts
    ]


def iou_histogram(ious: np.ndarray, bins: int = HISTOGRAM_BINS) -> tuple[list[float], list[int]]:
    """Bin edges and counts of the IoUs over [0, 1] (1.0 falls in the last bin)."""
    counts, edges = np.histogram(ious, bins=bins, range=(0.0, 1.0))
    return [round(float(edge), 4) for edge in edges], [int(count) for count in counts]


def worst_misses(samples: SplitSamples, count: int) -> list[int]:
    """Rows of the `count` worst misses: lowest IoU first, the more confident first among equals."""
    rows = np.flatnonzero(~samples.hits)
    order = np.lexsort((-samples.scores[rows], samples.ious[rows]))
    return rows[order][:count].tolist()


def typical_hits(samples: SplitSamples, count: int) -> list[int]:
    """Rows of `count` hits spread evenly over the hits ordered by IoU (the middle of each equal share)."""
    rows = np.flatnonzero(samples.hits)
    ordered = rows[np.argsort(samples.ious[rows], kind="stable")]
    if len(ordered) <= count:
        return ordered.tolist()
    positions = ((np.arange(count) + 0.5) * len(ordered) / count).astype(int)
    return ordered[positions].tolist()
